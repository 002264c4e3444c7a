//! Offline notifications: sending a message queues one durable job; a bounded pool of workers
//! turns it into in-app notification records for the recipients who are not online. (Push and
//! email delivery build on these records later.)

use crate::Deps;
use sc_core::{ids::UserId, time::Timestamp};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Deserialize)]
struct MessageJob {
    message_id: String,
    conversation_id: String,
    sender_id: String,
    seq: i64,
    recipients: Vec<UserId>,
}

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

    async fn message_job(&self, payload: &str) -> sc_core::AppResult<()> {
        let job: MessageJob = serde_json::from_str(payload).map_err(sc_core::AppError::internal)?;
        let now = Timestamp::now();
        for user in job.recipients {
            let online = self
                .d
                .db
                .realtime()
                .presence_visible_to(user, user)
                .await?
                .is_some_and(|(status, until, _)| status != "offline" && until > now);
            if online {
                continue;
            }
            let data = json!({"conversation_id": job.conversation_id, "message_id": job.message_id, "sender_id": job.sender_id, "seq": job.seq});
            let id = self
                .d
                .db
                .notifications()
                .insert(user, "message", &data.to_string(), now)
                .await?;
            self.d
                .emit(
                    vec![user],
                    "notification",
                    &json!({"id": id, "kind": "message", "data": data}),
                )
                .await;
        }
        Ok(())
    }
}
