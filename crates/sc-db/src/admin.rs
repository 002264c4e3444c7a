//! Administration: deployment-wide counts, the user directory with ban and storage state, bans,
//! quotas, and each instance's socket count.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{AppResult, ids::UserId, time::Timestamp};
use uuid::Uuid;

/// Counts over the whole deployment.
#[derive(Clone, Copy, Debug, Default, sqlx::FromRow)]
pub struct StatsRow {
    pub users: i64,
    pub conversations: i64,
    pub messages: i64,
    pub files: i64,
    pub bytes_stored: i64,
    pub live_calls: i64,
    pub sessions: i64,
    pub sockets: i64,
}

/// A user as an administrator sees them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminUserRow {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub email_verified: bool,
    pub totp_enabled: bool,
    pub role: String,
    pub created_at: Timestamp,
    pub banned_at: Option<Timestamp>,
    pub banned_until: Option<Timestamp>,
    pub ban_reason: Option<String>,
    pub last_seen_at: Option<Timestamp>,
    pub storage_used: i64,
    pub quota: Option<i64>,
}

impl AdminUserRow {
    /// A ban is in force from `banned_at` until `banned_until` (none: no end).
    pub fn banned(&self, now: Timestamp) -> bool {
        self.banned_at.is_some() && self.banned_until.is_none_or(|u| u > now)
    }
}

macro_rules! admin_user_select {
    () => {
        "SELECT u.id, u.email, u.username, u.display_name, u.avatar_url,
        u.email_verified, u.totp_enabled, u.role, u.created_at, u.banned_at, u.banned_until,
        u.ban_reason,
        (SELECT MAX(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id) AS last_seen_at,
        COALESCE(a.used, 0) AS storage_used, a.quota
     FROM users u LEFT JOIN storage_accounts a ON a.user_id = u.id "
    };
}

pub struct Admin<'a>(pub(crate) &'a Db);

impl Db {
    pub fn admin(&self) -> Admin<'_> {
        Admin(self)
    }
}

impl Admin<'_> {
    /// Deployment-wide counts; sockets are summed over instances that reported since `fresh_since`.
    pub async fn stats(&self, now: Timestamp, fresh_since: Timestamp) -> AppResult<StatsRow> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT
               (SELECT COUNT(*) FROM users WHERE role <> 'assistant') AS users,
               (SELECT COUNT(*) FROM conversations) AS conversations,
               (SELECT COUNT(*) FROM messages WHERE deleted_at IS NULL) AS messages,
               (SELECT COUNT(*) FROM files WHERE NOT is_folder AND status = 'ready') AS files,
               (SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM storage_accounts) AS bytes_stored,
               (SELECT COUNT(*) FROM calls WHERE status IN ('ringing', 'active')) AS live_calls,
               (SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL
                  AND idle_expires_at > $1 AND absolute_expires_at > $1) AS sessions,
               (SELECT CAST(COALESCE(SUM(sockets), 0) AS BIGINT) FROM instance_stats
                  WHERE seen_at >= $2) AS sockets")
            .bind(now).bind(fresh_since).fetch_one(p).await)?)
    }

    pub async fn find_user(&self, id: UserId) -> AppResult<Option<AdminUserRow>> {
        Ok(
            on_pool!(self.0, p => sqlx::query_as(concat!(admin_user_select!(), "WHERE u.id = $1"))
            .bind(id).fetch_optional(p).await)?,
        )
    }

    /// Users whose email, username or display name contains `q` (lowercased; any when empty),
    /// newest first, before the `before` id (keyset cursor).
    pub async fn list_users(
        &self,
        q: &str,
        before: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<AdminUserRow>> {
        let pattern = format!("%{}%", crate::users::escape_like(q));
        let sql = concat!(
            admin_user_select!(),
            "WHERE u.role <> 'assistant'
               AND (u.email_normalized LIKE $1 ESCAPE '\\' OR LOWER(u.username) LIKE $1 ESCAPE '\\'
                    OR u.search_name LIKE $1 ESCAPE '\\')
               AND ($2 IS NULL OR u.id < $2)
             ORDER BY u.id DESC LIMIT $3"
        );
        Ok(on_pool!(self.0, p => sqlx::query_as(sql)
            .bind(pattern).bind(before).bind(limit).fetch_all(p).await)?)
    }

    /// Puts a ban in force (replacing any earlier one); false when there is no such user.
    pub async fn ban(
        &self,
        id: UserId,
        reason: &str,
        until: Option<Timestamp>,
        now: Timestamp,
    ) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET banned_at = $2, banned_until = $3, ban_reason = $4, updated_at = $2
             WHERE id = $1")
            .bind(id).bind(now).bind(until).bind(reason).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Lifts a ban; false when there is no such user.
    pub async fn unban(&self, id: UserId, now: Timestamp) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET banned_at = NULL, banned_until = NULL, ban_reason = NULL, updated_at = $2
             WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Sets a user's storage quota in bytes.
    pub async fn set_quota(&self, id: UserId, quota: i64) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO storage_accounts (user_id, quota) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET quota = excluded.quota")
            .bind(id).bind(quota).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Turns two-factor authentication off (for a locked-out user, from the CLI).
    pub async fn reset_totp(&self, id: UserId, now: Timestamp) -> AppResult<bool> {
        let n = on_pool!(self.0, p => {
            let mut tx = p.begin_write(self.0).await?;
            let n = sqlx::query(
                "UPDATE users SET totp_enabled = FALSE, totp_secret_enc = NULL, updated_at = $2
                 WHERE id = $1")
                .bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await.map(|()| n)
        })?;
        Ok(n == 1)
    }

    /// This instance's open sockets, renewed every few seconds.
    pub async fn report_sockets(
        &self,
        instance: Uuid,
        sockets: i64,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO instance_stats (instance_id, sockets, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (instance_id) DO UPDATE SET sockets = excluded.sockets, seen_at = excluded.seen_at")
            .bind(instance).bind(sockets).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        // Rows of instances gone for a day are of no use to anyone.
        on_pool!(self.0, p => sqlx::query("DELETE FROM instance_stats WHERE seen_at < $1")
            .bind(now.minus(std::time::Duration::from_secs(86_400))).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// An instance stopping takes its sockets out of the count at once.
    pub async fn forget_instance(&self, instance: Uuid) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM instance_stats WHERE instance_id = $1")
            .bind(instance).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
