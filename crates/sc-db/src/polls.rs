//! Poll votes and closing. A vote is a set of rows (one per chosen option) replaced in one
//! transaction that first locks the poll's message against a concurrent close; counts are
//! derived from the rows, so concurrent votes can never lose one another.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{ConversationId, MessageId, UserId},
    time::Timestamp,
};
use std::collections::BTreeMap;

/// How a vote or a withdrawal went.
#[derive(Debug, PartialEq, Eq)]
pub enum VoteOutcome {
    Done,
    /// The poll is closed (by hand, or its closing time has passed).
    Closed,
    /// No such live poll.
    Gone,
}

/// The derived state of a poll's votes.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Votes per option id.
    pub votes: BTreeMap<i64, i64>,
    /// Members who voted.
    pub voters: i64,
}

pub struct Polls<'a>(&'a Db);

impl Db {
    pub fn polls(&self) -> Polls<'_> {
        Polls(self)
    }
}

/// Locks the poll's message row for the transaction (PostgreSQL; SQLite has one writer) and
/// reads whether it is open.
macro_rules! open_poll {
    ($tx:expr, $pg:expr, $message:expr, $now:expr) => {{
        let sql = if $pg {
            "SELECT poll_closed_at, poll_closes_at FROM messages
             WHERE id = $1 AND kind = 'poll' AND deleted_at IS NULL FOR SHARE"
        } else {
            "SELECT poll_closed_at, poll_closes_at FROM messages
             WHERE id = $1 AND kind = 'poll' AND deleted_at IS NULL"
        };
        let row: Option<(Option<Timestamp>, Option<Timestamp>)> = sqlx::query_as(sql)
            .bind($message)
            .fetch_optional(&mut *$tx)
            .await?;
        match row {
            None => Some(VoteOutcome::Gone),
            Some((Some(_), _)) => Some(VoteOutcome::Closed),
            Some((None, Some(at))) if at <= $now => Some(VoteOutcome::Closed),
            Some(_) => None,
        }
    }};
}

impl Polls<'_> {
    /// Replaces `user`'s vote with `options` (an empty list withdraws it), unless the poll is
    /// closed or gone.
    pub async fn vote(
        &self,
        message: MessageId,
        user: UserId,
        options: &[i64],
        now: Timestamp,
    ) -> AppResult<VoteOutcome> {
        let pg = matches!(self.0, Db::Postgres(_));
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                // The write comes first: on SQLite it takes the write lock at once (a read
                // first would have to upgrade, and concurrent upgrades fail as busy).
                sqlx::query("DELETE FROM poll_votes WHERE message_id = $1 AND user_id = $2")
                    .bind(message).bind(user).execute(&mut *tx).await?;
                if let Some(refused) = open_poll!(tx, pg, message, now) {
                    tx.rollback().await?;
                    return Ok(refused);
                }
                for o in options {
                    sqlx::query("INSERT INTO poll_votes (message_id, user_id, option_id, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(message).bind(user).bind(*o as i32).bind(now).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(VoteOutcome::Done)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// The counts of a poll's votes.
    pub async fn tally(&self, message: MessageId) -> AppResult<Tally> {
        let rows: Vec<(i32, i64)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT option_id, COUNT(*) FROM poll_votes WHERE message_id = $1 GROUP BY option_id")
            .bind(message).fetch_all(p).await)?;
        let (voters,): (i64,) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT COUNT(DISTINCT user_id) FROM poll_votes WHERE message_id = $1")
            .bind(message).fetch_one(p).await)?;
        Ok(Tally {
            votes: rows.into_iter().map(|(o, n)| (i64::from(o), n)).collect(),
            voters,
        })
    }

    /// The option ids `user` voted for, ascending (empty: no vote).
    pub async fn vote_of(&self, message: MessageId, user: UserId) -> AppResult<Vec<i64>> {
        let rows: Vec<(i32,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT option_id FROM poll_votes WHERE message_id = $1 AND user_id = $2 ORDER BY option_id")
            .bind(message).bind(user).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(o,)| i64::from(o)).collect())
    }

    /// Who voted for what, by option, oldest vote first.
    pub async fn voters(&self, message: MessageId) -> AppResult<Vec<(i64, UserId)>> {
        let rows: Vec<(i32, UserId)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT option_id, user_id FROM poll_votes WHERE message_id = $1 ORDER BY option_id, created_at, user_id")
            .bind(message).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(o, u)| (i64::from(o), u)).collect())
    }

    /// Closes an open poll now; false when it was closed already (or is gone). A poll past its
    /// closing time counts as closed: it is closed at that time, not now.
    pub async fn close(&self, message: MessageId, now: Timestamp) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE messages SET poll_closed_at = $2
             WHERE id = $1 AND kind = 'poll' AND deleted_at IS NULL AND poll_closed_at IS NULL
               AND (poll_closes_at IS NULL OR poll_closes_at > $2)")
            .bind(message).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Polls whose closing time has come and that nobody closed yet.
    pub async fn due(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<(MessageId, ConversationId)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, conversation_id FROM messages
             WHERE poll_closes_at IS NOT NULL AND poll_closed_at IS NULL AND poll_closes_at <= $1
               AND deleted_at IS NULL
             ORDER BY poll_closes_at LIMIT $2")
            .bind(now).bind(limit).fetch_all(p).await)?)
    }

    /// Records the closing of a due poll at its closing time; true for the one caller (of any
    /// instance) that did it.
    pub async fn close_due(&self, message: MessageId) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE messages SET poll_closed_at = poll_closes_at
             WHERE id = $1 AND poll_closed_at IS NULL AND poll_closes_at IS NOT NULL")
            .bind(message).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
