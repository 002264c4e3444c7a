//! The security audit log: logins, failures, lockouts, credential and 2FA changes.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{AuditId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: AuditId,
    pub user_id: Option<UserId>,
    pub event: String,
    pub ip: Option<String>,
    pub details: String,
    pub created_at: Timestamp,
}

pub struct Audit<'a>(&'a Db);

impl Db {
    pub fn audit(&self) -> Audit<'_> {
        Audit(self)
    }
}

impl Audit<'_> {
    pub async fn insert(
        &self,
        user: Option<UserId>,
        event: &str,
        ip: Option<&str>,
        details: &serde_json::Value,
        now: Timestamp,
    ) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO audit_log (id, user_id, event, ip, details, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(AuditId::new()).bind(user).bind(event).bind(ip).bind(details.to_string()).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first, optionally for one user and/or one event kind, before `before` (cursor).
    pub async fn list(
        &self,
        user: Option<UserId>,
        event: Option<&str>,
        before: Option<AuditId>,
        limit: i64,
    ) -> AppResult<Vec<AuditRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, user_id, event, ip, details, created_at FROM audit_log
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR event = $2) AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4")
            .bind(user).bind(event).bind(before).bind(limit).fetch_all(p).await)?)
    }
}
