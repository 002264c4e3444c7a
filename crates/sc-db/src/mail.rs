//! The durable mail queue. Workers on any instance claim due mails with a lease (a conditional
//! UPDATE, no row locks or advisory locks), so a crash loses nothing and no mail is sent twice
//! while a lease holds.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{AppResult, ids::MailId, time::Timestamp};

#[derive(Clone, sqlx::FromRow)]
pub struct MailRow {
    pub id: MailId,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub html_body: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub attempts: i32,
}

/// A mail to queue: the plain text, and optionally an HTML alternative and the
/// `List-Unsubscribe` target of a notification mail.
#[derive(Clone)]
pub struct NewMail {
    pub id: MailId,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub html_body: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub now: Timestamp,
}

/// Queues mails inside a transaction (`$tx`: `&mut *tx` of either pool).
macro_rules! insert_mails {
    ($tx:expr, $rows:expr) => {{
        for m in $rows {
            sqlx::query(
                "INSERT INTO mail_queue (id, recipient, subject, body, html_body, list_unsubscribe, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
                .bind(m.id).bind(&m.recipient).bind(&m.subject).bind(&m.body).bind(&m.html_body)
                .bind(&m.list_unsubscribe).bind(m.now).execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use insert_mails;

impl std::fmt::Debug for MailRow {
    // The body may hold a single-use token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailRow")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

pub struct MailQueue<'a>(&'a Db);

impl Db {
    pub fn mail_queue(&self) -> MailQueue<'_> {
        MailQueue(self)
    }
}

impl MailQueue<'_> {
    pub async fn enqueue(&self, mail: &NewMail) -> AppResult<()> {
        on_pool!(self.0, p => {
            let mut tx = p.begin_write(self.0).await?;
            insert_mails!(tx, std::slice::from_ref(mail));
            tx.commit().await?;
            Ok::<(), sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Claims up to `limit` due mails for `lease_until`.
    pub async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<MailRow>> {
        let candidates: Vec<(MailId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM mail_queue
             WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until < $1)
             ORDER BY next_attempt_at LIMIT $2")
            .bind(now).bind(limit).fetch_all(p).await)?;
        let mut claimed = Vec::new();
        for (id,) in candidates {
            let row: Option<MailRow> = on_pool!(self.0, p => sqlx::query_as(
                "UPDATE mail_queue SET claimed_until = $3, attempts = attempts + 1
                 WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2)
                 RETURNING id, recipient, subject, body, html_body, list_unsubscribe, attempts")
                .bind(id).bind(now).bind(lease_until).fetch_optional(p).await)?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    /// Sent: the body (which may hold a token) is dropped.
    pub async fn mark_sent(&self, id: MailId, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE mail_queue SET sent_at = $2, claimed_until = NULL, body = '', html_body = NULL, last_error = NULL WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A failed attempt: retry at `retry_at`, or give up when `give_up`.
    pub async fn mark_failed(
        &self,
        id: MailId,
        error: &str,
        retry_at: Timestamp,
        give_up: bool,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE mail_queue SET claimed_until = NULL, last_error = $2, next_attempt_at = $3,
                    failed_at = CASE WHEN $4 THEN $5 ELSE NULL END,
                    body = CASE WHEN $4 THEN '' ELSE body END,
                    html_body = CASE WHEN $4 THEN NULL ELSE html_body END
             WHERE id = $1")
            .bind(id).bind(error).bind(retry_at).bind(give_up).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Mails waiting to be sent (for metrics and tests).
    pub async fn pending(&self) -> AppResult<i64> {
        let (n,): (i64,) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT COUNT(*) FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL").fetch_one(p).await)?;
        Ok(n)
    }
}
