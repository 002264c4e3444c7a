//! APNs: HTTP/2 requests to `/3/device/<token>`, authorized by an ES256 provider token made
//! from the team's .p8 key.

use std::fmt;
use std::sync::Mutex;

use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::vapid::es256_jwt;
use super::{
    ClientBuilder, Outcome, PushMessage, Urgency, now_unix, read_capped, retry_after, safe_code,
    transport_failure,
};

pub const PRODUCTION_ENDPOINT: &str = "https://api.push.apple.com";
pub const SANDBOX_ENDPOINT: &str = "https://api.sandbox.push.apple.com";
const SERVICE: &str = "APNs";
/// Apple refuses provider tokens older than an hour and answers `TooManyProviderTokenUpdates`
/// when they change more often than every 20 minutes: 40 minutes sits between.
const TOKEN_REFRESH_SECS: i64 = 40 * 60;
/// APNs' limit for an alert notification's body.
const MAX_PAYLOAD: usize = 4096;
/// `apns-collapse-id` may be at most 64 bytes.
const MAX_COLLAPSE_ID: usize = 64;
const ERROR_BODY_LIMIT: usize = 4096;

/// The APNs provider settings: the .p8 key (PKCS#8 PEM of a P-256 key), its key id, the team
/// id, the app's bundle id as topic, and optionally an endpoint replacing both of Apple's
/// (tests, a relay).
#[derive(Clone)]
pub struct ApnsConfig {
    pub key_pem: String,
    pub key_id: String,
    pub team_id: String,
    pub topic: String,
    pub endpoint: Option<String>,
}

impl fmt::Debug for ApnsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_pem", &"<redacted>")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("topic", &self.topic)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: i64,
}

struct ProviderToken {
    jwt: String,
    iat: i64,
}

pub(crate) struct ApnsSender {
    client: reqwest::Client,
    key: SigningKey,
    key_id: String,
    team_id: String,
    topic: HeaderValue,
    endpoint: Option<String>,
    token: Mutex<Option<ProviderToken>>,
}

impl ApnsSender {
    pub(crate) fn new(cfg: &ApnsConfig, builder: ClientBuilder) -> anyhow::Result<Self> {
        let key = SigningKey::from_pkcs8_pem(cfg.key_pem.trim()).map_err(|_| {
            anyhow::anyhow!("the APNs key is not a PKCS#8 PEM P-256 private key (.p8)")
        })?;
        anyhow::ensure!(is_id(&cfg.key_id), "the APNs key id is not an id");
        anyhow::ensure!(is_id(&cfg.team_id), "the APNs team id is not an id");
        let topic = HeaderValue::from_str(&cfg.topic)
            .ok()
            .filter(|_| !cfg.topic.is_empty())
            .ok_or_else(|| anyhow::anyhow!("the APNs topic is not a bundle id"))?;
        let endpoint = match &cfg.endpoint {
            Some(e) => {
                let url = reqwest::Url::parse(e)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "https" | "http"))
                    .ok_or_else(|| anyhow::anyhow!("the APNs endpoint is not an http(s) URL"))?;
                Some(url.as_str().trim_end_matches('/').to_owned())
            }
            None => None,
        };
        // APNs speaks HTTP/2 only.
        let client = builder
            .http2_prior_knowledge()
            .build()
            .map_err(|_| anyhow::anyhow!("the APNs HTTP client could not be built"))?;
        Ok(ApnsSender {
            client,
            key,
            key_id: cfg.key_id.clone(),
            team_id: cfg.team_id.clone(),
            topic,
            endpoint,
            token: Mutex::new(None),
        })
    }

    pub(crate) async fn send(&self, token: &str, sandbox: bool, msg: &PushMessage<'_>) -> Outcome {
        // Anything but hex could change the request path; APNs would call it a bad token.
        if !is_device_token(token) {
            return Outcome::Gone;
        }
        let body = serde_json::to_vec(&apns_body(msg.payload)).unwrap_or_default();
        if body.len() > MAX_PAYLOAD {
            return Outcome::rejected("the APNs payload is too large");
        }
        let base = match &self.endpoint {
            Some(endpoint) => endpoint.as_str(),
            None if sandbox => SANDBOX_ENDPOINT,
            None => PRODUCTION_ENDPOINT,
        };
        let url = format!("{base}/3/device/{token}");
        // An ExpiredProviderToken (a clock jump, a token kept too long) gets one fresh token.
        for first_try in [true, false] {
            let jwt = self.provider_token(now_unix());
            let sent = self.request(&url, &jwt, msg, body.clone()).send().await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => return transport_failure(SERVICE, &e),
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let reason = error_reason(&read_capped(resp, ERROR_BODY_LIMIT).await);
            if status == StatusCode::FORBIDDEN
                && reason.as_deref() == Some("ExpiredProviderToken")
                && first_try
            {
                self.drop_token(&jwt);
                continue;
            }
            let outcome = classify(status, reason.as_deref());
            return match outcome {
                Outcome::Retry { reason, .. } => Outcome::Retry {
                    after: retry_after(&headers),
                    reason,
                },
                other => other,
            };
        }
        Outcome::rejected("APNs refused a fresh provider token")
    }

    fn request(
        &self,
        url: &str,
        jwt: &str,
        msg: &PushMessage<'_>,
        body: Vec<u8>,
    ) -> reqwest::RequestBuilder {
        let priority = if msg.urgency == Urgency::High {
            "10"
        } else {
            "5"
        };
        // 0 asks APNs to try once and not store the notification.
        let ttl = i64::try_from(msg.ttl.as_secs()).unwrap_or(i64::MAX);
        let expiration = if ttl == 0 {
            0
        } else {
            now_unix().saturating_add(ttl)
        };
        let mut request = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("bearer {jwt}"))
            .header("apns-topic", self.topic.clone())
            .header("apns-push-type", "alert")
            .header("apns-priority", priority)
            .header("apns-expiration", expiration)
            .header(CONTENT_TYPE, "application/json");
        if let Some(collapse) = msg.topic.map(collapse_id)
            && let Ok(value) = HeaderValue::from_str(collapse)
        {
            request = request.header("apns-collapse-id", value);
        }
        request.body(body)
    }

    /// The cached provider token while it is younger than 40 minutes, else a new one.
    fn provider_token(&self, now: i64) -> String {
        let mut cached = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(token) = cached.as_ref()
            && (0..TOKEN_REFRESH_SECS).contains(&(now - token.iat))
        {
            return token.jwt.clone();
        }
        let header = json!({"alg": "ES256", "kid": self.key_id}).to_string();
        let claims = ProviderClaims {
            iss: &self.team_id,
            iat: now,
        };
        let jwt = es256_jwt(&self.key, header.as_bytes(), &claims);
        *cached = Some(ProviderToken {
            jwt: jwt.clone(),
            iat: now,
        });
        jwt
    }

    fn drop_token(&self, used: &str) {
        let mut cached = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_some_and(|t| t.jwt == used) {
            *cached = None;
        }
    }
}

/// Apple's answer. `Unregistered` (410) and `BadDeviceToken` mean the token is dead; a 404
/// (`BadPath`) or 403 is our configuration, not the device's, so it never deletes anything.
fn classify(status: StatusCode, reason: Option<&str>) -> Outcome {
    let code = status.as_u16();
    let why = match reason {
        Some(reason) => format!("APNs answered HTTP {code} {reason}"),
        None => format!("APNs answered HTTP {code}"),
    };
    match (code, reason) {
        (200..=299, _) => Outcome::Delivered,
        (410, _) | (400, Some("BadDeviceToken" | "Unregistered")) => Outcome::Gone,
        (408 | 429 | 500..=599, _) => Outcome::Retry {
            after: None,
            reason: why,
        },
        (403 | 404, _) => {
            tracing::warn!(
                status = code,
                reason,
                "APNs refused the provider configuration"
            );
            Outcome::Rejected { reason: why }
        }
        _ => Outcome::Rejected { reason: why },
    }
}

/// The `reason` of an APNs error body, when it looks like one of Apple's codes.
fn error_reason(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value["reason"]
        .as_str()
        .and_then(safe_code)
        .map(str::to_owned)
}

/// The notification: an alert (a title and body from the payload, or neutral ones — with
/// `mutable-content` so the app's extension can replace them with what it fetches) and the
/// payload's fields at top level, where the app reads them.
pub fn apns_body(payload: &Map<String, Value>) -> Value {
    let text = |key: &str, default: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let mut body = Map::new();
    body.insert(
        "aps".into(),
        json!({
            "alert": {"title": text("title", "SecureConnect"), "body": text("body", "New activity")},
            "mutable-content": 1,
        }),
    );
    for (key, value) in payload {
        if key != "aps" {
            body.insert(key.clone(), value.clone());
        }
    }
    Value::Object(body)
}

/// A collapse id of at most 64 bytes, cut at a character boundary.
fn collapse_id(topic: &str) -> &str {
    let mut end = topic.len().min(MAX_COLLAPSE_ID);
    while !topic.is_char_boundary(end) {
        end -= 1;
    }
    &topic[..end]
}

/// Whether `token` can be an APNs device token: hex, of a sane length (64 characters today;
/// Apple says they may grow).
pub fn is_device_token(token: &str) -> bool {
    (16..=200).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Apple's key and team ids are 10 upper-case alphanumerics; accept any short alphanumeric.
fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    pub(crate) fn config() -> ApnsConfig {
        let key = crate::push::ece::random_secret_key();
        ApnsConfig {
            key_pem: key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            key_id: "ABC123DEFG".into(),
            team_id: "DEF123GHIJ".into(),
            topic: "org.example.secureconnect".into(),
            endpoint: None,
        }
    }

    #[test]
    fn body_has_an_alert_and_the_payload() {
        let payload = json!({"type": "message", "conversation_id": "c1", "aps": {"badge": 9}});
        assert_eq!(
            apns_body(payload.as_object().unwrap()),
            json!({
                "aps": {"alert": {"title": "SecureConnect", "body": "New activity"}, "mutable-content": 1},
                "type": "message",
                "conversation_id": "c1",
            })
        );
        let payload = json!({"type": "message", "title": "Ann", "body": "hi", "n": 1});
        assert_eq!(
            apns_body(payload.as_object().unwrap()),
            json!({
                "aps": {"alert": {"title": "Ann", "body": "hi"}, "mutable-content": 1},
                "type": "message", "title": "Ann", "body": "hi", "n": 1,
            })
        );
    }

    #[test]
    fn outcomes() {
        let table = [
            (200, None, Outcome::Delivered),
            (410, Some("Unregistered"), Outcome::Gone),
            (400, Some("BadDeviceToken"), Outcome::Gone),
            (
                400,
                Some("BadCollapseId"),
                Outcome::rejected("APNs answered HTTP 400 BadCollapseId"),
            ),
            (
                404,
                Some("BadPath"),
                Outcome::rejected("APNs answered HTTP 404 BadPath"),
            ),
            (
                403,
                Some("InvalidProviderToken"),
                Outcome::rejected("APNs answered HTTP 403 InvalidProviderToken"),
            ),
            (
                429,
                Some("TooManyRequests"),
                Outcome::Retry {
                    after: None,
                    reason: "APNs answered HTTP 429 TooManyRequests".into(),
                },
            ),
            (
                503,
                None,
                Outcome::Retry {
                    after: None,
                    reason: "APNs answered HTTP 503".into(),
                },
            ),
        ];
        for (code, reason, want) in table {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(classify(status, reason), want, "{code} {reason:?}");
        }
        assert_eq!(
            error_reason(br#"{"reason":"BadDeviceToken"}"#).as_deref(),
            Some("BadDeviceToken")
        );
        assert_eq!(error_reason(br#"{"reason":"a token 1234"}"#), None);
    }

    #[test]
    fn provider_token_is_es256_with_kid_and_cached_40_minutes() {
        let cfg = config();
        let sender = ApnsSender::new(&cfg, reqwest::Client::builder()).unwrap();
        let now = 1_800_000_000;
        let jwt = sender.provider_token(now);
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": "ABC123DEFG"}));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims, json!({"iss": "DEF123GHIJ", "iat": now}));
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        let verifying = VerifyingKey::from(&SigningKey::from_pkcs8_pem(&cfg.key_pem).unwrap());
        let signed = format!("{}.{}", parts[0], parts[1]);
        verifying.verify(signed.as_bytes(), &signature).unwrap();

        assert_eq!(sender.provider_token(now + 40 * 60 - 1), jwt);
        let next = sender.provider_token(now + 40 * 60);
        assert_ne!(next, jwt);
        sender.drop_token(&jwt); // stale: keeps the newer one
        assert_eq!(sender.provider_token(now + 40 * 60 + 5), next);
        sender.drop_token(&next);
        assert_ne!(sender.provider_token(now + 40 * 60 + 5), next);
    }

    #[test]
    fn config_checks_and_redaction() {
        let cfg = config();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MIGH"),
            "{shown}"
        );
        assert!(ApnsSender::new(&cfg, reqwest::Client::builder()).is_ok());
        let mut bad = config();
        bad.key_pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----".into();
        let err = ApnsSender::new(&bad, reqwest::Client::builder())
            .err()
            .unwrap();
        assert!(!err.to_string().contains("MIGH"));
        let mut bad = config();
        bad.key_pem = crate::push::fcm::tests::TEST_RSA_KEY.into();
        assert!(ApnsSender::new(&bad, reqwest::Client::builder()).is_err());
        let mut bad = config();
        bad.team_id = "a b".into();
        assert!(ApnsSender::new(&bad, reqwest::Client::builder()).is_err());
    }

    #[test]
    fn tokens_and_collapse_ids() {
        assert!(is_device_token(&"ab01".repeat(16)));
        assert!(!is_device_token("abc/../../x"));
        assert!(!is_device_token("short"));
        assert!(!is_device_token(&"g".repeat(64)));
        assert_eq!(collapse_id("conv-1"), "conv-1");
        assert_eq!(collapse_id(&"x".repeat(80)).len(), 64);
        let multibyte = "é".repeat(40); // 80 bytes
        let cut = collapse_id(&multibyte);
        assert!(cut.len() <= 64 && cut.chars().all(|c| c == 'é'));
    }
}
