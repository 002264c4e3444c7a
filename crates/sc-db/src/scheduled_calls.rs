//! Calls planned ahead, and their reminders.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, NotificationId, ScheduledCallId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ScheduledRow {
    pub id: ScheduledCallId,
    pub conversation_id: ConversationId,
    pub created_by: UserId,
    pub kind: String,
    pub title: Option<String>,
    pub starts_at: Timestamp,
    pub created_at: Timestamp,
    pub reminded_at: Option<Timestamp>,
    pub cancelled_at: Option<Timestamp>,
}

macro_rules! scheduled_columns {
    () => {
        "id, conversation_id, created_by, kind, title, starts_at, created_at, reminded_at, cancelled_at"
    };
}

pub struct Scheduled<'a>(&'a Db);

impl Db {
    pub fn scheduled_calls(&self) -> Scheduled<'_> {
        Scheduled(self)
    }
}

impl Scheduled<'_> {
    pub async fn create(&self, r: &ScheduledRow) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO scheduled_calls (id, conversation_id, created_by, kind, title, starts_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(r.id).bind(r.conversation_id).bind(r.created_by).bind(&r.kind).bind(&r.title)
            .bind(r.starts_at).bind(r.created_at).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn get(&self, id: ScheduledCallId) -> AppResult<Option<ScheduledRow>> {
        let sql = concat!(
            "SELECT ",
            scheduled_columns!(),
            " FROM scheduled_calls WHERE id = $1"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// The scheduled calls of `user`'s conversations (or of one), not cancelled, by start
    /// time, after the keyset.
    pub async fn list(
        &self,
        user: UserId,
        conversation: Option<ConversationId>,
        after: Option<(Timestamp, ScheduledCallId)>,
        limit: i64,
    ) -> AppResult<Vec<ScheduledRow>> {
        let (at, id) = after.unwrap_or((Timestamp(i64::MIN), ScheduledCallId(uuid::Uuid::nil())));
        let sql = concat!(
            "SELECT ",
            scheduled_columns!(),
            " FROM scheduled_calls s
              WHERE s.cancelled_at IS NULL
                AND s.conversation_id IN (SELECT conversation_id FROM conversation_members WHERE user_id = $1)
                AND ($2 IS NULL OR s.conversation_id = $2)
                AND (s.starts_at, s.id) > ($3, $4)
              ORDER BY s.starts_at, s.id LIMIT $5"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(user).bind(conversation).bind(at).bind(id).bind(limit).fetch_all(p).await)?)
    }

    /// Moves or renames a call not cancelled; a new start time in the future is reminded again.
    pub async fn update(
        &self,
        id: ScheduledCallId,
        title: Option<Option<&str>>,
        starts_at: Option<Timestamp>,
    ) -> AppResult<bool> {
        let (set_title, title) = match title {
            Some(t) => (true, t),
            None => (false, None),
        };
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE scheduled_calls SET
                 title = CASE WHEN $2 THEN $3 ELSE title END,
                 starts_at = COALESCE($4, starts_at),
                 reminded_at = CASE WHEN $4 IS NULL THEN reminded_at ELSE NULL END
             WHERE id = $1 AND cancelled_at IS NULL")
            .bind(id).bind(set_title).bind(title).bind(starts_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn cancel(&self, id: ScheduledCallId, now: Timestamp) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE scheduled_calls SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Scheduled calls whose start time has come and that were not reminded yet.
    pub async fn due(&self, now: Timestamp, limit: i64) -> AppResult<Vec<ScheduledCallId>> {
        let rows: Vec<(ScheduledCallId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM scheduled_calls WHERE starts_at <= $1 AND reminded_at IS NULL AND cancelled_at IS NULL
             ORDER BY starts_at LIMIT $2")
            .bind(now).bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Marks a due call reminded and writes a `call.scheduled` notification for every member,
    /// in one transaction: one instance does it, once. Returns the members and the call.
    pub async fn remind(
        &self,
        id: ScheduledCallId,
        now: Timestamp,
    ) -> AppResult<Option<(ScheduledRow, Vec<UserId>)>> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let sql = concat!("UPDATE scheduled_calls SET reminded_at = $2
                                   WHERE id = $1 AND reminded_at IS NULL AND cancelled_at IS NULL AND starts_at <= $2
                                   RETURNING ", scheduled_columns!());
                let row: Option<ScheduledRow> = sqlx::query_as(sql).bind(id).bind(now).fetch_optional(&mut *tx).await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let members: Vec<(UserId,)> = sqlx::query_as(
                    "SELECT user_id FROM conversation_members WHERE conversation_id = $1")
                    .bind(row.conversation_id).fetch_all(&mut *tx).await?;
                let data = serde_json::json!({"scheduled_call_id": row.id, "conversation_id": row.conversation_id,
                                              "starts_at": row.starts_at}).to_string();
                for (u,) in &members {
                    sqlx::query("INSERT INTO notifications (id, user_id, kind, source, data, created_at) VALUES ($1, $2, 'call.scheduled', $5, $3, $4)
                                 ON CONFLICT (user_id, kind, source) DO NOTHING")
                        .bind(NotificationId::new()).bind(*u).bind(&data).bind(now)
                        // A call moved to a new time reminds again: the source is the call at its time.
                        .bind(format!("{}@{}", row.id, row.starts_at.millis())).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some((row, members.into_iter().map(|m| m.0).collect())))
            })
        };
        Ok(crate::retry_tx!(run())?)
    }
}
