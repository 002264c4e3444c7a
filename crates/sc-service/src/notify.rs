//! Offline notifications: sending a message queues one durable job; a bounded pool of workers
//! turns it into in-app notification records for the recipients who are not online. (Push and
//! email delivery build on these records later.)

use crate::Deps;
use sc_core::{ids::MessageId, time::Timestamp};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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

    /// Processes due jobs; true when something was claimed.
    pub async fn run_once(&self) -> bool {
        let now = Timestamp::now();
        let jobs = match self
            .d
            .db
            .notifications()
            .claim_jobs(now, now.plus(Duration::from_secs(60)), 20)
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "notification queue unavailable");
                return false;
            }
        };
        let any = !jobs.is_empty();
        for job in jobs {
            let result = match job.kind.as_str() {
                "message" => self.message_job(&job.payload).await,
                other => {
                    tracing::warn!(kind = other, "unknown notification job");
                    Ok(())
                }
            };
            let db = self.d.db.notifications();
            let outcome = match result {
                Ok(()) => db.finish_job(job.id, Timestamp::now()).await,
                Err(e) if job.attempts < 10 => {
                    tracing::warn!(error = %e, attempts = job.attempts, "notification job failed; will retry");
                    db.retry_job(
                        job.id,
                        Timestamp::now().plus(Duration::from_secs(1 << job.attempts.clamp(0, 10))),
                    )
                    .await
                }
                Err(e) => {
                    tracing::error!(error = %e, "notification job failed for good");
                    db.finish_job(job.id, Timestamp::now()).await
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "could not record notification job outcome");
            }
        }
        any
    }

    /// A `message` job carries the message id; recipients are the members other than the sender
    /// (as they are when the job runs) who are not online.
    async fn message_job(&self, payload: &str) -> sc_core::AppResult<()> {
        let Ok(id) = payload.parse::<MessageId>() else {
            tracing::warn!("malformed message job");
            return Ok(());
        };
        // A message deleted (or a conversation removed) since needs no notification.
        let Some(m) = self.d.db.chat().message(id).await? else {
            return Ok(());
        };
        if m.deleted_at.is_some() {
            return Ok(());
        }
        let now = Timestamp::now();
        // One query finds who has no live socket anywhere (a chosen "offline" status still
        // counts as connected: invisible users are not emailed for chats they are reading).
        for user in self
            .d
            .db
            .realtime()
            .offline_members(m.conversation_id, m.sender_id, now)
            .await?
        {
            let data = json!({"conversation_id": m.conversation_id, "message_id": m.id, "sender_id": m.sender_id, "seq": m.seq});
            let nid = self
                .d
                .db
                .notifications()
                .insert(user, "message", &data.to_string(), now)
                .await?;
            self.d
                .emit(
                    vec![user],
                    "notification",
                    &json!({"id": nid, "kind": "message", "data": data}),
                )
                .await;
        }
        Ok(())
    }
}
