//! FCM HTTP v1: a service-account JWT (RS256) is exchanged for an OAuth2 access token at the
//! credentials' own `token_uri`, and the token authorizes `messages:send`. Messages are
//! data-only, so the app decides what to show (and fetches the content itself).

use std::fmt;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{
    ClientBuilder, Outcome, PushMessage, Urgency, classify_status, now_unix, read_capped,
    retry_after, safe_code, transport_failure,
};

const SERVICE: &str = "FCM";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The assertion's lifetime; Google accepts at most an hour.
const ASSERTION_LIFETIME: i64 = 3600;
/// An access token is replaced this long before Google says it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// The fields of a Google service-account JSON file that FCM needs.
#[derive(Clone, Deserialize)]
pub struct FcmCredentials {
    pub client_email: String,
    /// The RSA private key, PKCS#8 PEM. A secret.
    pub private_key: String,
    pub token_uri: String,
    pub project_id: String,
}

impl FcmCredentials {
    /// Parses a service-account JSON file. The error names what is wrong, never the content.
    pub fn from_json(json: &str) -> anyhow::Result<Self> {
        let creds: FcmCredentials = serde_json::from_str(json).map_err(|e| {
            let what = e.to_string();
            // serde_json quotes offending values in most messages, but not in these.
            if what.starts_with("missing field") {
                anyhow::anyhow!("the FCM service account JSON has a {what}")
            } else {
                anyhow::anyhow!(
                    "the FCM service account JSON is not valid (line {}, column {})",
                    e.line(),
                    e.column()
                )
            }
        })?;
        Ok(creds)
    }
}

/// Shows who the credentials are for, not the key.
impl fmt::Debug for FcmCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmCredentials")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "default_expires_in")]
    expires_in: u64,
}

fn default_expires_in() -> u64 {
    3600
}

struct AccessToken {
    value: String,
    refresh_at: Instant,
}

pub(crate) struct FcmSender {
    client: reqwest::Client,
    client_email: String,
    token_uri: Url,
    /// The assertion's `aud`: the token URI exactly as the credentials spell it.
    audience: String,
    key: EncodingKey,
    send_url: String,
    /// Held across a refresh, so concurrent sends wait for one token request instead of each
    /// making their own.
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl FcmSender {
    pub(crate) fn new(
        creds: &FcmCredentials,
        endpoint: &str,
        builder: ClientBuilder,
    ) -> anyhow::Result<Self> {
        let key = EncodingKey::from_rsa_pem(creds.private_key.as_bytes())
            .map_err(|_| anyhow::anyhow!("the FCM private_key is not an RSA private key in PEM"))?;
        let token_uri = Url::parse(&creds.token_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| anyhow::anyhow!("the FCM token_uri is not an http(s) URL"))?;
        let project_ok = !creds.project_id.is_empty()
            && creds
                .project_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
        anyhow::ensure!(project_ok, "the FCM project_id is not a project id");
        let endpoint = Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| anyhow::anyhow!("the FCM endpoint is not an http(s) URL"))?;
        let send_url = format!(
            "{}/v1/projects/{}/messages:send",
            endpoint.as_str().trim_end_matches('/'),
            creds.project_id
        );
        let client = builder
            .build()
            .map_err(|_| anyhow::anyhow!("the FCM HTTP client could not be built"))?;
        Ok(FcmSender {
            client,
            client_email: creds.client_email.clone(),
            token_uri,
            audience: creds.token_uri.clone(),
            key,
            send_url,
            token: tokio::sync::Mutex::new(None),
        })
    }

    pub(crate) async fn send(&self, token: &str, msg: &PushMessage<'_>) -> Outcome {
        let body = message_body(token, msg);
        // A 401 means Google no longer takes the cached token (revoked, clock skew): one
        // fresh token, one more try.
        for first_try in [true, false] {
            let access = match self.access_token().await {
                Ok(access) => access,
                Err(outcome) => return outcome,
            };
            let sent = self
                .client
                .post(&self.send_url)
                .bearer_auth(&access)
                .json(&body)
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                Err(e) => return transport_failure(SERVICE, &e),
            };
            if resp.status() == StatusCode::UNAUTHORIZED && first_try {
                self.drop_token(&access).await;
                continue;
            }
            return classify_send(resp).await;
        }
        Outcome::rejected("FCM refused a fresh access token")
    }

    /// The cached access token, or a new one.
    async fn access_token(&self) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `used` unless another send has already replaced it.
    async fn drop_token(&self, used: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == used) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<AccessToken, Outcome> {
        let assertion = self.assertion()?;
        let form = format!(
            "grant_type={}&assertion={assertion}",
            GRANT_TYPE.replace(':', "%3A")
        );
        let started = Instant::now();
        let resp = self
            .client
            .post(self.token_uri.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| transport_failure("FCM token endpoint", &e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(token_refused(status, &resp));
        }
        let parsed: TokenResponse = resp
            .json()
            .await
            .map_err(|_| Outcome::rejected("the FCM token endpoint sent no access token"))?;
        let lifetime = Duration::from_secs(parsed.expires_in).saturating_sub(REFRESH_MARGIN);
        Ok(AccessToken {
            value: parsed.access_token,
            refresh_at: started + lifetime,
        })
    }

    fn assertion(&self) -> Result<String, Outcome> {
        let iat = now_unix();
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.audience,
            iat,
            exp: iat + ASSERTION_LIFETIME,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|_| Outcome::rejected("the FCM assertion could not be signed"))
    }
}

/// A refused token request: retried when the endpoint is overloaded or down, otherwise the
/// credentials are wrong, which an operator has to fix.
fn token_refused(status: StatusCode, resp: &Response) -> Outcome {
    match classify_status("FCM token endpoint", status, resp.headers()) {
        retry @ Outcome::Retry { .. } => retry,
        _ => {
            tracing::warn!(
                status = status.as_u16(),
                "the FCM token endpoint refused the service account"
            );
            Outcome::rejected(format!(
                "the FCM token endpoint refused the service account (HTTP {})",
                status.as_u16()
            ))
        }
    }
}

/// FCM's answer to `messages:send`. Google's error body names the cause: `UNREGISTERED` (and
/// a 404 with `NOT_FOUND`) means the app instance is gone; a 404 without such a body is taken
/// as a wrong endpoint, not as every token being gone.
async fn classify_send(resp: Response) -> Outcome {
    let status = resp.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let headers = resp.headers().clone();
    let body = read_capped(resp, ERROR_BODY_LIMIT).await;
    let (error_status, error_code) = error_codes(&body);
    let gone = error_code.as_deref() == Some("UNREGISTERED")
        || status == StatusCode::GONE
        || (status == StatusCode::NOT_FOUND && error_status.as_deref() == Some("NOT_FOUND"));
    if gone {
        return Outcome::Gone;
    }
    let code = error_code.or(error_status);
    let reason = match code {
        Some(code) => format!("FCM answered HTTP {} {code}", status.as_u16()),
        None => format!("FCM answered HTTP {}", status.as_u16()),
    };
    match status.as_u16() {
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after(&headers),
            reason,
        },
        401 | 403 => {
            tracing::warn!(
                status = status.as_u16(),
                "FCM refused the service account's access token"
            );
            Outcome::Rejected { reason }
        }
        _ => Outcome::Rejected { reason },
    }
}

/// `error.status` and the FcmError `errorCode` of a Google API error body, when they look like
/// codes (so that nothing else from the body ends up in a reason).
fn error_codes(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let error = &value["error"];
    let status = error["status"]
        .as_str()
        .and_then(safe_code)
        .map(str::to_owned);
    let code = error["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .and_then(safe_code)
        .map(str::to_owned);
    (status, code)
}

/// The `messages:send` body: a data-only message for one registration token.
fn message_body(token: &str, msg: &PushMessage<'_>) -> Value {
    let mut android = Map::new();
    let priority = if msg.urgency == Urgency::High {
        "high"
    } else {
        "normal"
    };
    android.insert("priority".into(), priority.into());
    android.insert("ttl".into(), format!("{}s", msg.ttl.as_secs()).into());
    if let Some(topic) = msg.topic {
        android.insert("collapse_key".into(), topic.into());
    }
    json!({
        "message": {
            "token": token,
            "data": data_map(msg.payload),
            "android": android,
        }
    })
}

/// FCM `data` values must be strings: strings stay as they are, other values become their
/// JSON text, nulls are left out (absent and null mean the same to the app).
pub fn data_map(payload: &Map<String, Value>) -> Map<String, Value> {
    payload
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), Value::String(text))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2048-bit RSA key made for these tests only (`openssl genpkey -algorithm RSA`).
    pub(crate) const TEST_RSA_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC+eq/Mu6eTGgg2
sEjWagWGRgRb8DrvCvinK6zNWQpiQKPCZG8oFg3cbLNXddiWlFJsBTd4N/jM6OAB
mzbgbIqqrZ/DZAjX55rEmcZKsw8Wqy6YXUtmBJqyC7e5ifdTXAYRmH4aFS+0Ig7F
iaNROKfCNUtiEXcXnTkupZ0DPxl2gawSRgziQEpElPFjOgCPI9lM0s19w6BdE5G0
kBgvEfiE7ORZ4BbDHpr7RaJEzJoQuS27/5Jn/sHCPjZHg9f4iSpVPopTmyLfOt9L
wE77gwXvaqrD5bufLVl7Ndp2NGd79aC3NESztDhIUtJAB8QCt9z02MLLIEst7x4G
HZ9okZ6LAgMBAAECggEALhg7fcR1p3v3u+BKKBUNFDLScDtAz8MsbCv+C8193Uv+
NRcf7Sf1H7/wYHxktv/auEhE5aNJ4rCCMPFSRNoPboFItbx6BWGHSwdZfI87WgV/
56BAFEaN9wMt6UjxYKtWzqBD9+Tjn+hUAcquioO22SEThn5qfvztrxOl3PjCnTIW
MdWEVB8smjuelmvr9uYnqeqkuJppX1AUXFSc2BidJI+rTvdJjTCymxcqaBL2BOW9
LYohekjLkY812/SN78pwfS7OwwZWanqPS5h26Mg659k+yx9rx0WGKTrf0zWrm9RZ
jqJ5zvy0mcL7tN5eFeMbFz9Y4PNJoMEYCOTT+IPBjQKBgQDlPW25P/hYfaIrm5Qv
K+UR+AUzGH89gT8/O6mVGyUdU7jnnptvqPKi18+qj6qY/ctUeeghMaNDqeVXqg+k
M9GQ2TfUzgK0CmtTBDgkmNafUiwnOGX3oT/nHvU0NBjfehL6oqBz3tt1Lg/mBDFd
TM+zzeO/uVrz62QUS98HI/+j3QKBgQDUtvBkM4AMrcmvyTzPRJcSrgWMVQbB471X
cgQzsorx0fITE9xP7dm/HPeqpJsXCX115rdbtG+n7cTPjViJebuS7+D4duFxaKtk
5BxWsMf1t7TGJ+zehpxmbXFjeGyx5St7bRLw47ibOZVHSq27mp29VfRruDjLHdt/
+21V3P45hwKBgCJCFd2zY6fFzrB5paGPC8KtsAk8xfcpE4ydm/A+iENjuaRTnaMI
Oop/efdhVPtcIkDTnw8m3eFEyJNbRM8jN1RQQfm5d8n0LKnRXZqKhLh2jUanNQXW
wTgG9loA1x6+nYt7NkNasK1IXvPe+Ima6wdR45FJYABH00L9O61Tgea5AoGAPDBH
dRLdeLj0CLl4a22NEcwL5dlpQBOgz82DQt2SUzqEtME55aP3qQwZSD+rYqlcxq+x
0lEMBwhQWCo2ky/O05Tso2GACQcE+FdTbXQ4IF8K18cUTyLnvlPZcbvxhaTC2PnU
EjVdVw7EHpgS8LKfT6OytYg7Cb45Dc2m8lTF2qECgYEAt1ilAMsLGETlfLttgnTq
tpRVz9dhlX/RhCL6nnTqJCuGLZOIojnjcWU0geYlvPU8Tj9YfRtoCrHiFLnQhQhT
GVNGezAFfWXnjZont7YOp8d2dYuwMLQNGz9ijBGWRljfj/xbXKFRI6lNpILxcSfm
kHCZSv+8q3x43xaprQqAckM=
-----END PRIVATE KEY-----
";

    pub(crate) fn credentials() -> FcmCredentials {
        FcmCredentials {
            client_email: "push@test-project.iam.gserviceaccount.com".into(),
            private_key: TEST_RSA_KEY.into(),
            token_uri: "https://oauth2.googleapis.com/token".into(),
            project_id: "test-project".into(),
        }
    }

    #[test]
    fn data_values_become_strings() {
        let payload = json!({
            "type": "message",
            "conversation_id": "0190f1c2",
            "count": 3,
            "urgent": true,
            "nested": {"a": [1, "b"]},
            "missing": null,
        });
        let data = data_map(payload.as_object().unwrap());
        assert_eq!(
            Value::Object(data),
            json!({
                "type": "message",
                "conversation_id": "0190f1c2",
                "count": "3",
                "urgent": "true",
                "nested": "{\"a\":[1,\"b\"]}",
            })
        );
    }

    #[test]
    fn message_body_is_data_only() {
        let payload = json!({"type": "call.ringing", "title": "Ann"});
        let msg = PushMessage {
            payload: payload.as_object().unwrap(),
            ttl: Duration::from_secs(45),
            urgency: Urgency::High,
            topic: Some("conv-1"),
        };
        let body = message_body("tok", &msg);
        assert_eq!(
            body,
            json!({"message": {
                "token": "tok",
                "data": {"type": "call.ringing", "title": "Ann"},
                "android": {"priority": "high", "ttl": "45s", "collapse_key": "conv-1"},
            }})
        );
        let low = PushMessage {
            urgency: Urgency::Low,
            topic: None,
            ..msg
        };
        let android = &message_body("tok", &low)["message"]["android"];
        assert_eq!(android, &json!({"priority": "normal", "ttl": "45s"}));
    }

    #[test]
    fn error_bodies_give_codes_only() {
        let body = br#"{"error": {"code": 404, "message": "Requested entity was not found.",
            "status": "NOT_FOUND", "details": [{"@type":
            "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}"#;
        assert_eq!(
            error_codes(body),
            (Some("NOT_FOUND".into()), Some("UNREGISTERED".into()))
        );
        let sneaky =
            br#"{"error": {"status": "token abc is bad", "details": [{"errorCode": "x y"}]}}"#;
        assert_eq!(error_codes(sneaky), (None, None));
        assert_eq!(error_codes(b"<html>"), (None, None));
    }

    #[test]
    fn credentials_parse_and_redact() {
        let json = json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "abc",
            "private_key": TEST_RSA_KEY,
            "client_email": "push@test-project.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string();
        let creds = FcmCredentials::from_json(&json).unwrap();
        assert_eq!(creds.project_id, "test-project");
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );

        let err = FcmCredentials::from_json(r#"{"project_id": "p"}"#).unwrap_err();
        assert!(err.to_string().contains("missing field"));
        let leaky = r#"{"project_id": 5, "private_key": "-----BEGIN PRIVATE KEY-----"}"#;
        let err = FcmCredentials::from_json(leaky).unwrap_err().to_string();
        assert!(!err.contains("PRIVATE"), "{err}");
    }

    #[test]
    fn bad_keys_and_ids_fail_at_start() {
        let builder = || reqwest::Client::builder();
        let ok = FcmSender::new(&credentials(), "https://fcm.googleapis.com/", builder());
        assert_eq!(
            ok.unwrap().send_url,
            "https://fcm.googleapis.com/v1/projects/test-project/messages:send"
        );
        let mut bad = credentials();
        bad.private_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        let err = FcmSender::new(&bad, "https://fcm.googleapis.com", builder())
            .err()
            .unwrap();
        assert!(!err.to_string().contains("AAAA"));
        let mut bad = credentials();
        bad.project_id = "../x".into();
        assert!(FcmSender::new(&bad, "https://fcm.googleapis.com", builder()).is_err());
        let mut bad = credentials();
        bad.token_uri = "file:///etc/passwd".into();
        assert!(FcmSender::new(&bad, "https://fcm.googleapis.com", builder()).is_err());
    }

    #[test]
    fn assertion_has_the_oauth_claims() {
        let sender = FcmSender::new(
            &credentials(),
            "https://fcm.googleapis.com",
            reqwest::Client::builder(),
        )
        .unwrap();
        let jwt = sender.assertion().unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&jwt)
            .unwrap()
            .claims;
        assert_eq!(claims["iss"], "push@test-project.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        let iat = claims["iat"].as_i64().unwrap();
        assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);
    }
}
