//! In-app notifications and the durable job queue that produces them.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{JobId, NotificationId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    pub attempts: i32,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: String,
    pub data: String,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

pub struct Notifications<'a>(&'a Db);

impl Db {
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications(self)
    }
}

impl Notifications<'_> {
    pub async fn enqueue_job(&self, kind: &str, payload: &str, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO notification_jobs (id, kind, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(JobId::new()).bind(kind).bind(payload).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Claims due jobs with a lease (conditional UPDATE; no row or advisory locks).
    pub async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<JobRow>> {
        let candidates: Vec<(JobId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM notification_jobs WHERE done_at IS NULL AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_attempt_at LIMIT $2")
            .bind(now).bind(limit).fetch_all(p).await)?;
        let mut claimed = Vec::new();
        for (id,) in candidates {
            let row: Option<JobRow> = on_pool!(self.0, p => sqlx::query_as(
                "UPDATE notification_jobs SET claimed_until = $3, attempts = attempts + 1
                 WHERE id = $1 AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2)
                 RETURNING id, kind, payload, attempts")
                .bind(id).bind(now).bind(lease_until).fetch_optional(p).await)?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    pub async fn finish_job(&self, id: JobId, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE notification_jobs SET done_at = $2, claimed_until = NULL WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn retry_job(&self, id: JobId, at: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE notification_jobs SET claimed_until = NULL, next_attempt_at = $2 WHERE id = $1")
            .bind(id).bind(at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert(
        &self,
        user: UserId,
        kind: &str,
        data: &str,
        now: Timestamp,
    ) -> AppResult<NotificationId> {
        let id = NotificationId::new();
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, data, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id).bind(user).bind(kind).bind(data).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(id)
    }

    pub async fn list(
        &self,
        user: UserId,
        before: Option<NotificationId>,
        limit: i64,
    ) -> AppResult<Vec<NotificationRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, user_id, kind, data, created_at, read_at FROM notifications
             WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
            .bind(user).bind(before).bind(limit).fetch_all(p).await)?)
    }
}
