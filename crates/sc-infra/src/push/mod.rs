//! Push delivery: Web Push (RFC 8030 with RFC 8291 encryption and RFC 8292 VAPID), FCM HTTP v1
//! and APNs, behind one [`PushClient`] whose [`PushClient::send`] answers an [`Outcome`] the
//! caller acts on (delete the subscription, retry later, give up).
//!
//! Everything here handles capabilities: a Web Push endpoint or a device token lets anyone who
//! has it push to that device, and the keys and tokens let anyone push as us. So no string this
//! module produces — outcome reasons, errors, `Debug` output, tracing fields — contains an
//! endpoint, a device token, a key or an access token, and nothing is logged above debug level
//! except configuration problems (at warn, without secrets).

pub mod apns;
pub mod ece;
pub mod fcm;
pub mod ssrf;
pub mod vapid;
pub mod webpush;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Certificate, ClientBuilder, StatusCode};

pub use apns::ApnsConfig;
pub use fcm::FcmCredentials;
pub use vapid::VapidKey;

/// FCM's API origin; the configuration can point elsewhere (tests, a relay).
pub const DEFAULT_FCM_ENDPOINT: &str = "https://fcm.googleapis.com";
/// The whole-request timeout: a slow push service must not hold a delivery worker for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry-After values beyond this are clamped: a misbehaving service must not park a message
/// for weeks.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What the push adapters need from the server configuration.
#[derive(Clone)]
pub struct PushConfig {
    /// Accept `http://` endpoints and non-public addresses (tests, private gateways).
    pub allow_insecure_endpoints: bool,
    pub vapid: Arc<VapidKey>,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push service operators.
    pub vapid_subject: String,
    pub fcm: Option<FcmCredentials>,
    pub fcm_endpoint: String,
    pub apns: Option<ApnsConfig>,
    /// PEM certificates trusted in addition to the webpki roots.
    pub extra_root_ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl PushConfig {
    /// Web Push only, with the default endpoints and timeout.
    pub fn new(vapid: Arc<VapidKey>, vapid_subject: impl Into<String>) -> Self {
        PushConfig {
            allow_insecure_endpoints: false,
            vapid,
            vapid_subject: vapid_subject.into(),
            fcm: None,
            fcm_endpoint: DEFAULT_FCM_ENDPOINT.to_owned(),
            apns: None,
            extra_root_ca_pem: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushConfig")
            .field("allow_insecure_endpoints", &self.allow_insecure_endpoints)
            .field("vapid", &self.vapid)
            .field("vapid_subject", &self.vapid_subject)
            .field("fcm", &self.fcm)
            .field("fcm_endpoint", &self.fcm_endpoint)
            .field("apns", &self.apns)
            .field(
                "extra_root_ca_pem",
                &self.extra_root_ca_pem.as_ref().map(Vec::len),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where a push goes: one stored subscription.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    WebPush {
        endpoint: &'a str,
        p256dh: &'a [u8; 65],
        auth: &'a [u8; 16],
    },
    Fcm {
        token: &'a str,
    },
    Apns {
        token: &'a str,
        sandbox: bool,
    },
}

impl Target<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Target::WebPush { .. } => "webpush",
            Target::Fcm { .. } => "fcm",
            Target::Apns { .. } => "apns",
        }
    }
}

/// Only the kind: the endpoint, keys and tokens are capabilities.
impl fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target::{}(<redacted>)", self.kind())
    }
}

/// RFC 8030 §5.3 urgency; FCM and APNs map it to their two priorities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Urgency {
    VeryLow,
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    /// The `Urgency` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// One push: the JSON payload, how long the service may hold it, its urgency and an optional
/// collapse topic (a newer push with the same topic replaces an undelivered older one).
#[derive(Clone, Copy)]
pub struct PushMessage<'a> {
    pub payload: &'a serde_json::Map<String, serde_json::Value>,
    pub ttl: Duration,
    pub urgency: Urgency,
    pub topic: Option<&'a str>,
}

/// What became of a push, i.e. what the caller does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The subscription no longer exists (404/410, APNs `BadDeviceToken`/`Unregistered`, FCM
    /// `UNREGISTERED`): delete it.
    Gone,
    /// A transient failure (429, 5xx, timeout, connection error): try again, not before
    /// `after` when the service said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused for good (other 4xx, bad configuration): do not retry this message.
    Rejected {
        reason: String,
    },
}

impl Outcome {
    fn rejected(reason: impl Into<String>) -> Self {
        Outcome::Rejected {
            reason: reason.into(),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::Retry { .. } => "retry",
            Outcome::Rejected { .. } => "rejected",
        }
    }
}

/// Sends pushes to Web Push, FCM and APNs subscriptions.
pub struct PushClient {
    vapid: Arc<VapidKey>,
    webpush: webpush::WebPushSender,
    fcm: Option<fcm::FcmSender>,
    apns: Option<apns::ApnsSender>,
}

impl PushClient {
    /// Builds the HTTP clients and parses the FCM and APNs keys, so that a bad configuration
    /// fails at start-up rather than at the first push. Errors name the setting, never its
    /// value.
    pub fn new(cfg: PushConfig) -> anyhow::Result<Self> {
        let roots = extra_roots(cfg.extra_root_ca_pem.as_deref())?;
        let webpush = webpush::WebPushSender::new(&cfg, http_builder(&cfg, &roots))?;
        let fcm = match &cfg.fcm {
            Some(creds) => Some(fcm::FcmSender::new(
                creds,
                &cfg.fcm_endpoint,
                http_builder(&cfg, &roots),
            )?),
            None => None,
        };
        let apns = match &cfg.apns {
            Some(apns_cfg) => Some(apns::ApnsSender::new(apns_cfg, http_builder(&cfg, &roots))?),
            None => None,
        };
        Ok(PushClient {
            vapid: cfg.vapid,
            webpush,
            fcm,
            apns,
        })
    }

    /// Sends one push. Never fails the caller: every problem is an [`Outcome`].
    pub async fn send(&self, target: Target<'_>, msg: &PushMessage<'_>) -> Outcome {
        let kind = target.kind();
        let outcome = match target {
            Target::WebPush {
                endpoint,
                p256dh,
                auth,
            } => self.webpush.send(endpoint, p256dh, auth, msg).await,
            Target::Fcm { token } => match &self.fcm {
                Some(fcm) => fcm.send(token, msg).await,
                None => Outcome::rejected("FCM is not configured"),
            },
            Target::Apns { token, sandbox } => match &self.apns {
                Some(apns) => apns.send(token, sandbox, msg).await,
                None => Outcome::rejected("APNs is not configured"),
            },
        };
        tracing::debug!(kind, outcome = outcome.label(), "push sent");
        outcome
    }

    /// The VAPID public key browsers subscribe with (base64url, uncompressed P-256).
    pub fn vapid_public_key(&self) -> &str {
        self.vapid.public_key_base64url()
    }

    pub fn fcm_configured(&self) -> bool {
        self.fcm.is_some()
    }

    pub fn apns_configured(&self) -> bool {
        self.apns.is_some()
    }
}

fn extra_roots(pem: Option<&[u8]>) -> anyhow::Result<Vec<Certificate>> {
    let Some(pem) = pem else {
        return Ok(Vec::new());
    };
    let roots = Certificate::from_pem_bundle(pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .context("the extra root CA PEM holds no valid certificate")?;
    Ok(roots)
}

/// The settings every push client shares: no redirects (a push service never redirects, and a
/// redirect would take a user-chosen endpoint anywhere), short timeouts, the extra roots.
fn http_builder(cfg: &PushConfig, roots: &[Certificate]) -> ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(cfg.timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(cfg.timeout))
        .user_agent(concat!("SecureConnect/", env!("CARGO_PKG_VERSION")));
    roots
        .iter()
        .cloned()
        .fold(builder, |b, cert| b.add_root_certificate(cert))
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The generic reading of a push service's status: 2xx delivered, 404/410 gone, 408/429/5xx
/// retry (honouring `Retry-After`), anything else refused. `service` prefixes the reason.
pub(crate) fn classify_status(service: &str, status: StatusCode, headers: &HeaderMap) -> Outcome {
    let code = status.as_u16();
    match code {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::Gone,
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after(headers),
            reason: format!("{service} answered HTTP {code}"),
        },
        _ => Outcome::rejected(format!("{service} answered HTTP {code}")),
    }
}

/// A request that got no answer: always worth retrying. The reason is fixed text, because the
/// error's own text may carry the URL or a host name.
pub(crate) fn transport_failure(service: &str, err: &reqwest::Error) -> Outcome {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not be reached"
    } else {
        "request failed"
    };
    Outcome::Retry {
        after: None,
        reason: format!("{service} {what}"),
    }
}

/// `Retry-After` of a response, see [`parse_retry_after`].
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay seconds or an HTTP-date, as the time to
/// wait from `now` (zero for a date in the past), at most a day.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A reason code from a push service's error body, if it looks like one (`BadDeviceToken`,
/// `UNREGISTERED`): only then is it safe to copy into an outcome reason.
pub(crate) fn safe_code(code: &str) -> Option<&str> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(code)
}

/// The body of a response, at most `limit` bytes of it: error bodies are small, and a large
/// one is not worth the memory.
pub(crate) async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let table: &[(&str, Option<u64>)] = &[
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("999999999999999999999999", Some(24 * 3600)),
            ("Sun, 06 Nov 1994 08:50:07 GMT", Some(30)),
            ("Sun, 06 Nov 1994 08:49:00 GMT", Some(0)),
            ("Sunday, 06-Nov-94 08:51:37 GMT", Some(120)),
            ("Sun Nov  6 08:52:37 1994", Some(180)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in table {
            let got = parse_retry_after(value, now).map(|d| d.as_secs());
            assert_eq!(got, *want, "{value:?}");
        }
    }

    #[test]
    fn status_classes() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let seven = Some(Duration::from_secs(7));
        let table = [
            (201, Outcome::Delivered),
            (200, Outcome::Delivered),
            (404, Outcome::Gone),
            (410, Outcome::Gone),
            (
                429,
                Outcome::Retry {
                    after: seven,
                    reason: "X answered HTTP 429".into(),
                },
            ),
            (
                503,
                Outcome::Retry {
                    after: seven,
                    reason: "X answered HTTP 503".into(),
                },
            ),
            (400, Outcome::rejected("X answered HTTP 400")),
            (403, Outcome::rejected("X answered HTTP 403")),
            (413, Outcome::rejected("X answered HTTP 413")),
            (301, Outcome::rejected("X answered HTTP 301")),
        ];
        for (code, want) in table {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(classify_status("X", status, &headers), want, "{code}");
        }
    }

    #[test]
    fn safe_codes_only() {
        assert_eq!(safe_code("BadDeviceToken"), Some("BadDeviceToken"));
        assert_eq!(safe_code("UNREGISTERED"), Some("UNREGISTERED"));
        assert_eq!(safe_code(""), None);
        assert_eq!(safe_code("token abc123 is bad"), None);
        assert_eq!(safe_code(&"A".repeat(65)), None);
    }

    #[test]
    fn config_debug_redacts_keys() {
        let vapid = Arc::new(VapidKey::generate());
        let mut cfg = PushConfig::new(vapid.clone(), "mailto:admin@example.org");
        cfg.fcm = Some(fcm::tests::credentials());
        cfg.apns = Some(apns::tests::config());
        cfg.extra_root_ca_pem = Some(b"-----BEGIN CERTIFICATE-----".to_vec());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains(&vapid.to_base64url()));
        assert!(!shown.contains("PRIVATE KEY"));
        assert!(!shown.contains("MIIE"), "RSA key body");
        assert!(!shown.contains("MIGH"), "EC key body");
        assert!(!shown.contains("BEGIN CERTIFICATE"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn target_debug_shows_only_the_kind() {
        let p256dh = [4u8; 65];
        let auth = [1u8; 16];
        let targets = [
            Target::WebPush {
                endpoint: "https://push.example/secret-capability",
                p256dh: &p256dh,
                auth: &auth,
            },
            Target::Fcm {
                token: "secret-fcm-token",
            },
            Target::Apns {
                token: "abcdef0123",
                sandbox: true,
            },
        ];
        for target in targets {
            let shown = format!("{target:?}");
            assert!(
                !shown.contains("secret") && !shown.contains("abcdef"),
                "{shown}"
            );
        }
    }

    #[test]
    fn client_builds_and_reports_its_parts() {
        let vapid = Arc::new(VapidKey::generate());
        let client = PushClient::new(PushConfig::new(vapid.clone(), "mailto:a@b.c")).unwrap();
        assert_eq!(client.vapid_public_key(), vapid.public_key_base64url());
        assert!(!client.fcm_configured() && !client.apns_configured());

        let mut cfg = PushConfig::new(vapid, "mailto:a@b.c");
        cfg.fcm = Some(fcm::tests::credentials());
        cfg.apns = Some(apns::tests::config());
        let client = PushClient::new(cfg).unwrap();
        assert!(client.fcm_configured() && client.apns_configured());
    }

    #[test]
    fn bad_extra_roots_are_a_configuration_error() {
        let mut cfg = PushConfig::new(Arc::new(VapidKey::generate()), "mailto:a@b.c");
        cfg.extra_root_ca_pem = Some(b"not a certificate".to_vec());
        let err = PushClient::new(cfg).err().unwrap();
        assert!(err.to_string().contains("root CA"));
    }
}
