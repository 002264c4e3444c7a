//! In-app notifications and the durable job queue that produces them.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, JobId, MessageId, NotificationId, UserId},
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

/// A recipient of a message notification (see `offline_recipients`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OfflineRecipient {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub seq: i64,
    pub user_id: UserId,
}

pub struct NewNotification<'a> {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: &'a str,
    pub data: &'a str,
    pub now: Timestamp,
}

pub struct Notifications<'a>(&'a Db);

impl Db {
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications(self)
    }
}

impl Notifications<'_> {
    /// Claims up to `limit` due jobs with a lease, in one conditional UPDATE (no row or advisory
    /// locks: a job another worker claimed first no longer matches and is skipped). Finished jobs
    /// are deleted; `done_at` is only set on rows left by earlier versions, which are skipped.
    pub async fn claim_jobs(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<JobRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "UPDATE notification_jobs SET claimed_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notification_jobs
                          WHERE done_at IS NULL AND next_attempt_at <= $1
                            AND (claimed_until IS NULL OR claimed_until < $1)
                          ORDER BY next_attempt_at LIMIT $2)
               AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until < $1)
             RETURNING id, kind, payload, attempts")
            .bind(now).bind(limit).bind(lease_until).fetch_all(p).await)?)
    }

    /// Offline recipients of the given messages: members other than the sender with no live
    /// presence lease, for messages that still exist and are not deleted.
    pub async fn offline_recipients(
        &self,
        messages: &[MessageId],
        now: Timestamp,
    ) -> AppResult<Vec<OfflineRecipient>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // A bounded number of parameters per statement, whatever the batch.
        let mut out = Vec::new();
        for chunk in messages.chunks(500) {
            let rows: Vec<OfflineRecipient> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT x.id AS message_id, x.conversation_id, x.sender_id, x.seq, m.user_id
                     FROM messages x
                     JOIN conversation_members m ON m.conversation_id = x.conversation_id AND m.user_id <> x.sender_id
                     LEFT JOIN presence pr ON pr.user_id = m.user_id
                     WHERE x.deleted_at IS NULL AND (pr.user_id IS NULL OR pr.online_until <= ");
                q.push_bind(now).push(") AND x.id IN (");
                let mut ids = q.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                q.push(") ORDER BY x.id");
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Records the notifications of a batch and removes its finished jobs, in one transaction:
    /// a job is never done without its notifications, nor notified twice.
    pub async fn complete_jobs(
        &self,
        done: &[JobId],
        notifications: &[NewNotification<'_>],
    ) -> AppResult<()> {
        if done.is_empty() && notifications.is_empty() {
            return Ok(());
        }
        // Well under PostgreSQL's 65,535 bind parameters per statement.
        const ROWS_PER_INSERT: usize = 1000;
        on_pool!(self.0, p => {
            let mut tx = p.begin().await?;
            for chunk in notifications.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO notifications (id, user_id, kind, data, created_at) ");
                q.push_values(chunk, |mut row, n| {
                    row.push_bind(n.id).push_bind(n.user_id).push_bind(n.kind).push_bind(n.data).push_bind(n.now);
                });
                q.build().execute(&mut *tx).await?;
            }
            for chunk in done.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM notification_jobs WHERE id IN (");
                let mut ids = q.separated(", ");
                for id in chunk {
                    ids.push_bind(*id);
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Puts a failed job back for a later attempt.
    pub async fn retry_job(&self, id: JobId, at: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE notification_jobs SET claimed_until = NULL, next_attempt_at = $2 WHERE id = $1")
            .bind(id).bind(at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
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
