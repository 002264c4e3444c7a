//! The dispatcher: takes each new notification record once and queues what it causes — a push
//! to each live device of a recipient who is offline (per the kind's `push` switch), an
//! immediate mail for kinds that are not digested (per its `email` switch; always for
//! security) — in the transaction that marks it dispatched, then sends its realtime event.

use super::{NotificationView, NotifyService, mails, push::Payload};
use sc_core::{
    ids::{ConversationId, MessageId, NotificationId, PushDeliveryId, PushSubscriptionId, UserId},
    time::Timestamp,
};
use sc_db::{
    mail::NewMail,
    notification_prefs::{KindSetting, Recipient},
    notifications::{MessageSummary, NotificationRow},
    push::{NewDelivery, SubscriptionRow},
};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Records dispatched per batch.
const BATCH: i64 = 500;
/// How long a push about a notification stays worth delivering.
const PUSH_TTL: Duration = Duration::from_secs(24 * 3600);

/// Kinds mailed one by one as they happen (`message` and `mention` go in digests).
fn mailed_at_once(kind: &str) -> bool {
    matches!(
        kind,
        "call.missed" | "file.shared" | "call.scheduled" | "security"
    )
}

/// `Urgency` of a kind's pushes (RFC 8030 §5.3): people are waiting on mentions and reminders.
fn urgency(kind: &str) -> &'static str {
    match kind {
        "mention" | "call.scheduled" | "security" => "high",
        "file.shared" => "low",
        _ => "normal",
    }
}

/// A user's switches for a kind: stored values, else the defaults (both on); security always on.
fn switches(
    settings: &HashMap<(UserId, &str), &KindSetting>,
    user: UserId,
    kind: &str,
) -> (bool, bool) {
    if kind == "security" {
        return (true, true);
    }
    settings
        .get(&(user, kind))
        .map_or((true, true), |s| (s.push, s.email))
}

impl NotifyService {
    /// Dispatches one batch of records; true when something was claimed.
    pub(super) async fn dispatch_once(&self) -> bool {
        match self.dispatch_batch().await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "notification dispatch failed; will retry");
                false
            }
        }
    }

    async fn dispatch_batch(&self) -> sc_core::AppResult<usize> {
        let now = Timestamp::now();
        let lease = now.plus(super::jobs::LEASE);
        let db = &self.d.db;
        let rows = db
            .notifications()
            .claim_undispatched(now, lease, BATCH)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut users: Vec<UserId> = rows.iter().map(|r| r.user_id).collect();
        users.sort();
        users.dedup();
        let recipients: HashMap<UserId, Recipient> = db
            .notification_prefs()
            .recipients(&users, now)
            .await?
            .into_iter()
            .map(|r| (r.user_id, r))
            .collect();
        let stored = db.notification_prefs().settings_of(&users).await?;
        let settings: HashMap<(UserId, &str), &KindSetting> = stored
            .iter()
            .map(|s| ((s.user_id, s.kind.as_str()), s))
            .collect();
        // Devices of recipients who are offline and want this kind pushed.
        let pushed: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|u| recipients.get(u).is_some_and(|r| r.offline))
            .collect();
        let subscriptions = db.push().live_subscriptions_of(&pushed, now).await?;
        let mut devices: HashMap<UserId, Vec<&SubscriptionRow>> = HashMap::new();
        for s in &subscriptions {
            devices.entry(s.user_id).or_default().push(s);
        }
        let sub_ids: Vec<PushSubscriptionId> = subscriptions.iter().map(|s| s.id).collect();
        let last_sent: HashMap<(PushSubscriptionId, String), Timestamp> = db
            .push()
            .topics_last_sent(&sub_ids)
            .await?
            .into_iter()
            .map(|(s, t, at)| ((s, t), at))
            .collect();
        let summaries = self.summaries_for_content(&rows).await?;

        let collapse = Duration::from_secs(self.d.cfg.push_collapse_seconds);
        // One waiting push per (device, topic) in a batch: the newest, at the highest urgency.
        let mut deliveries: Vec<NewDelivery> = Vec::new();
        let mut by_topic: HashMap<(PushSubscriptionId, String), usize> = HashMap::new();
        let mut mails: Vec<(NotificationId, NewMail)> = Vec::new();
        for n in &rows {
            let Some(who) = recipients.get(&n.user_id) else {
                continue;
            };
            let (push_on, email_on) = switches(&settings, n.user_id, &n.kind);
            let data: Value = serde_json::from_str(&n.data).unwrap_or(Value::Null);
            if push_on && who.offline {
                let payload = self.payload_of(n, &data, &summaries);
                let topic = payload.topic();
                let text = payload.to_json();
                for s in devices.get(&n.user_id).into_iter().flatten() {
                    let not_before = topic
                        .as_ref()
                        .and_then(|t| last_sent.get(&(s.id, t.clone())))
                        .map_or(now, |at| (*at).plus(collapse).max(now));
                    let d = NewDelivery {
                        id: PushDeliveryId::new(),
                        subscription_id: s.id,
                        notification: Some(n.id),
                        payload: text.clone(),
                        topic: topic.clone(),
                        urgency: urgency(&n.kind),
                        ttl_seconds: PUSH_TTL.as_secs() as i64,
                        now,
                        not_before,
                    };
                    match topic.as_ref().map(|t| (s.id, t.clone())) {
                        Some(key) => match by_topic.get(&key) {
                            Some(&i) => {
                                let keep_high = deliveries[i].urgency == "high";
                                deliveries[i] = NewDelivery {
                                    urgency: if keep_high { "high" } else { d.urgency },
                                    not_before: deliveries[i].not_before,
                                    ..d
                                };
                            }
                            None => {
                                by_topic.insert(key, deliveries.len());
                                deliveries.push(d);
                            }
                        },
                        None => deliveries.push(d),
                    }
                }
            }
            let may_mail = n.kind == "security" || who.email_verified;
            if email_on && may_mail && mailed_at_once(&n.kind) {
                let mail = mails::immediate(&self.d.cfg, who, &n.kind, &data, now);
                mails.push((n.id, mail));
            }
        }
        let ids: Vec<NotificationId> = rows.iter().map(|r| r.id).collect();
        let ours = db
            .notifications()
            .finish_dispatch(&ids, lease, &deliveries, &mails, now)
            .await?;
        if deliveries
            .iter()
            .any(|d| d.notification.is_some_and(|n| ours.contains(&n)))
        {
            self.d.push_wake.notify_one();
        }
        if !mails.is_empty() {
            self.d.mail.wake();
        }
        for n in rows.into_iter().filter(|n| ours.contains(&n.id)) {
            self.d
                .metrics
                .notifications_dispatched
                .get_or_create(&vec![("kind", n.kind.clone())])
                .inc();
            let user = n.user_id;
            self.d
                .emit(vec![user], "notification", &NotificationView::from(n))
                .await;
        }
        Ok(ids.len())
    }

    /// The messages whose text pushes may carry: only when the operator allows content, and
    /// only for plain conversations (checked again when the payload is made).
    async fn summaries_for_content(
        &self,
        rows: &[NotificationRow],
    ) -> sc_core::AppResult<HashMap<MessageId, MessageSummary>> {
        if !self.d.cfg.push_include_content {
            return Ok(HashMap::new());
        }
        let ids: HashSet<MessageId> = rows
            .iter()
            .filter(|n| n.kind == "message" || n.kind == "mention")
            .filter_map(|n| {
                let data: Value = serde_json::from_str(&n.data).ok()?;
                data.get("message_id")?.as_str()?.parse().ok()
            })
            .collect();
        let ids: Vec<MessageId> = ids.into_iter().collect();
        Ok(self
            .d
            .db
            .notifications()
            .message_summaries(&ids)
            .await?
            .into_iter()
            .map(|m| (m.message_id, m))
            .collect())
    }

    /// The push payload of a record: ids only, plus a title and text for plain conversations
    /// when the operator allows content.
    fn payload_of(
        &self,
        n: &NotificationRow,
        data: &Value,
        summaries: &HashMap<MessageId, MessageSummary>,
    ) -> Payload {
        let id_of = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
        let conversation: Option<ConversationId> =
            id_of("conversation_id").and_then(|c| c.parse().ok());
        let mut p = Payload {
            kind: n.kind.clone(),
            notification_id: Some(n.id),
            conversation_id: conversation,
            call_id: id_of("call_id").and_then(|c| c.parse().ok()),
            title: None,
            body: None,
        };
        let message: Option<MessageId> = id_of("message_id").and_then(|m| m.parse().ok());
        if let Some(m) = message.and_then(|m| summaries.get(&m))
            && !m.encrypted
        {
            p.title = Some(
                match (&m.conversation_title, m.conversation_kind.as_str()) {
                    (Some(t), "group") => format!("{} in {t}", m.sender_name),
                    _ => m.sender_name.clone(),
                },
            );
            p.body = m.content.as_deref().map(|c| mails::excerpt(c, 200));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_is_always_on_and_defaults_are_on() {
        let u = UserId::new();
        let off = KindSetting {
            user_id: u,
            kind: "message".into(),
            push: false,
            email: true,
        };
        let map: HashMap<(UserId, &str), &KindSetting> = [((u, "message"), &off)].into();
        assert_eq!(switches(&map, u, "message"), (false, true));
        assert_eq!(switches(&map, u, "mention"), (true, true));
        assert_eq!(switches(&map, u, "security"), (true, true));
        assert!(mailed_at_once("security") && !mailed_at_once("message"));
        assert_eq!(urgency("mention"), "high");
    }
}
