//! Single-use tokens (email verification, password reset) and 2FA recovery codes, all stored as
//! hashes only.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{AppResult, ids::UserId, time::Timestamp};

pub struct Tokens<'a>(&'a Db);

impl Db {
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens(self)
    }
}

impl Tokens<'_> {
    pub async fn insert(
        &self,
        hash: &str,
        user: UserId,
        purpose: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash).bind(user).bind(purpose).bind(now).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Uses a token once: returns its user if it was unused, unexpired and of this purpose.
    pub async fn consume(
        &self,
        hash: &str,
        purpose: &str,
        now: Timestamp,
    ) -> AppResult<Option<UserId>> {
        let row: Option<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
            "UPDATE one_time_tokens SET used_at = $3
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id")
            .bind(hash).bind(purpose).bind(now).fetch_optional(p).await)?;
        Ok(row.map(|r| r.0))
    }

    /// The user of a usable token, without using it.
    pub async fn peek(
        &self,
        hash: &str,
        purpose: &str,
        now: Timestamp,
    ) -> AppResult<Option<UserId>> {
        let row: Option<(UserId,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT user_id FROM one_time_tokens
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3")
            .bind(hash).bind(purpose).bind(now).fetch_optional(p).await)?;
        Ok(row.map(|r| r.0))
    }

    /// Voids every outstanding token of a purpose (a new reset link voids older ones).
    pub async fn invalidate(&self, user: UserId, purpose: &str, now: Timestamp) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
            .bind(user).bind(purpose).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn replace_recovery_codes(&self, user: UserId, hashes: &[String]) -> AppResult<()> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user).execute(&mut *tx).await?;
                for h in hashes {
                    sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                        .bind(user).bind(h).execute(&mut *tx).await?;
                }
                tx.commit().await
            })
        };
        crate::retry_tx!(run())?;
        Ok(())
    }

    /// Uses a recovery code once.
    pub async fn consume_recovery_code(
        &self,
        user: UserId,
        hash: &str,
        now: Timestamp,
    ) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
            .bind(user).bind(hash).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(r == 1)
    }
}
