//! Push subscriptions and delivery: devices register a Web Push, FCM or APNs subscription tied
//! to their session; a bounded pool sends the queued pushes, retrying with backoff (and any
//! `Retry-After`), deleting subscriptions the service no longer knows and keeping what keeps
//! failing as dead letters.

use super::NotifyService;
use crate::{AuthContext, Deps};
use futures_util::StreamExt;
use sc_core::{
    AppError, AppResult,
    ids::{CallId, ConversationId, NotificationId, PushDeliveryId, PushSubscriptionId, UserId},
    time::Timestamp,
};
use sc_db::push::{ClaimedDelivery, NewDelivery, NewSubscription, SubscriptionRow};
use sc_infra::push::{Outcome, PushMessage, Target, Urgency, ece, ssrf};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// Pushes claimed per batch: at most 4 rounds of a sender's concurrency, so even a batch
/// whose every push runs into the 10 s timeout ends well within its 60 s lease.
const BATCH: i64 = 128;

/// The decrypted payload of every push (API.md §12): ids, and a title and text only when the
/// operator allows content for a plain conversation.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    /// The notification kind, or `call.ringing`.
    pub kind: String,
    pub notification_id: Option<NotificationId>,
    pub conversation_id: Option<ConversationId>,
    pub call_id: Option<CallId>,
    pub title: Option<String>,
    pub body: Option<String>,
}

impl Payload {
    /// Pushes about one conversation's messages collapse into one another. The topic is an
    /// opaque digest of the conversation id: push services (and FCM's `collapse_key`, APNs'
    /// `apns-collapse-id`) see no id they could relate to anything.
    pub fn topic(&self) -> Option<String> {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        match self.kind.as_str() {
            "message" | "mention" => self.conversation_id.map(|c| {
                let digest = Sha256::digest(format!("push-topic:{c}").as_bytes());
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
            }),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(self.kind.clone()));
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), Value::String(v));
            }
        };
        put(
            "notification_id",
            self.notification_id.map(|i| i.to_string()),
        );
        put(
            "conversation_id",
            self.conversation_id.map(|i| i.to_string()),
        );
        put("call_id", self.call_id.map(|i| i.to_string()));
        put("title", self.title.clone());
        put("body", self.body.clone());
        Value::Object(m).to_string()
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: PushSubscriptionId,
    /// `webpush`, `fcm` or `apns`
    pub kind: String,
    pub device_name: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<SubscriptionRow> for SubscriptionView {
    fn from(s: SubscriptionRow) -> Self {
        Self {
            id: s.id,
            kind: s.kind,
            device_name: s.device_name,
            created_at: s.created_at,
        }
    }
}

/// A subscription request as the API received it.
pub enum SubscribeRequest {
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
    },
    Fcm {
        token: String,
    },
    Apns {
        token: String,
        environment: Option<String>,
    },
}

/// A device token of FCM or APNs: printable, bounded, checked once.
struct DeviceToken(String);

impl DeviceToken {
    fn fcm(raw: &str) -> AppResult<Self> {
        let ok = (1..=4096).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
        ok.then(|| Self(raw.to_string()))
            .ok_or_else(|| AppError::validation("token", "not an FCM registration token"))
    }

    /// APNs device tokens are hex (32 bytes today; longer ones are allowed for the future).
    fn apns(raw: &str) -> AppResult<Self> {
        let ok = (64..=200).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Self(raw.to_ascii_lowercase()))
            .ok_or_else(|| AppError::validation("token", "not an APNs device token (hex)"))
    }
}

/// A Web Push subscription's keys as stored (checked at subscribe time).
fn webpush_keys(s: &SubscriptionRow) -> Option<([u8; 65], [u8; 16])> {
    let key = ece::parse_p256dh(s.p256dh.as_deref()?).ok()?;
    let auth = ece::parse_auth(s.auth.as_deref()?).ok()?;
    Some((key, auth))
}

fn urgency_of(s: &str) -> Urgency {
    match s {
        "high" => Urgency::High,
        "low" => Urgency::Low,
        "very-low" => Urgency::VeryLow,
        _ => Urgency::Normal,
    }
}

/// Exponential backoff from 2 s up to 2048 s, and never sooner than the service asked.
fn backoff(attempts: i32, retry_after: Option<Duration>) -> Duration {
    let exp = Duration::from_secs(1u64 << attempts.clamp(1, 11)).min(Duration::from_secs(3600));
    retry_after.map_or(exp, |r| r.max(exp))
}

impl NotifyService {
    /// Registers the calling session's subscription (201), or ties an existing one with the
    /// same endpoint or token to it (200, `false`).
    pub async fn subscribe(
        &self,
        ctx: &AuthContext,
        req: SubscribeRequest,
        device_name: Option<String>,
    ) -> AppResult<(SubscriptionView, bool)> {
        if let Some(n) = &device_name
            && (n.chars().count() > 100 || n.chars().any(char::is_control))
        {
            return Err(AppError::validation(
                "device_name",
                "at most 100 characters, no control characters",
            ));
        }
        let (kind, address, p256dh, auth, environment) = match req {
            SubscribeRequest::WebPush {
                endpoint,
                p256dh,
                auth,
            } => {
                ece::parse_p256dh(&p256dh).map_err(|_| {
                    AppError::validation(
                        "keys.p256dh",
                        "base64url of an uncompressed P-256 point on the curve",
                    )
                })?;
                ece::parse_auth(&auth)
                    .map_err(|_| AppError::validation("keys.auth", "base64url of 16 bytes"))?;
                // Resolved and checked before anything is stored: no request ever goes to a
                // private address (checked again at each send, against DNS rebinding).
                let url = ssrf::check_endpoint(&endpoint, self.d.cfg.push_allow_insecure_endpoints)
                    .await
                    .map_err(|e| AppError::validation("endpoint", e.reason()))?;
                ("webpush", url.to_string(), Some(p256dh), Some(auth), None)
            }
            SubscribeRequest::Fcm { token } => {
                if !self.d.push.fcm_configured() {
                    return Err(AppError::validation(
                        "kind",
                        "this server does not send FCM pushes",
                    ));
                }
                ("fcm", DeviceToken::fcm(&token)?.0, None, None, None)
            }
            SubscribeRequest::Apns { token, environment } => {
                if !self.d.push.apns_configured() {
                    return Err(AppError::validation(
                        "kind",
                        "this server does not send APNs pushes",
                    ));
                }
                let env = match environment.as_deref() {
                    None | Some("production") => "production",
                    Some("sandbox") => "sandbox",
                    Some(_) => {
                        return Err(AppError::validation("environment", "production or sandbox"));
                    }
                };
                ("apns", DeviceToken::apns(&token)?.0, None, None, Some(env))
            }
        };
        let (row, existed) = self
            .d
            .db
            .push()
            .subscribe(&NewSubscription {
                id: PushSubscriptionId::new(),
                user_id: ctx.user_id,
                session_id: ctx.session_id,
                kind,
                address: &address,
                p256dh: p256dh.as_deref(),
                auth: auth.as_deref(),
                environment,
                device_name: device_name.as_deref(),
                now: Timestamp::now(),
            })
            .await?;
        if !existed {
            self.d
                .audit(
                    Some(ctx.user_id),
                    "push.subscribed",
                    None,
                    serde_json::json!({"kind": kind}),
                )
                .await;
        }
        Ok((row.into(), !existed))
    }

    /// The caller's subscriptions on every session, oldest first.
    pub async fn subscriptions(
        &self,
        ctx: &AuthContext,
        after: Option<PushSubscriptionId>,
        limit: i64,
    ) -> AppResult<Vec<SubscriptionView>> {
        let rows = self.d.db.push().list(ctx.user_id, after, limit).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Deletes one of the caller's subscriptions (someone else's → 404).
    pub async fn unsubscribe(&self, ctx: &AuthContext, id: PushSubscriptionId) -> AppResult<()> {
        if self.d.db.push().delete(ctx.user_id, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("push subscription not found".into()))
        }
    }

    pub fn vapid_public_key(&self) -> &str {
        self.d.push.vapid_public_key()
    }

    /// Sends one batch of due pushes, `push_concurrency` at a time; true when something was
    /// claimed.
    pub(super) async fn push_once(&self) -> bool {
        let now = Timestamp::now();
        let repo = self.d.db.push();
        let claimed = match repo
            .claim_due(now, now.plus(Duration::from_secs(60)), BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "push queue unavailable");
                return false;
            }
        };
        if claimed.is_empty() {
            self.refresh_queue_gauges().await;
            return false;
        }
        // Deliveries are recorded together once the batch is through; the rarer outcomes at once.
        let delivered = std::sync::Mutex::new(Vec::with_capacity(claimed.len()));
        let delivered_ref = &delivered;
        futures_util::stream::iter(&claimed)
            .for_each_concurrent(self.sender_concurrency(), |d| async move {
                match self.send_one(d).await {
                    Outcome::Delivered => {
                        self.push_healthy
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        delivered_ref
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(d);
                    }
                    other => self.settle(d, other).await,
                }
            })
            .await;
        let delivered = delivered.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut by_channel: std::collections::BTreeMap<&str, u64> = Default::default();
        for d in &delivered {
            *by_channel.entry(d.subscription.kind.as_str()).or_default() += 1;
        }
        for (channel, n) in by_channel {
            self.d
                .metrics
                .push_outcomes
                .get_or_create(&vec![
                    ("channel", channel.to_string()),
                    ("outcome", "delivered".to_string()),
                ])
                .inc_by(n);
        }
        if let Err(e) = repo.delivered(&delivered, Timestamp::now()).await {
            // Their leases run out and they go again: a push twice, never a push lost.
            tracing::warn!(error = %e, "could not record delivered pushes");
        }
        true
    }

    async fn send_one(&self, d: &ClaimedDelivery) -> Outcome {
        let sub = &d.subscription;
        let keys;
        let target = match sub.kind.as_str() {
            "webpush" => {
                let Some(k) = webpush_keys(sub) else {
                    return Outcome::Gone;
                };
                keys = k;
                Target::WebPush {
                    endpoint: &sub.address,
                    p256dh: &keys.0,
                    auth: &keys.1,
                }
            }
            "fcm" => Target::Fcm {
                token: &sub.address,
            },
            "apns" => Target::Apns {
                token: &sub.address,
                sandbox: sub.environment.as_deref() == Some("sandbox"),
            },
            _ => return Outcome::Gone,
        };
        let payload: Map<String, Value> = match serde_json::from_str(&d.payload) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Outcome::Rejected {
                    reason: "unreadable payload".into(),
                };
            }
        };
        let msg = PushMessage {
            payload: &payload,
            ttl: Duration::from_secs(d.ttl_seconds.max(0) as u64),
            urgency: urgency_of(&d.urgency),
            topic: d.topic.as_deref(),
        };
        self.d.push.send(target, &msg).await
    }

    /// Records what became of a push. Errors here only delay it: the lease runs out and the
    /// push is claimed again.
    async fn settle(&self, d: &ClaimedDelivery, outcome: Outcome) {
        let repo = self.d.db.push();
        let now = Timestamp::now();
        let channel = d.subscription.kind.clone();
        let healthy = !matches!(outcome, Outcome::Retry { .. });
        self.push_healthy
            .store(healthy, std::sync::atomic::Ordering::Relaxed);
        let (label, res) = match outcome {
            Outcome::Delivered => ("delivered", repo.delivered(&[d], now).await),
            Outcome::Gone => ("gone", repo.remove(d.subscription.id).await),
            Outcome::Retry { after, reason }
                if d.attempts < self.d.cfg.push_max_attempts as i32 =>
            {
                let at = now.plus(backoff(d.attempts, after));
                ("retry", repo.retry(d, at, &reason).await)
            }
            Outcome::Retry { reason, .. } | Outcome::Rejected { reason } => {
                tracing::warn!(channel = %channel, delivery_id = %d.id, reason = %reason, "push given up");
                ("dead", repo.dead(d.id, &reason).await)
            }
        };
        self.d
            .metrics
            .push_outcomes
            .get_or_create(&vec![("channel", channel), ("outcome", label.to_string())])
            .inc();
        if let Err(e) = res {
            tracing::warn!(error = %e, "could not record a push outcome");
        }
    }

    /// Each sender's share of `push_concurrency`.
    fn sender_concurrency(&self) -> usize {
        (self.d.cfg.push_concurrency / super::PUSH_SENDERS).max(1)
    }

    async fn refresh_queue_gauges(&self) {
        if let Ok((queued, dead)) = self.d.db.push().queue_depth().await {
            self.d.metrics.push_queued.set(queued);
            self.d.metrics.push_dead_letters.set(dead);
        }
    }
}

/// Wakes the devices of the members of a ringing call who are offline: a high-urgency push
/// that expires with the ring. Failing to push never fails the call.
pub async fn ring(
    d: &Deps,
    call: CallId,
    conversation: ConversationId,
    members: &[UserId],
    ring_for: Duration,
) {
    let run = async {
        let now = Timestamp::now();
        let offline: Vec<UserId> =
            d.db.notification_prefs()
                .recipients(members, now)
                .await?
                .into_iter()
                .filter(|r| r.offline)
                .map(|r| r.user_id)
                .collect();
        let payload = Payload {
            kind: "call.ringing".into(),
            conversation_id: Some(conversation),
            call_id: Some(call),
            ..Payload::default()
        }
        .to_json();
        let deliveries: Vec<NewDelivery> =
            d.db.push()
                .live_subscriptions_of(&offline, now)
                .await?
                .into_iter()
                .map(|s| NewDelivery {
                    id: PushDeliveryId::new(),
                    subscription_id: s.id,
                    notification: None,
                    payload: payload.clone(),
                    topic: None,
                    urgency: "high",
                    ttl_seconds: ring_for.as_secs() as i64,
                    now,
                    not_before: now,
                })
                .collect();
        d.db.push().enqueue(&deliveries).await?;
        Ok::<_, AppError>(!deliveries.is_empty())
    };
    match run.await {
        Ok(true) => d.push_wake.notify_one(),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not queue ringing pushes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_content_free_unless_filled() {
        let c = ConversationId::new();
        let p = Payload {
            kind: "message".into(),
            conversation_id: Some(c),
            ..Payload::default()
        };
        let v: Value = serde_json::from_str(&p.to_json()).unwrap_or_default();
        assert_eq!(v["type"], "message");
        assert_eq!(v["conversation_id"], c.to_string());
        assert!(v.get("title").is_none() && v.get("body").is_none());
        let topic = p.topic().unwrap_or_default();
        assert_eq!(
            topic.len(),
            22,
            "opaque, and within RFC 8030's 32 characters"
        );
        assert!(!topic.contains(&c.to_string()));
        let ring = Payload {
            kind: "call.ringing".into(),
            ..p
        };
        assert_eq!(ring.topic(), None);
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_secs(2));
        assert_eq!(backoff(3, None), Duration::from_secs(8));
        assert_eq!(backoff(30, None), Duration::from_secs(2048));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn device_tokens() {
        assert!(DeviceToken::fcm("abc:DEF-123_x.y").is_ok());
        assert!(DeviceToken::fcm("has space").is_err());
        assert!(DeviceToken::apns(&"ab".repeat(32)).is_ok());
        assert!(DeviceToken::apns("zz").is_err());
    }
}
