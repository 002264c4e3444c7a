//! The retention job: messages (with files attached only to them), audit-log entries and
//! notification records past their configured age
//! are deleted in bounded batches (a pass never holds a long lock), on every instance (the
//! deletes are idempotent, so instances racing each other only share the work).

use super::AdminService;
use sc_core::{AppResult, time::Timestamp};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows per DELETE.
const PURGE_BATCH: i64 = 1000;
/// Batches per kind per pass, so one pass ends even under a huge backlog (the next goes on).
const MAX_BATCHES: u32 = 100;

/// What one pass deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub audit: u64,
    pub notifications: u64,
    pub messages: u64,
    /// Files deleted because the last message they were attached to expired.
    pub attachments: u64,
}

fn cutoff(now: Timestamp, days: u32) -> Option<Timestamp> {
    (days > 0).then(|| now.minus(Duration::from_secs(u64::from(days) * 86_400)))
}

impl AdminService {
    pub fn spawn_retention(&self, stop: CancellationToken) {
        let svc = self.clone();
        let every = Duration::from_secs(self.d.cfg.retention_interval_seconds);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => if let Err(e) = svc.purge_expired().await {
                        tracing::warn!(error = %e, "retention pass failed");
                    },
                }
            }
        });
    }

    /// One retention pass.
    pub async fn purge_expired(&self) -> AppResult<Purged> {
        let now = Timestamp::now();
        let cfg = &self.d.cfg;
        let mut purged = Purged::default();
        if let Some(before) = cutoff(now, cfg.audit_retention_days) {
            purged.audit = self
                .purge("audit", || async move {
                    self.d.db.audit().purge_before(before, PURGE_BATCH).await
                })
                .await?;
        }
        if let Some(before) = cutoff(now, cfg.notification_retention_days) {
            purged.notifications = self
                .purge("notifications", || async move {
                    self.d
                        .db
                        .notifications()
                        .purge_before(before, PURGE_BATCH)
                        .await
                })
                .await?;
        }
        self.purge_messages(now, &mut purged).await?;
        Ok(purged)
    }

    /// Messages past their conversation's retention, in batches, with their attachments.
    async fn purge_messages(&self, now: Timestamp, purged: &mut Purged) -> AppResult<()> {
        let server = self.d.cfg.message_retention_days;
        for _ in 0..MAX_BATCHES {
            let batch = self
                .d
                .db
                .retention()
                .purge_messages(server, now, PURGE_BATCH)
                .await?;
            purged.messages += batch.messages;
            purged.attachments += batch.files;
            if batch.messages < PURGE_BATCH as u64 {
                break;
            }
        }
        // The objects of deleted attachments are queued: the drive cleanup job deletes them.
        self.record("messages", purged.messages);
        self.record("attachments", purged.attachments);
        Ok(())
    }

    /// Counts what a pass deleted of one kind (metric and log line).
    fn record(&self, kind: &str, rows: u64) {
        if rows > 0 {
            self.d
                .metrics
                .retention_purged
                .get_or_create(&vec![("kind", kind.to_string())])
                .inc_by(rows);
            tracing::info!(kind, rows, "retention purge");
        }
    }

    async fn purge<F, Fut>(&self, kind: &str, batch: F) -> AppResult<u64>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = AppResult<u64>>,
    {
        let mut total = 0;
        for _ in 0..MAX_BATCHES {
            let n = batch().await?;
            total += n;
            if n < PURGE_BATCH as u64 {
                break;
            }
        }
        self.record(kind, total);
        Ok(total)
    }
}
