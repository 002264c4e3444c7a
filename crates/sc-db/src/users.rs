//! Users: accounts, credentials, lockout counters, TOTP state.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{AppResult, ids::UserId, time::Timestamp};

#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub password_hash: String,
    pub email_verified: bool,
    pub role: String,
    pub totp_secret_enc: Option<String>,
    pub totp_enabled: bool,
    pub totp_last_step: i64,
    pub failed_login_count: i32,
    pub locked_until: Option<Timestamp>,
    pub banned_at: Option<Timestamp>,
    pub banned_until: Option<Timestamp>,
    pub created_at: Timestamp,
    /// The user's opt-in to AI helpers (`/v1/ai/settings`).
    pub ai_enabled: bool,
}

impl UserRow {
    /// A ban is in force from `banned_at` until `banned_until` (none: no end).
    pub fn banned(&self, now: Timestamp) -> bool {
        ban_in_force(self.banned_at, self.banned_until, now)
    }
}

/// A ban is in force from `banned_at` until `banned_until` (none: no end).
pub(crate) fn ban_in_force(
    banned_at: Option<Timestamp>,
    banned_until: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    banned_at.is_some() && banned_until.is_none_or(|u| u > now)
}

impl std::fmt::Debug for UserRow {
    // Credentials stay out of Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The public face of a user: what other users may see (never the email).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ProfileRow {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub username: &'a str,
    pub display_name: &'a str,
    pub search_name: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub email_verified: bool,
    pub now: Timestamp,
}

/// Which unique key a new account collides with.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    Email,
    Username,
}

/// Result of counting one failed login.
#[derive(Debug, Clone, Copy)]
pub enum FailureOutcome {
    /// Counted; the account is not locked.
    Counted(i32),
    /// This failure reached the threshold and locked the account (happens once per lock).
    LockedNow(Timestamp),
    /// The account was already locked when the failure arrived; nothing was counted.
    AlreadyLocked(Timestamp),
}

macro_rules! user_columns {
    () => {
        "id, email, username, display_name, avatar_url, password_hash, email_verified, role, \
     totp_secret_enc, totp_enabled, totp_last_step, failed_login_count, locked_until, banned_at, banned_until, created_at, \
     ai_enabled"
    };
}

pub struct Users<'a>(pub(crate) &'a Db);

impl Db {
    pub fn users(&self) -> Users<'_> {
        Users(self)
    }
}

impl Users<'_> {
    /// Inserts a user; on a duplicate email or username says which one is taken.
    pub async fn insert(&self, u: &NewUser<'_>) -> AppResult<Result<(), Taken>> {
        let res = on_pool!(self.0, p => sqlx::query(
            "INSERT INTO users (id, email, email_normalized, username, display_name, search_name,
                                password_hash, role, email_verified, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(u.id).bind(u.email).bind(u.email_normalized).bind(u.username).bind(u.display_name)
        .bind(u.search_name).bind(u.password_hash).bind(u.role).bind(u.email_verified).bind(u.now)
        .execute(p).await.map(|r| r.rows_affected()));
        match res {
            Ok(_) => Ok(Ok(())),
            Err(e) if crate::is_unique_violation(&e) => {
                let email_taken: Option<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
                    "SELECT id FROM users WHERE email_normalized = $1").bind(u.email_normalized).fetch_optional(p).await)?;
                Ok(Err(if email_taken.is_some() {
                    Taken::Email
                } else {
                    Taken::Username
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn find(&self, id: UserId) -> AppResult<Option<UserRow>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        Ok(on_pool!(self.0, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Finds by normalized email or (lowercased) username.
    pub async fn find_by_login(
        &self,
        email_normalized: Option<&str>,
        username: Option<&str>,
    ) -> AppResult<Option<UserRow>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email_normalized = $1 OR username = $2"
        );
        Ok(
            on_pool!(self.0, p => sqlx::query_as(sql).bind(email_normalized).bind(username).fetch_optional(p).await)?,
        )
    }

    pub async fn find_by_email(&self, email_normalized: &str) -> AppResult<Option<UserRow>> {
        self.find_by_login(Some(email_normalized), None).await
    }

    /// Counts a failed login in one atomic statement: the window restarts when it has expired,
    /// and the failure that reaches `threshold` sets `locked_until`. A row already locked is not
    /// touched, so concurrent failures lock the account exactly once.
    pub async fn record_failed_login(
        &self,
        id: UserId,
        now: Timestamp,
        window_start_cutoff: Timestamp,
        threshold: i32,
        lock_until: Timestamp,
    ) -> AppResult<FailureOutcome> {
        let row: Option<(i32, Option<Timestamp>)> = on_pool!(self.0, p => sqlx::query_as(
            "UPDATE users SET
                failed_login_count = CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < $2
                                          THEN 1 ELSE failed_login_count + 1 END,
                failed_login_window_start = CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < $2
                                          THEN $3 ELSE failed_login_window_start END,
                locked_until = CASE WHEN (CASE WHEN failed_login_window_start IS NULL OR failed_login_window_start < $2
                                               THEN 1 ELSE failed_login_count + 1 END) >= $4
                                    THEN $5 ELSE locked_until END
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $3)
             RETURNING failed_login_count, locked_until",
        )
        .bind(id).bind(window_start_cutoff).bind(now).bind(threshold).bind(lock_until)
        .fetch_optional(p).await)?;
        match row {
            Some((_, Some(until))) if until > now => Ok(FailureOutcome::LockedNow(until)),
            Some((count, _)) => Ok(FailureOutcome::Counted(count)),
            None => {
                let until: Option<(Option<Timestamp>,)> = on_pool!(self.0, p => sqlx::query_as(
                    "SELECT locked_until FROM users WHERE id = $1").bind(id).fetch_optional(p).await)?;
                Ok(FailureOutcome::AlreadyLocked(
                    until.and_then(|r| r.0).unwrap_or(now),
                ))
            }
        }
    }

    pub async fn clear_failed_logins(&self, id: UserId) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET failed_login_count = 0, failed_login_window_start = NULL
             WHERE id = $1 AND failed_login_count <> 0").bind(id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The current lock, read fresh (a lock may have been set while a password was verified).
    pub async fn locked_until(&self, id: UserId) -> AppResult<Option<Timestamp>> {
        let row: Option<(Option<Timestamp>,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT locked_until FROM users WHERE id = $1").bind(id).fetch_optional(p).await)?;
        Ok(row.and_then(|r| r.0))
    }

    pub async fn update_profile(
        &self,
        id: UserId,
        display_name: &str,
        search_name: &str,
        avatar_url: Option<&str>,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET display_name = $2, search_name = $3, avatar_url = $4, updated_at = $5 WHERE id = $1")
            .bind(id).bind(display_name).bind(search_name).bind(avatar_url).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_password(&self, id: UserId, hash: &str, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3, failed_login_count = 0,
                    failed_login_window_start = NULL, locked_until = NULL WHERE id = $1")
            .bind(id).bind(hash).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_email_verified(&self, id: UserId, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1")
            .bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores a new (not yet active) TOTP secret; refused while 2FA is enabled.
    pub async fn set_pending_totp(
        &self,
        id: UserId,
        secret_enc: &str,
        now: Timestamp,
    ) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET totp_secret_enc = $2, totp_last_step = 0, updated_at = $3
             WHERE id = $1 AND totp_enabled = FALSE")
            .bind(id).bind(secret_enc).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }

    pub async fn set_totp_enabled(
        &self,
        id: UserId,
        enabled: bool,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET totp_enabled = $2, updated_at = $3,
                    totp_secret_enc = CASE WHEN $2 THEN totp_secret_enc ELSE NULL END WHERE id = $1")
            .bind(id).bind(enabled).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks a TOTP time step as used. False when this or a later step was already used: a code
    /// cannot be replayed, even by concurrent requests.
    pub async fn consume_totp_step(&self, id: UserId, step: i64) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(
            "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
            .bind(id).bind(step).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }

    pub async fn set_role(&self, id: UserId, role: &str, now: Timestamp) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1")
            .bind(id).bind(role).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }

    /// Deletes the account; its rows go by cascade. The objects of its drive files are queued
    /// for the drive cleanup job in the same transaction, so none is left behind.
    pub async fn delete(&self, id: UserId) -> AppResult<()> {
        let now = Timestamp::now();
        on_pool!(self.0, p => {
            let mut tx = p.begin_write(self.0).await?;
            sqlx::query(
                "INSERT INTO blob_deletions (blob_key, queued_at)
                 SELECT v.blob_key, $2 FROM file_versions v JOIN files f ON f.id = v.file_id WHERE f.owner_id = $1
                 ON CONFLICT DO NOTHING")
                .bind(id).bind(now).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await
        })?;
        Ok(())
    }

    pub async fn profile(&self, id: UserId) -> AppResult<Option<ProfileRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, username, display_name, avatar_url FROM users WHERE id = $1").bind(id).fetch_optional(p).await)?)
    }

    /// Users whose username or lowercased display name starts with `prefix` (already lowercased),
    /// ordered by username, after `after_username` (keyset cursor).
    pub async fn search(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: i64,
    ) -> AppResult<Vec<ProfileRow>> {
        let pattern = format!("{}%", escape_like(prefix));
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, username, display_name, avatar_url FROM users
             WHERE (username LIKE $1 ESCAPE '\\' OR search_name LIKE $1 ESCAPE '\\')
               AND role <> 'assistant' AND ($2 IS NULL OR username > $2)
             ORDER BY username LIMIT $3")
            .bind(pattern).bind(after_username).bind(limit).fetch_all(p).await)?)
    }

    pub async fn count(&self) -> AppResult<i64> {
        let (n,): (i64,) =
            on_pool!(self.0, p => sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(p).await)?;
        Ok(n)
    }
}

/// Escapes LIKE wildcards so user input matches literally.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
