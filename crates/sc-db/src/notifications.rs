//! In-app notifications: the durable job queue that produces message and mention records, the
//! records themselves (one per recipient, kind and source), their dispatch and their digests.

use crate::BeginWrite as _;
use crate::Db;
use crate::mail::{NewMail, insert_mails};
use crate::push::{NewDelivery, insert_deliveries};
use sc_core::{
    AppResult,
    ids::{ConversationId, JobId, MessageId, NotificationId, UserId},
    time::Timestamp,
};
use std::collections::{HashMap, HashSet};

/// The records a digest may carry ($1 = since, $2 = cutoff, `n` the notification).
macro_rules! digest_filter {
    () => {
        "n.kind IN ('message', 'mention') AND n.mailed_at IS NULL AND n.read_at IS NULL
         AND n.created_at > $1 AND n.created_at <= $2
         AND NOT EXISTS (SELECT 1 FROM notification_settings s
                         WHERE s.user_id = n.user_id AND s.kind = n.kind AND NOT s.email)
         AND NOT EXISTS (SELECT 1 FROM presence pr WHERE pr.user_id = n.user_id AND pr.online_until > n.created_at)"
    };
}

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

/// A member of a message's conversation other than its sender, as the notification worker
/// sees them (see `message_recipients`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageRecipient {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub seq: i64,
    /// The message's mentions: user ids comma-separated, or `all`.
    pub mentions: String,
    pub user_id: UserId,
    /// No live socket anywhere, or a chosen `offline` status.
    pub offline: bool,
    /// The member muted the conversation.
    pub muted: bool,
}

pub struct NewNotification<'a> {
    pub id: NotificationId,
    pub user_id: UserId,
    pub kind: &'a str,
    /// What the record is about (a message, a call, a share…): with the recipient and the kind,
    /// its unique key.
    pub source: String,
    pub data: &'a str,
    pub now: Timestamp,
}

/// A message as a push or a digest shows it, with the kind of the recipient's record.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MessageSummary {
    /// `message` or `mention` (set from the record).
    #[sqlx(default)]
    pub kind: String,
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub conversation_kind: String,
    pub conversation_title: Option<String>,
    pub encrypted: bool,
    pub sender_name: String,
    pub content: Option<String>,
    pub created_at: Timestamp,
}

/// A member with digest mail due.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DigestRecipient {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
}

/// Writes notification records inside a transaction; a record whose (recipient, kind, source)
/// exists already is skipped, so a retried worker never writes a second one.
macro_rules! insert_records {
    ($tx:expr, $rows:expr) => {{
        // Well under PostgreSQL's 65,535 bind parameters per statement.
        for chunk in $rows.chunks(1000) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO notifications (id, user_id, kind, source, data, created_at) ",
            );
            q.push_values(chunk, |mut row, n| {
                row.push_bind(n.id)
                    .push_bind(n.user_id)
                    .push_bind(n.kind)
                    .push_bind(&n.source)
                    .push_bind(n.data)
                    .push_bind(n.now);
            });
            q.push(" ON CONFLICT (user_id, kind, source) DO NOTHING");
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Messages with their conversation and sender, for `WHERE x.id IN (…)` appended.
const MESSAGE_SUMMARY: &str = "SELECT x.id AS message_id, c.id AS conversation_id, c.kind AS conversation_kind,
        c.title AS conversation_title, c.encrypted, s.display_name AS sender_name, x.content, x.created_at
     FROM messages x JOIN conversations c ON c.id = x.conversation_id JOIN users s ON s.id = x.sender_id
     WHERE x.deleted_at IS NULL AND x.id IN ";

pub struct Notifications<'a>(&'a Db);

impl Db {
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications(self)
    }
}

impl Notifications<'_> {
    /// Deletes up to `batch` dispatched records created before `cutoff`; how many went.
    pub async fn purge_before(&self, cutoff: Timestamp, batch: i64) -> AppResult<u64> {
        Ok(on_pool!(self.0, p => sqlx::query(
            "DELETE FROM notifications WHERE id IN
               (SELECT id FROM notifications WHERE created_at < $1 AND dispatched
                ORDER BY created_at LIMIT $2)")
            .bind(cutoff).bind(batch).execute(p).await.map(|r| r.rows_affected()))?)
    }

    /// Claims up to `limit` due jobs with a lease, in one conditional UPDATE (no row or advisory
    /// locks: a job another worker claimed first no longer matches and is skipped). Finished jobs
    /// are deleted; `done_at` is only set on rows left by earlier versions, which are skipped.
    pub async fn claim_jobs(
        &self,
        kind: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<JobRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "UPDATE notification_jobs SET claimed_until = $3, attempts = attempts + 1
             WHERE id IN (SELECT id FROM notification_jobs
                          WHERE done_at IS NULL AND kind = $4 AND next_attempt_at <= $1
                            AND (claimed_until IS NULL OR claimed_until < $1)
                          ORDER BY next_attempt_at LIMIT $2)
               AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until < $1)
             RETURNING id, kind, payload, attempts")
            .bind(now).bind(limit).bind(lease_until).bind(kind).fetch_all(p).await)?)
    }

    /// Queues a job of another worker than the message one (e.g. `assistant`).
    pub async fn enqueue_job(
        &self,
        id: JobId,
        kind: &str,
        payload: &str,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO notification_jobs (id, kind, payload, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(id).bind(kind).bind(payload).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Every member of the given messages' conversations other than the sender, with whether
    /// they are offline and have muted the conversation, for messages that still stand.
    pub async fn message_recipients(
        &self,
        messages: &[MessageId],
        now: Timestamp,
    ) -> AppResult<Vec<MessageRecipient>> {
        // A bounded number of parameters per statement, whatever the batch.
        let mut out = Vec::new();
        for chunk in messages.chunks(500) {
            let rows: Vec<MessageRecipient> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT x.id AS message_id, x.conversation_id, x.sender_id, x.seq, x.mentions, m.user_id,
                            (pr.user_id IS NULL OR pr.status = 'offline' OR pr.online_until <= ");
                q.push_bind(now).push(") AS offline, (m.muted_until IS NOT NULL AND m.muted_until > ");
                q.push_bind(now).push(
                    ") AS muted
                     FROM messages x
                     JOIN conversation_members m ON m.conversation_id = x.conversation_id AND m.user_id <> x.sender_id
                     LEFT JOIN presence pr ON pr.user_id = m.user_id
                     WHERE x.deleted_at IS NULL AND x.id IN ");
                push_id_list!(q, chunk);
                q.push(" ORDER BY x.id");
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
        on_pool!(self.0, p => {
            let mut tx = p.begin_write(self.0).await?;
            insert_records!(tx, notifications);
            for chunk in done.chunks(1000) {
                let mut q = sqlx::QueryBuilder::new("DELETE FROM notification_jobs WHERE id IN ");
                push_id_list!(q, chunk);
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Records notifications outside the job queue (shares, security events); duplicates of
    /// (recipient, kind, source) are skipped.
    pub async fn record(&self, notifications: &[NewNotification<'_>]) -> AppResult<()> {
        self.complete_jobs(&[], notifications).await
    }

    /// Puts a failed job back for a later attempt.
    pub async fn retry_job(&self, id: JobId, at: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE notification_jobs SET claimed_until = NULL, next_attempt_at = $2 WHERE id = $1")
            .bind(id).bind(at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The user's notifications, newest first, below `before`; only unread ones when asked.
    pub async fn list(
        &self,
        user: UserId,
        before: Option<NotificationId>,
        unread_only: bool,
        limit: i64,
    ) -> AppResult<Vec<NotificationRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, user_id, kind, data, created_at, read_at FROM notifications
             WHERE user_id = $1 AND ($2 IS NULL OR id < $2) AND (NOT $4 OR read_at IS NULL)
             ORDER BY id DESC LIMIT $3")
            .bind(user).bind(before).bind(limit).bind(unread_only).fetch_all(p).await)?)
    }

    /// Marks one of the user's notifications read (kept as first read); None when it is not theirs.
    pub async fn mark_read(
        &self,
        user: UserId,
        id: NotificationId,
        now: Timestamp,
    ) -> AppResult<Option<NotificationRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2
             RETURNING id, user_id, kind, data, created_at, read_at")
            .bind(id).bind(user).bind(now).fetch_optional(p).await)?)
    }

    /// Marks all of the user's unread notifications read; how many were.
    pub async fn mark_all_read(&self, user: UserId, now: Timestamp) -> AppResult<u64> {
        Ok(on_pool!(self.0, p => sqlx::query(
            "UPDATE notifications SET read_at = $2 WHERE user_id = $1 AND read_at IS NULL")
            .bind(user).bind(now).execute(p).await.map(|r| r.rows_affected()))?)
    }

    /// Claims up to `limit` records not dispatched yet, oldest first, with a lease (a
    /// conditional UPDATE, as for jobs).
    pub async fn claim_undispatched(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<NotificationRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "UPDATE notifications SET dispatch_until = $3
             WHERE id IN (SELECT id FROM notifications
                          WHERE NOT dispatched AND (dispatch_until IS NULL OR dispatch_until < $1)
                          ORDER BY created_at LIMIT $2)
               AND NOT dispatched AND (dispatch_until IS NULL OR dispatch_until < $1)
             RETURNING id, user_id, kind, data, created_at, read_at")
            .bind(now).bind(limit).bind(lease_until).fetch_all(p).await)?)
    }

    /// Ends the dispatch of claimed records in one transaction: each record still held under
    /// `lease` is marked dispatched, and only the pushes and mails of those records are queued
    /// (`mailed` records are also marked as mailed). A lease lost to another worker queues
    /// nothing, so no record is dispatched twice. Returns the records dispatched here.
    pub async fn finish_dispatch(
        &self,
        ids: &[NotificationId],
        lease: Timestamp,
        deliveries: &[NewDelivery],
        mails: &[(NotificationId, NewMail)],
        now: Timestamp,
    ) -> AppResult<HashSet<NotificationId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let mut ours: HashSet<NotificationId> = HashSet::new();
                for chunk in ids.chunks(1000) {
                    let mut q = sqlx::QueryBuilder::new(
                        "UPDATE notifications SET dispatched = TRUE, dispatch_until = NULL
                         WHERE NOT dispatched AND dispatch_until = ");
                    q.push_bind(lease).push(" AND id IN ");
                    push_id_list!(q, chunk);
                    q.push(" RETURNING id");
                    let rows: Vec<(NotificationId,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    ours.extend(rows.into_iter().map(|r| r.0));
                }
                let kept: Vec<&NewDelivery> = deliveries
                    .iter()
                    .filter(|d| d.notification.is_none_or(|n| ours.contains(&n)))
                    .collect();
                insert_deliveries!(tx, kept);
                let kept: Vec<&(NotificationId, NewMail)> =
                    mails.iter().filter(|(n, _)| ours.contains(n)).collect();
                insert_mails!(tx, kept.iter().map(|(_, m)| m));
                let mailed: Vec<NotificationId> = kept.iter().map(|(n, _)| *n).collect();
                for chunk in mailed.chunks(1000) {
                    let mut q = sqlx::QueryBuilder::new("UPDATE notifications SET mailed_at = ");
                    q.push_bind(now).push(" WHERE id IN ");
                    push_id_list!(q, chunk);
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(ours)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// The given messages as pushes show them (`kind` left empty), those still standing.
    pub async fn message_summaries(&self, ids: &[MessageId]) -> AppResult<Vec<MessageSummary>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<MessageSummary> = on_pool!(self.0, p => {
                let mut q = sqlx::QueryBuilder::new(MESSAGE_SUMMARY);
                push_id_list!(q, chunk);
                q.build_query_as().fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Members with unread `message`/`mention` records created between `since` and `cutoff`
    /// that a digest may carry: digests on, the kind's email on, a verified address, and no
    /// socket open since the record was made.
    pub async fn digest_recipients(
        &self,
        since: Timestamp,
        cutoff: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<DigestRecipient>> {
        let sql = concat!(
            "SELECT u.id AS user_id, u.email, u.display_name FROM users u
             WHERE u.email_digest AND u.email_verified AND EXISTS (SELECT 1 FROM notifications n
                 WHERE n.user_id = u.id AND ",
            digest_filter!(),
            ") LIMIT $3"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(since).bind(cutoff).bind(limit).fetch_all(p).await)?)
    }

    /// Takes a member's digest: in one transaction, marks the records a digest carries as
    /// mailed and queues the mail `compose` makes of them (nothing when it makes none). A
    /// record is in at most one digest, whichever instance runs it.
    pub async fn take_digest(
        &self,
        user: UserId,
        since: Timestamp,
        cutoff: Timestamp,
        now: Timestamp,
        compose: impl Fn(&[MessageSummary]) -> Option<NewMail>,
    ) -> AppResult<usize> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let sql = concat!(
                    "UPDATE notifications SET mailed_at = $4 WHERE id IN (SELECT n.id FROM notifications n
                     WHERE n.user_id = $3 AND ", digest_filter!(), ") AND mailed_at IS NULL RETURNING kind, source");
                let taken: Vec<(String, Option<String>)> = sqlx::query_as(sql)
                    .bind(since).bind(cutoff).bind(user).bind(now).fetch_all(&mut *tx).await?;
                // A message's record is `message` or `mention`, never both.
                let kinds: HashMap<MessageId, String> = taken
                    .into_iter()
                    .filter_map(|(k, s)| Some((s.as_deref()?.parse().ok()?, k)))
                    .collect();
                let messages: Vec<MessageId> = kinds.keys().copied().collect();
                let mut items: Vec<MessageSummary> = Vec::with_capacity(messages.len());
                for chunk in messages.chunks(500) {
                    let mut q = sqlx::QueryBuilder::new(MESSAGE_SUMMARY);
                    push_id_list!(q, chunk);
                    let rows: Vec<MessageSummary> = q.build_query_as().fetch_all(&mut *tx).await?;
                    items.extend(rows.into_iter().map(|mut i| {
                        i.kind = kinds.get(&i.message_id).cloned().unwrap_or_default();
                        i
                    }));
                }
                items.sort_by_key(|i| i.created_at);
                let mail = if items.is_empty() { None } else { compose(&items) };
                match mail {
                    Some(m) => insert_mails!(tx, std::iter::once(&m)),
                    None if items.is_empty() => {}
                    None => {
                        tx.rollback().await?;
                        return Ok(0);
                    }
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(items.len())
            })
        };
        Ok(crate::retry_tx!(run())?)
    }
}
