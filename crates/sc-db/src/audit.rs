//! The security audit log: logins, failures, lockouts, credential and 2FA changes, admin actions.

use crate::Db;
use sc_core::{
    AppResult,
    ids::{AuditId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: AuditId,
    /// Whom the event is about.
    pub user_id: Option<UserId>,
    /// Who caused it, when that is someone else (an administrator).
    pub actor_id: Option<UserId>,
    pub event: String,
    pub ip: Option<String>,
    pub details: String,
    pub created_at: Timestamp,
}

/// One entry to record.
pub struct NewAudit<'a> {
    pub user: Option<UserId>,
    pub actor: Option<UserId>,
    pub event: &'a str,
    pub ip: Option<&'a str>,
    pub details: &'a serde_json::Value,
    pub now: Timestamp,
}

/// Which entries to list.
#[derive(Default)]
pub struct AuditFilter<'a> {
    /// Entries about this user or caused by them.
    pub user: Option<UserId>,
    pub event: Option<&'a str>,
    pub since: Option<Timestamp>,
    /// Keyset cursor: entries older than this one.
    pub before: Option<AuditId>,
}

pub struct Audit<'a>(&'a Db);

impl Db {
    pub fn audit(&self) -> Audit<'_> {
        Audit(self)
    }
}

impl Audit<'_> {
    pub async fn insert(&self, a: &NewAudit<'_>) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query(
            "INSERT INTO audit_log (id, user_id, actor_id, event, ip, details, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(AuditId::new()).bind(a.user).bind(a.actor).bind(a.event).bind(a.ip)
            .bind(a.details.to_string()).bind(a.now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first.
    pub async fn list(&self, f: &AuditFilter<'_>, limit: i64) -> AppResult<Vec<AuditRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, user_id, actor_id, event, ip, details, created_at FROM audit_log
             WHERE ($1 IS NULL OR user_id = $1 OR actor_id = $1) AND ($2 IS NULL OR event = $2)
               AND ($3 IS NULL OR created_at >= $3) AND ($4 IS NULL OR id < $4)
             ORDER BY id DESC LIMIT $5")
            .bind(f.user).bind(f.event).bind(f.since).bind(f.before).bind(limit).fetch_all(p).await)?)
    }

    /// Deletes up to `batch` entries older than `cutoff`; how many went.
    pub async fn purge_before(&self, cutoff: Timestamp, batch: i64) -> AppResult<u64> {
        Ok(on_pool!(self.0, p => sqlx::query(
            "DELETE FROM audit_log WHERE id IN
               (SELECT id FROM audit_log WHERE created_at < $1 ORDER BY created_at LIMIT $2)")
            .bind(cutoff).bind(batch).execute(p).await.map(|r| r.rows_affected()))?)
    }
}
