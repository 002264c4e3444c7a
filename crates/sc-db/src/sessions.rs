//! Sessions (one per login/device) and their rotating refresh tokens.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{SessionId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub device_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub idle_expires_at: Timestamp,
    pub absolute_expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl SessionRow {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.idle_expires_at > now && self.absolute_expires_at > now
    }
}

/// A session with what authenticating a request needs of its account, read in one statement.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionWithAccount {
    #[sqlx(flatten)]
    pub session: SessionRow,
    pub role: String,
    pub email_verified: bool,
    pub banned_at: Option<Timestamp>,
    pub banned_until: Option<Timestamp>,
}

impl SessionWithAccount {
    pub fn banned(&self, now: Timestamp) -> bool {
        crate::users::ban_in_force(self.banned_at, self.banned_until, now)
    }
}

/// What presenting a refresh token found.
#[derive(Debug)]
pub enum RefreshLookup {
    Unknown,
    /// The current token of the session.
    Current(SessionId),
    /// A token that was already rotated: someone replays it.
    Rotated(SessionId),
}

macro_rules! session_columns {
    () => {
        "id, user_id, device_name, ip, user_agent, created_at, last_seen_at, \
     idle_expires_at, absolute_expires_at, revoked_at"
    };
}

pub struct Sessions<'a>(&'a Db);

impl Db {
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(self)
    }
}

impl Sessions<'_> {
    /// Creates a session with its first refresh token.
    pub async fn insert(&self, s: &SessionRow, refresh_hash: &str) -> AppResult<()> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, device_name, ip, user_agent, created_at, last_seen_at,
                                           idle_expires_at, absolute_expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)")
                    .bind(s.id).bind(s.user_id).bind(&s.device_name).bind(&s.ip).bind(&s.user_agent)
                    .bind(s.created_at).bind(s.idle_expires_at).bind(s.absolute_expires_at)
                    .execute(&mut *tx).await?;
                sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(refresh_hash).bind(s.id).bind(s.created_at).execute(&mut *tx).await?;
                tx.commit().await
            })
        };
        crate::retry_tx!(run())?;
        Ok(())
    }

    /// The session and its account's role, verification and ban (`None` when either is gone).
    pub async fn find_with_account(&self, id: SessionId) -> AppResult<Option<SessionWithAccount>> {
        // The joined table names only the account's columns (its id renamed), so the
        // session's stay unambiguous.
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            ", u.role, u.email_verified, u.banned_at, u.banned_until
             FROM sessions
             JOIN (SELECT id AS account_id, role, email_verified, banned_at, banned_until FROM users) u
               ON u.account_id = sessions.user_id
             WHERE sessions.id = $1"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    pub async fn find(&self, id: SessionId) -> AppResult<Option<SessionRow>> {
        let sql = concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = $1"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Active sessions of a user, most recently used first.
    /// Ids of every live session of a user (bounded by the session limit).
    pub async fn active_ids(&self, user_id: UserId, now: Timestamp) -> AppResult<Vec<SessionId>> {
        let rows: Vec<(SessionId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2")
            .bind(user_id).bind(now).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Live sessions, most recently used first, before `before` (keyset cursor), at most `limit`.
    pub async fn list_active(
        &self,
        user_id: UserId,
        now: Timestamp,
        before: Option<(Timestamp, SessionId)>,
        limit: i64,
    ) -> AppResult<Vec<SessionRow>> {
        let (bt, bid) = before.map_or((None, None), |(t, id)| (Some(t), Some(id)));
        let sql = concat!(
            "SELECT ", session_columns!(), " FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2
               AND ($3 IS NULL OR last_seen_at < $3 OR (last_seen_at = $3 AND id < $4))
             ORDER BY last_seen_at DESC, id DESC LIMIT $5");
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(user_id).bind(now).bind(bt).bind(bid).bind(limit).fetch_all(p).await)?,
        )
    }

    /// Whether the user ever had a session, and one with this user agent (a known device).
    pub async fn device_known(
        &self,
        user_id: UserId,
        user_agent: Option<&str>,
    ) -> AppResult<(bool, bool)> {
        let row: (bool, bool) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE user_id = $1),
                    EXISTS (SELECT 1 FROM sessions WHERE user_id = $1 AND COALESCE(user_agent, '') = COALESCE($2, ''))")
            .bind(user_id).bind(user_agent).fetch_one(p).await)?;
        Ok(row)
    }

    /// Records use of a session (throttled by the caller).
    pub async fn touch(&self, id: SessionId, now: Timestamp, ip: Option<&str>) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, ip = COALESCE($3, ip) WHERE id = $1 AND revoked_at IS NULL")
            .bind(id).bind(now).bind(ip).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends one session (and its push subscriptions and MLS device: an ended session receives
    /// nothing).
    /// True when it was active.
    pub async fn revoke(&self, id: SessionId, reason: &str, now: Timestamp) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id).bind(now).bind(reason).execute(p).await.map(|r| r.rows_affected()))?;
        self.0.push().remove_for_sessions(&[id]).await?;
        // Its MLS device, key packages and pending welcomes go with it (API.md §12).
        self.0.mls().remove_for_sessions(&[id]).await?;
        Ok(r == 1)
    }

    /// Ends every session of a user except `keep`; returns the ended ids.
    pub async fn revoke_all(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: &str,
        now: Timestamp,
    ) -> AppResult<Vec<SessionId>> {
        let rows: Vec<(SessionId,)> = on_pool!(self.0, p => sqlx::query_as(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4
             WHERE user_id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR id <> $2) RETURNING id")
            .bind(user_id).bind(keep).bind(now).bind(reason).fetch_all(p).await)?;
        let ended: Vec<SessionId> = rows.into_iter().map(|r| r.0).collect();
        self.0.push().remove_for_sessions(&ended).await?;
        self.0.mls().remove_for_sessions(&ended).await?;
        Ok(ended)
    }

    /// Ends the least recently used active sessions beyond `limit`; returns the ended ids.
    pub async fn evict_beyond(
        &self,
        user_id: UserId,
        limit: i64,
        now: Timestamp,
    ) -> AppResult<Vec<SessionId>> {
        let stale: Vec<(SessionId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND idle_expires_at > $2 AND absolute_expires_at > $2
             ORDER BY last_seen_at DESC, id DESC LIMIT 1000 OFFSET $3")
            .bind(user_id).bind(now).bind(limit).fetch_all(p).await)?;
        let mut ended = Vec::new();
        for (id,) in stale {
            if self.revoke(id, "evicted", now).await? {
                ended.push(id);
            }
        }
        Ok(ended)
    }

    pub async fn find_refresh(&self, token_hash: &str) -> AppResult<RefreshLookup> {
        let row: Option<(SessionId, Option<Timestamp>)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT session_id, rotated_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(p).await)?;
        Ok(match row {
            None => RefreshLookup::Unknown,
            Some((sid, None)) => RefreshLookup::Current(sid),
            Some((sid, Some(_))) => RefreshLookup::Rotated(sid),
        })
    }

    /// Swaps the session's refresh token: marks `old` rotated (only if it still is current) and
    /// stores `new`, extending the idle expiry. False when another request rotated `old` first.
    pub async fn rotate_refresh(
        &self,
        session: SessionId,
        old: &str,
        new: &str,
        now: Timestamp,
        idle_expires_at: Timestamp,
    ) -> AppResult<bool> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let r = sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL")
                    .bind(old).bind(now).execute(&mut *tx).await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
                    .bind(new).bind(session).bind(now).execute(&mut *tx).await?;
                // A session ended meanwhile (logout racing the refresh) issues nothing.
                let live = sqlx::query(
                    "UPDATE sessions SET last_seen_at = $2,
                            idle_expires_at = CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END
                     WHERE id = $1 AND revoked_at IS NULL")
                    .bind(session).bind(now).bind(idle_expires_at).execute(&mut *tx).await?.rows_affected();
                if live != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                tx.commit().await.map(|_| true)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }
}
