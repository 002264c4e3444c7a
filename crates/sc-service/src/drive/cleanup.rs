//! The durable cleanup job: abandoned uploads, queued object deletions, temporary files.

use super::*;

impl DriveService {
    /// The durable cleanup job: every instance runs it (each step is a conditional write, so
    /// two instances never release a reservation twice).
    pub fn spawn_cleanup(&self, stop: CancellationToken) {
        let svc = self.clone();
        let every = Duration::from_secs(self.d.cfg.drive_cleanup_interval_seconds.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            // Temporary files of writes a crash cut short: a walk of the store, so hourly.
            let mut sweep = tokio::time::interval(TEMP_SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = sweep.tick() => match svc.blobs.sweep_temp(TEMP_SWEEP_EVERY).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "drive cleanup: temporary files"),
                        Err(e) => tracing::warn!(error = %e, "drive temporary-file sweep failed"),
                    },
                    _ = tick.tick() => match svc.cleanup_once().await {
                        Ok((0, 0)) => {}
                        Ok((abandoned, deleted)) => tracing::info!(abandoned, deleted, "drive cleanup"),
                        Err(e) => tracing::warn!(error = %e, "drive cleanup failed"),
                    },
                }
            }
        });
    }

    /// One pass of the cleanup job: abandons uploads whose reservation lapsed, then deletes
    /// queued objects. Returns (uploads abandoned, objects deleted).
    pub async fn cleanup_once(&self) -> AppResult<(usize, usize)> {
        let repo = self.d.db.drive();
        let now = Timestamp::now();
        // Collected one interval after the reservation lapsed, so a PUT that started just
        // before its URL expired can finish first.
        let grace = Duration::from_secs(self.d.cfg.drive_cleanup_interval_seconds);
        let before = Timestamp(now.millis() - grace.as_millis() as i64);
        let mut abandoned = 0;
        for (file, version) in repo.expired_uploads(before, BATCH).await? {
            if repo.abandon_version(file, version, now).await? {
                abandoned += 1;
            }
        }
        let mut deleted = 0;
        for raw in repo.queued_blob_deletions(BATCH).await? {
            if let Some(key) = BlobKey::parse(&raw) {
                self.blobs.delete(&key).await?;
            }
            repo.blob_deleted(&raw).await?;
            deleted += 1;
        }
        Ok((abandoned, deleted))
    }
}
