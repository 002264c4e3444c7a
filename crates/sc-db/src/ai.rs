//! What the AI helpers read and write: the user's opt-in, the text of a conversation for
//! summaries and `@assistant` context, and the assistant's replies.

use crate::BeginWrite as _;
use crate::Db;
use crate::chat::{MessageRow, message_columns};
use sc_core::{
    AppResult,
    ids::{ASSISTANT_USER_ID, ConversationId, JobId, MessageId, UserId},
    time::Timestamp,
};

/// A plain message as the AI helpers see it: its seq, its sender's display name (no other
/// member data) and its text.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TextMessage {
    pub seq: i64,
    pub sender_name: String,
    pub content: String,
}

pub struct Ai<'a>(&'a Db);

impl Db {
    pub fn ai(&self) -> Ai<'_> {
        Ai(self)
    }
}

impl Ai<'_> {
    pub async fn opted_in(&self, user: UserId) -> AppResult<bool> {
        let row: Option<(bool,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT ai_enabled FROM users WHERE id = $1").bind(user).fetch_optional(p).await)?;
        Ok(row.is_some_and(|r| r.0))
    }

    pub async fn set_opt_in(&self, user: UserId, enabled: bool) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE users SET ai_enabled = $2 WHERE id = $1")
            .bind(user).bind(enabled).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The newest `limit` plain, standing messages with text after `after_seq` (and up to
    /// `upto_seq` when given), oldest first.
    pub async fn text_messages(
        &self,
        conversation: ConversationId,
        after_seq: i64,
        upto_seq: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<TextMessage>> {
        let mut rows: Vec<TextMessage> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT x.seq, u.display_name AS sender_name, x.content FROM messages x
             JOIN users u ON u.id = x.sender_id
             WHERE x.conversation_id = $1 AND x.seq > $2 AND ($4 IS NULL OR x.seq <= $4)
               AND x.deleted_at IS NULL AND x.content IS NOT NULL
             ORDER BY x.seq DESC LIMIT $3")
            .bind(conversation).bind(after_seq).bind(limit).bind(upto_seq).fetch_all(p).await)?;
        rows.reverse();
        Ok(rows)
    }

    /// Posts the assistant's reply: the next seq of the conversation (ordered with concurrent
    /// sends by the counter's row lock), the message, and its notification job, in one
    /// transaction. Returns the row and the members to tell; None when the conversation is gone
    /// or the mention was answered already (the reply's client id is derived from the mention,
    /// so a job retried after a crash never posts a second answer).
    pub async fn insert_reply(
        &self,
        id: MessageId,
        conversation: ConversationId,
        reply_to: MessageId,
        content: &str,
        now: Timestamp,
    ) -> AppResult<Option<(MessageRow, Vec<UserId>)>> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let bumped: Option<(i64,)> = sqlx::query_as(
                    "UPDATE conversations SET last_message_seq = last_message_seq + 1, last_activity_at = $2
                     WHERE id = $1 RETURNING last_message_seq")
                    .bind(conversation).bind(now).fetch_optional(&mut *tx).await?;
                let Some((seq,)) = bumped else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let sql = concat!(
                    "INSERT INTO messages (id, conversation_id, seq, sender_id, client_message_id, kind, content,
                                           reply_to, metadata, created_at)
                     VALUES ($1, $2, $3, $4, $5, 'text', $6, $7, '{\"ai\":true}', $8) RETURNING ", message_columns!());
                let row: MessageRow = sqlx::query_as(sql)
                    .bind(id).bind(conversation).bind(seq).bind(ASSISTANT_USER_ID)
                    .bind(format!("reply-to-{reply_to}")).bind(content).bind(reply_to).bind(now)
                    .fetch_one(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO notification_jobs (id, kind, payload, created_at, next_attempt_at) VALUES ($1, 'message', $2, $3, $3)")
                    .bind(JobId::new()).bind(id.to_string()).bind(now).execute(&mut *tx).await?;
                let members: Vec<(UserId,)> = sqlx::query_as(
                    "SELECT user_id FROM conversation_members WHERE conversation_id = $1")
                    .bind(conversation).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some((row, members.into_iter().map(|m| m.0).collect())))
            })
        };
        match crate::retry_tx!(run()) {
            Err(e) if crate::is_unique_violation(&e) => Ok(None),
            other => Ok(other?),
        }
    }
}
