//! Housekeeping: removes rows that only history would keep (used tickets, finished jobs, sent
//! mail, spent tokens, long-ended sessions, old dead letters of the push queue).

use crate::Db;
use sc_core::{AppResult, time::Timestamp};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl Db {
    /// Deletes expired housekeeping rows; returns how many.
    pub async fn purge_expired(&self, now: Timestamp) -> AppResult<u64> {
        let mut n = 0;
        n += on_pool!(self, p => sqlx::query("DELETE FROM realtime_tickets WHERE expires_at < $1")
            .bind(now.minus(HOUR)).execute(p).await.map(|r| r.rows_affected()))?;
        // Finished jobs are deleted as they finish; this clears those earlier versions kept.
        n += on_pool!(self, p => sqlx::query("DELETE FROM notification_jobs WHERE done_at < $1")
            .bind(now.minus(DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        n += on_pool!(self, p => sqlx::query("DELETE FROM mail_queue WHERE sent_at < $1 OR failed_at < $2")
            .bind(now.minus(7 * DAY)).bind(now.minus(30 * DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        n += on_pool!(self, p => sqlx::query("DELETE FROM one_time_tokens WHERE expires_at < $1")
            .bind(now.minus(7 * DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        // Ended sessions stay listed for the audit trail for 30 days (their refresh tokens go
        // with them, which ends reuse detection for tokens that can no longer work anyway).
        n += on_pool!(self, p => sqlx::query("DELETE FROM sessions WHERE revoked_at < $1 OR absolute_expires_at < $1")
            .bind(now.minus(30 * DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        // Dead letters stay two weeks for operators (`secureconnect admin push-queue`); a
        // collapse window older than a day constrains nothing.
        n += on_pool!(self, p => sqlx::query("DELETE FROM push_deliveries WHERE state = 'dead' AND created_at < $1")
            .bind(now.minus(14 * DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        n += on_pool!(self, p => sqlx::query("DELETE FROM push_topics WHERE last_sent_at < $1")
            .bind(now.minus(DAY)).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }
}
