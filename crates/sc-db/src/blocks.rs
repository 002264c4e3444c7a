//! Blocks between users.

use crate::{Db, users::ProfileRow};
use sc_core::{AppResult, ids::UserId, time::Timestamp};

pub struct Blocks<'a>(&'a Db);

impl Db {
    pub fn blocks(&self) -> Blocks<'_> {
        Blocks(self)
    }
}

impl Blocks<'_> {
    pub async fn block(&self, blocker: UserId, blocked: UserId, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(blocker).bind(blocked).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn unblock(&self, blocker: UserId, blocked: UserId) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
            .bind(blocker).bind(blocked).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Profiles the user has blocked, most recent first, before `before` (keyset cursor).
    pub async fn list(
        &self,
        blocker: UserId,
        before: Option<(Timestamp, UserId)>,
        limit: i64,
    ) -> AppResult<Vec<(ProfileRow, Timestamp)>> {
        let (bt, bid) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
        let rows: Vec<(UserId, String, String, Option<String>, Timestamp)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT u.id, u.username, u.display_name, u.avatar_url, b.created_at
             FROM blocks b JOIN users u ON u.id = b.blocked_id
             WHERE b.blocker_id = $1 AND ($2 IS NULL OR b.created_at < $2 OR (b.created_at = $2 AND b.blocked_id < $3))
             ORDER BY b.created_at DESC, b.blocked_id DESC LIMIT $4")
            .bind(blocker).bind(bt).bind(bid).bind(limit).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, username, display_name, avatar_url, at)| {
                (
                    ProfileRow {
                        id,
                        username,
                        display_name,
                        avatar_url,
                    },
                    at,
                )
            })
            .collect())
    }

    /// True when either user blocks the other.
    pub async fn either_blocks(&self, a: UserId, b: UserId) -> AppResult<bool> {
        let row: Option<(i32,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1) LIMIT 1")
            .bind(a).bind(b).fetch_optional(p).await)?;
        Ok(row.is_some())
    }
}
