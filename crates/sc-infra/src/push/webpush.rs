//! Web Push (RFC 8030): one POST of the encrypted payload to the subscription's endpoint,
//! authenticated with VAPID.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use sha2::{Digest, Sha256};

use super::ssrf::{self, PublicOnlyResolver};
use super::vapid::VapidKey;
use super::{
    ClientBuilder, Outcome, PushConfig, PushMessage, classify_status, ece, now_unix,
    transport_failure,
};

const SERVICE: &str = "push service";
/// RFC 8030 §5.4: a topic is at most 32 characters of the base64url alphabet.
const MAX_TOPIC_LEN: usize = 32;

pub(crate) struct WebPushSender {
    client: reqwest::Client,
    vapid: Arc<VapidKey>,
    subject: String,
    allow_insecure: bool,
}

impl WebPushSender {
    pub(crate) fn new(cfg: &PushConfig, builder: ClientBuilder) -> anyhow::Result<Self> {
        let builder = if cfg.allow_insecure_endpoints {
            builder
        } else {
            // Defence in depth behind the per-send checks: https only, public addresses only.
            builder
                .https_only(true)
                .dns_resolver(Arc::new(PublicOnlyResolver))
        };
        // Never through a proxy: a proxy resolves names itself, past the public-only resolver.
        let client = builder
            .no_proxy()
            .build()
            .map_err(|_| anyhow::anyhow!("the Web Push HTTP client could not be built"))?;
        Ok(WebPushSender {
            client,
            vapid: cfg.vapid.clone(),
            subject: cfg.vapid_subject.clone(),
            allow_insecure: cfg.allow_insecure_endpoints,
        })
    }

    pub(crate) async fn send(
        &self,
        endpoint: &str,
        p256dh: &[u8; 65],
        auth: &[u8; 16],
        msg: &PushMessage<'_>,
    ) -> Outcome {
        // Re-checked on every send: the rules may have been tightened since the subscription
        // was stored, and the resolver never sees IP literals.
        let url = match ssrf::check_syntax(endpoint, self.allow_insecure) {
            Ok(url) => url,
            Err(e) => return Outcome::rejected(e.reason()),
        };
        let plaintext = serde_json::Value::Object(msg.payload.clone()).to_string();
        let body = match ece::encrypt(plaintext.as_bytes(), p256dh, auth) {
            Ok(body) => body,
            Err(e) => return Outcome::rejected(e.to_string()),
        };
        let authorization = self.vapid.authorization(&url, &self.subject, now_unix());
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_ENCODING, "aes128gcm")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("TTL", msg.ttl.as_secs())
            .header("Urgency", msg.urgency.as_str())
            .header(AUTHORIZATION, authorization);
        if let Some(topic) = msg.topic {
            request = request.header("Topic", topic_header(topic));
        }
        match request.body(body).send().await {
            // The body of a push service's answer is never needed, and from a user-chosen
            // endpoint not worth reading.
            Ok(resp) => classify_status(SERVICE, resp.status(), resp.headers()),
            Err(e) if ssrf::is_not_public_error(&e) => {
                Outcome::rejected(ssrf::EndpointError::NotPublic.reason())
            }
            Err(e) => transport_failure(SERVICE, &e),
        }
    }
}

/// The `Topic` header for a collapse key: a valid RFC 8030 topic (≤ 32 base64url characters)
/// as it is, anything else as the first 32 characters of base64url(SHA-256(topic)) — stable,
/// so pushes with one topic still collapse, and opaque, so the push service does not learn it.
pub fn topic_header(topic: &str) -> String {
    let valid = !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        return topic.to_owned();
    }
    let mut hashed = URL_SAFE_NO_PAD.encode(Sha256::digest(topic.as_bytes()));
    hashed.truncate(MAX_TOPIC_LEN);
    hashed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::{PushClient, Target, Urgency};
    use std::time::Duration;

    #[test]
    fn topics() {
        assert_eq!(topic_header("conv-123_abc"), "conv-123_abc");
        let max = "A".repeat(32);
        assert_eq!(topic_header(&max), max);
        for raw in [
            "",
            "0190f1c2-7a3b-7c00-8000-00000000abcd",
            "has space",
            "a.b",
            "ü",
            &"A".repeat(33),
        ] {
            let t = topic_header(raw);
            assert_eq!(t.len(), 32, "{raw:?}");
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(topic_header(raw), t, "stable");
        }
        assert_ne!(
            topic_header("conversation a."),
            topic_header("conversation b.")
        );
    }

    fn payload() -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), "message".into());
        map
    }

    fn subscription() -> ([u8; 65], [u8; 16]) {
        let key = ece::random_secret_key();
        (ece::uncompressed(&key.public_key()), [9u8; 16])
    }

    /// A private endpoint is refused before any connection (the port here would refuse it
    /// anyway, and then the outcome would be a retry, not a rejection).
    #[tokio::test]
    async fn private_endpoints_are_rejected_not_retried() {
        let client = PushClient::new(PushConfig::new(
            Arc::new(VapidKey::generate()),
            "mailto:a@b.c",
        ))
        .unwrap();
        let (p256dh, auth) = subscription();
        let payload = payload();
        let msg = PushMessage {
            payload: &payload,
            ttl: Duration::from_secs(60),
            urgency: Urgency::High,
            topic: None,
        };
        for endpoint in [
            "https://127.0.0.1:9/push/x",
            "https://localhost:9/push/x",
            "https://[::1]:9/push/x",
            "http://push.example.com/x",
        ] {
            let target = Target::WebPush {
                endpoint,
                p256dh: &p256dh,
                auth: &auth,
            };
            match client.send(target, &msg).await {
                Outcome::Rejected { reason } => assert!(!reason.contains("://"), "{reason}"),
                other => panic!("{endpoint}: {other:?}"),
            }
        }
    }

    /// With insecure endpoints allowed, an unreachable local port is a transient failure whose
    /// reason does not name the endpoint.
    #[tokio::test]
    async fn unreachable_endpoint_is_retried_without_leaking_it() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = PushConfig::new(Arc::new(VapidKey::generate()), "mailto:a@b.c");
        cfg.allow_insecure_endpoints = true;
        let client = PushClient::new(cfg).unwrap();
        let (p256dh, auth) = subscription();
        let payload = payload();
        let msg = PushMessage {
            payload: &payload,
            ttl: Duration::from_secs(60),
            urgency: Urgency::Normal,
            topic: Some("t"),
        };
        let endpoint = format!("http://127.0.0.1:{port}/push/capability");
        let target = Target::WebPush {
            endpoint: &endpoint,
            p256dh: &p256dh,
            auth: &auth,
        };
        match client.send(target, &msg).await {
            Outcome::Retry {
                after: None,
                reason,
            } => {
                assert!(!reason.contains("capability") && !reason.contains("127.0.0.1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
