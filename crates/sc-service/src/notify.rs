//! Offline notifications: sending a message queues one durable job; a bounded pool of workers
//! turns it into in-app notification records for the recipients who are not online. (Push and
//! email delivery build on these records later.)

use crate::Deps;
use sc_core::{
    AppResult,
    ids::{JobId, MessageId, NotificationId, UserId},
    time::Timestamp,
};
use sc_db::notifications::{NewNotification, NotificationRow};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Jobs claimed per batch (each names up to 64 messages): one statement each for claim, lookup
/// and completion, whatever the size.
const BATCH: i64 = 32;
/// Failed attempts before a job is parked for a day (it stays in the table for an operator).
const MAX_ATTEMPTS: i32 = 10;

#[derive(Clone)]
pub struct NotifyService {
    d: Arc<Deps>,
}

impl NotifyService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    pub fn spawn_workers(&self, workers: usize, stop: CancellationToken) {
        for _ in 0..workers {
            let svc = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    if svc.run_once().await {
                        continue;
                    }
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                }
            });
        }
    }

    /// The user's in-app notifications, newest first, below `before`.
    pub async fn list(
        &self,
        user: UserId,
        before: Option<NotificationId>,
        limit: i64,
    ) -> AppResult<Vec<NotificationRow>> {
        self.d.db.notifications().list(user, before, limit).await
    }

    /// Processes a batch of due jobs; true when something was claimed.
    ///
    /// The whole batch costs four statements whatever its size: claim, find the offline
    /// recipients of all its messages, then one transaction that writes every notification and
    /// removes the finished jobs (a job is never done without its records, nor recorded twice).
    pub async fn run_once(&self) -> bool {
        let now = Timestamp::now();
        let db = self.d.db.notifications();
        let jobs = match db
            .claim_jobs(now, now.plus(Duration::from_secs(60)), BATCH)
            .await
        {
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
            // Recipients as they are now: members other than the sender with no live socket
            // anywhere (a chosen "offline" status still counts as connected: invisible users
            // are not notified of chats they are reading). Deleted messages need nothing.
            let recipients = db.offline_recipients(&messages, Timestamp::now()).await?;
            let records: Vec<(NotificationId, UserId, Value)> = recipients
                .iter()
                .map(|r| {
                    let data = json!({"conversation_id": r.conversation_id, "message_id": r.message_id,
                                      "sender_id": r.sender_id, "seq": r.seq});
                    (NotificationId::new(), r.user_id, data)
                })
                .collect();
            let texts: Vec<String> = records.iter().map(|(_, _, data)| data.to_string()).collect();
            let created = Timestamp::now();
            let rows: Vec<NewNotification<'_>> = records
                .iter()
                .zip(&texts)
                .map(|((id, user, _), data)| NewNotification {
                    id: *id,
                    user_id: *user,
                    kind: "message",
                    data,
                    now: created,
                })
                .collect();
            let done: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            db.complete_jobs(&done, &rows).await?;
            Ok::<_, sc_core::AppError>(records)
        }
        .await;
        match outcome {
            Ok(records) => {
                for (id, user, data) in records {
                    self.d
                        .emit(
                            vec![user],
                            "notification",
                            &json!({"id": id, "kind": "message", "data": data}),
                        )
                        .await;
                }
            }
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
