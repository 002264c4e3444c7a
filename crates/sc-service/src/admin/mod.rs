//! Administration (API.md §11): deployment stats, the user directory, roles, quotas, bans and the
//! audit log. The same actions serve the admin routes (an administrator as the actor) and the
//! CLI (no actor: the operator at the machine).
//!
//! Lists and stats read from the read replica when there is one (they tolerate lag); what an
//! action answers is read back from the primary.
//!
//! Every admin request re-reads the caller's account: the role and 2FA state come from the
//! database, not from a cached session context, so a demotion takes effect on the next request.

mod retention;
mod views;

pub use views::{AdminUserView, AuditEntryView, StatsView};

use crate::{AuthContext, ClientInfo, Deps, Role};
use sc_core::{
    AppError, AppResult,
    domain::{BanReason, Username},
    ids::UserId,
    time::Timestamp,
};
use sc_db::{admin::AdminUserRow, audit::AuditFilter};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Instances report their socket counts this often; a report older than three periods is stale.
pub const SOCKET_REPORT_EVERY: Duration = Duration::from_secs(5);

/// What an administrator may change on an account in one request.
#[derive(Default)]
pub struct UserPatch {
    pub role: Option<Role>,
    /// Storage quota in bytes.
    pub quota: Option<u64>,
}

#[derive(Clone)]
pub struct AdminService {
    d: Arc<Deps>,
}

impl AdminService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    /// The gate of every admin route: an administrator, with 2FA while `admin_require_2fa`.
    pub async fn require_admin(&self, ctx: &AuthContext) -> AppResult<UserId> {
        let me = self
            .d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(|| AppError::Forbidden("administrators only".into()))?;
        if Role::parse(&me.role) != Some(Role::Admin) {
            return Err(AppError::Forbidden("administrators only".into()));
        }
        if self.d.cfg.admin_require_2fa && !me.totp_enabled {
            return Err(AppError::ForbiddenBecause {
                message: "administrators must enable two-factor authentication first".into(),
                reason: "2fa_required",
            });
        }
        Ok(me.id)
    }

    pub async fn stats(&self) -> AppResult<StatsView> {
        let now = Timestamp::now();
        let fresh_since = now.minus(SOCKET_REPORT_EVERY * 3);
        Ok(self.d.db_read.admin().stats(now, fresh_since).await?.into())
    }

    /// Users matching `q` (email, username or display name; case-insensitive), newest first.
    pub async fn list_users(
        &self,
        q: &str,
        before: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<AdminUserView>> {
        let q = q.trim().to_lowercase();
        let rows = self.d.db_read.admin().list_users(&q, before, limit).await?;
        Ok(rows.into_iter().map(|r| self.view(r)).collect())
    }

    pub async fn user(&self, id: UserId) -> AppResult<AdminUserView> {
        Ok(self.view(self.row(id).await?))
    }

    pub async fn find_by_username(&self, username: &Username) -> AppResult<UserId> {
        Ok(self
            .d
            .db
            .users()
            .find_by_login(None, Some(username.as_str()))
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))?
            .id)
    }

    /// Changes role and/or quota. An administrator cannot change their own role (the last
    /// administrator could otherwise lock everyone out).
    pub async fn update_user(
        &self,
        actor: Option<UserId>,
        id: UserId,
        patch: UserPatch,
        client: &ClientInfo,
    ) -> AppResult<AdminUserView> {
        let row = self.row(id).await?;
        if row.role == "assistant" {
            return Err(AppError::conflict(
                "the assistant account is managed by the server",
            ));
        }
        if let Some(role) = patch.role
            && role.as_str() != row.role
        {
            if actor == Some(id) {
                return Err(AppError::conflict(
                    "administrators cannot change their own role",
                ));
            }
            self.d
                .db
                .users()
                .set_role(id, role.as_str(), Timestamp::now())
                .await?;
            self.d.user_changed(id).await;
            // Cached session contexts carry the role.
            let sessions = self
                .d
                .db
                .sessions()
                .active_ids(id, Timestamp::now())
                .await?;
            self.d.invalidate_cached(&sessions).await;
            self.d
                .audit_by(
                    actor,
                    Some(id),
                    "account.role_changed",
                    client.ip.as_deref(),
                    json!({"from": row.role, "to": role.as_str()}),
                )
                .await;
        }
        if let Some(quota) = patch.quota {
            let quota =
                i64::try_from(quota).map_err(|_| AppError::validation("quota", "too large"))?;
            let before = row.quota.unwrap_or(self.default_quota());
            self.d.db.admin().set_quota(id, quota).await?;
            self.d
                .audit_by(
                    actor,
                    Some(id),
                    "quota.changed",
                    client.ip.as_deref(),
                    json!({"from": before, "to": quota}),
                )
                .await;
        }
        self.user(id).await
    }

    /// Bans an account: its sessions end at once on every instance (sockets close with 4003),
    /// its push subscriptions go, and login and refresh answer 403 until `until` (none: until
    /// an unban).
    pub async fn ban(
        &self,
        actor: Option<UserId>,
        id: UserId,
        reason: &BanReason,
        until: Option<Timestamp>,
        client: &ClientInfo,
    ) -> AppResult<AdminUserView> {
        let now = Timestamp::now();
        if actor == Some(id) {
            return Err(AppError::conflict("administrators cannot ban themselves"));
        }
        if until.is_some_and(|u| u <= now) {
            return Err(AppError::validation("until", "must be in the future"));
        }
        let row = self.row(id).await?;
        if row.role == "assistant" {
            return Err(AppError::conflict(
                "the assistant account is managed by the server",
            ));
        }
        self.d
            .db
            .admin()
            .ban(id, reason.as_str(), until, now)
            .await?;
        self.d.user_changed(id).await;
        // After the ban is recorded: a session created by a login racing this one is refused by
        // the ban check of every uncached authentication, and is ended here if it got in first.
        let ended = self.d.end_sessions_for_ban(id).await?;
        self.d.db.push().remove_for_user(id).await?;
        self.d
            .metrics
            .bans
            .get_or_create(&vec![("action", "ban".to_string())])
            .inc();
        self.d
            .audit_by(
                actor,
                Some(id),
                "user.banned",
                client.ip.as_deref(),
                json!({
                    "reason": reason.as_str(),
                    "until": until.map(Timestamp::to_rfc3339),
                    "sessions_ended": ended.len(),
                }),
            )
            .await;
        self.user(id).await
    }

    /// Lifts a ban. Sessions the ban ended stay ended.
    pub async fn unban(
        &self,
        actor: Option<UserId>,
        id: UserId,
        client: &ClientInfo,
    ) -> AppResult<AdminUserView> {
        let row = self.row(id).await?;
        self.d.db.admin().unban(id, Timestamp::now()).await?;
        self.d.user_changed(id).await;
        if row.banned_at.is_some() {
            self.d
                .metrics
                .bans
                .get_or_create(&vec![("action", "unban".to_string())])
                .inc();
            self.d
                .audit_by(
                    actor,
                    Some(id),
                    "user.unbanned",
                    client.ip.as_deref(),
                    json!({}),
                )
                .await;
        }
        self.user(id).await
    }

    /// Turns 2FA off for a user locked out of it (CLI only: an operator who checked who asks).
    /// Their sessions end, so whoever holds one signs in again with the password alone.
    pub async fn reset_2fa(&self, id: UserId) -> AppResult<AdminUserView> {
        self.row(id).await?;
        self.d.db.admin().reset_totp(id, Timestamp::now()).await?;
        self.d.user_changed(id).await;
        self.d.end_all_sessions(id, None, "2fa_reset").await?;
        self.d
            .audit_by(
                None,
                Some(id),
                "2fa.disabled",
                None,
                json!({"by": "operator"}),
            )
            .await;
        self.user(id).await
    }

    /// Audit entries, newest first.
    pub async fn audit_log(
        &self,
        filter: &AuditFilter<'_>,
        limit: i64,
    ) -> AppResult<Vec<AuditEntryView>> {
        let rows = self.d.db_read.audit().list(filter, limit).await?;
        Ok(rows.into_iter().map(AuditEntryView::from).collect())
    }

    /// Every entry matching `filter` (newest first), a page at a time, for an export.
    pub async fn audit_export(
        &self,
        mut filter: AuditFilter<'_>,
        mut each: impl FnMut(AuditEntryView) -> std::io::Result<()>,
    ) -> AppResult<u64> {
        let mut total = 0;
        loop {
            let rows = self.d.db.audit().list(&filter, 500).await?;
            let Some(last) = rows.last().map(|r| r.id) else {
                return Ok(total);
            };
            for r in rows {
                each(AuditEntryView::from(r)).map_err(AppError::internal)?;
                total += 1;
            }
            filter.before = Some(last);
        }
    }

    /// Reports this instance's socket count until `stop`, then takes it out of the count.
    pub fn spawn_socket_reporter(
        &self,
        instance: uuid::Uuid,
        sockets: impl Fn() -> usize + Send + 'static,
        stop: CancellationToken,
    ) {
        let d = self.d.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SOCKET_REPORT_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        let n = i64::try_from(sockets()).unwrap_or(i64::MAX);
                        if let Err(e) = d.db.admin().report_sockets(instance, n, Timestamp::now()).await {
                            tracing::warn!(error = %e, "could not report the socket count");
                        }
                    }
                }
            }
            let _ = d.db.admin().forget_instance(instance).await;
        });
    }

    async fn row(&self, id: UserId) -> AppResult<AdminUserRow> {
        self.d
            .db
            .admin()
            .find_user(id)
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))
    }

    fn default_quota(&self) -> i64 {
        i64::try_from(self.d.cfg.default_quota_bytes).unwrap_or(i64::MAX)
    }

    fn view(&self, r: AdminUserRow) -> AdminUserView {
        AdminUserView::new(r, self.default_quota(), Timestamp::now())
    }
}
