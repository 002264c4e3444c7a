//! The message worker: sending a message commits one durable job with it; a worker turns the
//! job into `message` records for members who are offline (and have not muted the
//! conversation) and `mention` records for the members it mentions, online or not.

use super::NotifyService;
use crate::chat::mentions;
use sc_core::{
    ids::{JobId, MessageId, NotificationId},
    time::Timestamp,
};
use sc_db::notifications::{MessageRecipient, NewNotification};
use serde_json::json;
use std::time::Duration;

/// Jobs claimed per batch (each names up to 64 messages): one statement each for claim, lookup
/// and completion, whatever the size.
const BATCH: i64 = 32;
/// Failed attempts before a job is parked for a day (it stays in the table for an operator).
const MAX_ATTEMPTS: i32 = 10;
/// How long a claimed batch is another worker's: far beyond a batch's few statements, short
/// enough that a batch of a crashed instance is taken over soon.
pub(super) const LEASE: Duration = Duration::from_secs(15);

/// The record a member gets for a message, if any.
pub(super) fn record_kind(r: &MessageRecipient) -> Option<&'static str> {
    if !r.mentions.is_empty() && mentions::mentions_user(&r.mentions, r.user_id) {
        Some("mention")
    } else if r.offline && !r.muted {
        Some("message")
    } else {
        None
    }
}

impl NotifyService {
    /// Processes a batch of due jobs; true when something was claimed.
    ///
    /// The whole batch costs four statements whatever its size: claim, find the recipients of
    /// all its messages, then one transaction that writes every record and removes the
    /// finished jobs (a job is never done without its records; a retry after a crash finds
    /// the records written and adds none, by their unique key).
    pub(super) async fn run_jobs_once(&self) -> bool {
        let now = Timestamp::now();
        let db = self.d.db.notifications();
        let jobs = match db.claim_jobs("message", now, now.plus(LEASE), BATCH).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "notification queue unavailable");
                return false;
            }
        };
        if jobs.is_empty() {
            return false;
        }
        // A `message` job carries the ids of the messages written together, comma-separated.
        let mut messages: Vec<MessageId> = Vec::new();
        for job in &jobs {
            let ids: Option<Vec<MessageId>> = (job.kind == "message")
                .then(|| job.payload.split(',').map(|id| id.parse().ok()).collect())
                .flatten();
            match ids {
                Some(ids) => messages.extend(ids),
                // Finished below like the rest: retrying cannot make it readable.
                None => tracing::warn!(kind = %job.kind, "unknown or malformed notification job"),
            }
        }
        let outcome = async {
            // Recipients as they are now; deleted messages need nothing.
            let recipients = db.message_recipients(&messages, Timestamp::now()).await?;
            let records: Vec<(&MessageRecipient, &'static str, String)> = recipients
                .iter()
                .filter_map(|r| {
                    let kind = record_kind(r)?;
                    let data = json!({"conversation_id": r.conversation_id, "message_id": r.message_id,
                                      "sender_id": r.sender_id, "seq": r.seq});
                    Some((r, kind, data.to_string()))
                })
                .collect();
            let created = Timestamp::now();
            let rows: Vec<NewNotification<'_>> = records
                .iter()
                .map(|(r, kind, data)| NewNotification {
                    id: NotificationId::new(),
                    user_id: r.user_id,
                    kind,
                    source: r.message_id.to_string(),
                    data,
                    now: created,
                })
                .collect();
            let done: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            db.complete_jobs(&done, &rows).await?;
            Ok::<_, sc_core::AppError>(!rows.is_empty())
        }
        .await;
        match outcome {
            Ok(true) => self.d.notify_wake.notify_one(),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, jobs = jobs.len(), "notification batch failed; will retry");
                for job in &jobs {
                    // Retried with backoff; after MAX_ATTEMPTS the lease simply never ends
                    // sooner than a day, so a poisoned batch cannot spin.
                    let delay = if job.attempts >= MAX_ATTEMPTS {
                        Duration::from_secs(86_400)
                    } else {
                        Duration::from_secs(1 << job.attempts.clamp(0, 10))
                    };
                    if let Err(e) = db.retry_job(job.id, Timestamp::now().plus(delay)).await {
                        tracing::warn!(error = %e, "could not record notification job outcome");
                    }
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sc_core::ids::{ConversationId, UserId};

    fn recipient(offline: bool, muted: bool, mentions: String, user: UserId) -> MessageRecipient {
        MessageRecipient {
            message_id: MessageId::new(),
            conversation_id: ConversationId::new(),
            sender_id: UserId::new(),
            seq: 1,
            mentions,
            user_id: user,
            offline,
            muted,
        }
    }

    #[test]
    fn mentions_notify_online_and_muted_members_messages_only_offline_unmuted_ones() {
        let u = UserId::new();
        let named = mentions::stored(&[u], false);
        assert_eq!(
            record_kind(&recipient(false, true, named.clone(), u)),
            Some("mention")
        );
        assert_eq!(
            record_kind(&recipient(false, false, "all".into(), u)),
            Some("mention")
        );
        assert_eq!(
            record_kind(&recipient(true, false, String::new(), u)),
            Some("message")
        );
        assert_eq!(record_kind(&recipient(true, true, String::new(), u)), None);
        assert_eq!(
            record_kind(&recipient(false, false, String::new(), u)),
            None
        );
        let other = mentions::stored(&[UserId::new()], false);
        assert_eq!(
            record_kind(&recipient(true, false, other, u)),
            Some("message")
        );
    }
}
