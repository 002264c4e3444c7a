//! What the services share: configuration, ports and the helpers every rule needs (auditing,
//! ending sessions everywhere).

use crate::{
    SESSION_REVOKED_CHANNEL,
    crypto::{JwtKeys, SecretBox},
    mail::MailService,
    metrics::Metrics,
    password::PasswordHasher,
    session_cache::{CACHE_TTL, CallCache, ConversationCache, SessionCache, UserCache},
};
use sc_core::{
    AppResult,
    config::Config,
    ids::{ConversationId, SessionId, UserId},
    time::Timestamp,
};
use sc_db::Db;
use sc_infra::{bus::Bus, ratelimit::RateLimiter};
use std::sync::Arc;
use std::time::Duration;

pub struct Deps {
    pub cfg: Arc<Config>,
    pub db: Db,
    /// Where reads that tolerate lag go (a read replica when configured, else `db`).
    pub db_read: Db,
    pub bus: Bus,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    pub mail: MailService,
    pub hasher: PasswordHasher,
    pub jwt: JwtKeys,
    pub secret_box: SecretBox,
    pub sessions: SessionCache,
    pub users: UserCache,
    pub conversations: ConversationCache,
    pub calls: CallCache,
    /// Sends pushes (Web Push always; FCM and APNs when configured).
    pub push: Arc<sc_infra::push::PushClient>,
    /// Wakes this instance's message-notification worker after messages were written.
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Wakes this instance's notification dispatcher after records were written.
    pub notify_wake: Arc<tokio::sync::Notify>,
    /// Wakes this instance's push sender after pushes were queued.
    pub push_wake: Arc<tokio::sync::Notify>,
}

impl Deps {
    /// Records a security event. Failure to audit is logged, never fatal to the request.
    pub async fn audit(
        &self,
        user: Option<UserId>,
        event: &str,
        ip: Option<&str>,
        details: serde_json::Value,
    ) {
        self.audit_by(None, user, event, ip, details).await
    }

    /// Records a security event that `actor` (an administrator) caused for `user`.
    pub async fn audit_by(
        &self,
        actor: Option<UserId>,
        user: Option<UserId>,
        event: &str,
        ip: Option<&str>,
        details: serde_json::Value,
    ) {
        let (user_id, actor_id) = (
            user.map(|u| u.to_string()).unwrap_or_default(),
            actor.map(|u| u.to_string()).unwrap_or_default(),
        );
        tracing::info!(event, user_id, actor_id, "audit");
        let entry = sc_db::audit::NewAudit {
            user,
            actor,
            event,
            ip,
            details: &details,
            now: Timestamp::now(),
        };
        if let Err(e) = self.db.audit().insert(&entry).await {
            tracing::error!(event, error = %e, "could not write audit log");
        }
    }

    /// Drops ended sessions from every instance's cache (and, later, closes their sockets).
    pub async fn announce_revoked(&self, ids: &[SessionId]) {
        self.announce_ended(ids, SESSION_REVOKED_CHANNEL).await
    }

    /// Ends every session of a banned user on every instance; their sockets close with 4003.
    pub async fn end_sessions_for_ban(&self, user: UserId) -> AppResult<Vec<SessionId>> {
        let ids = self
            .db
            .sessions()
            .revoke_all(user, None, "banned", Timestamp::now())
            .await?;
        self.announce_ended(&ids, crate::SESSION_BANNED_CHANNEL)
            .await;
        Ok(ids)
    }

    async fn announce_ended(&self, ids: &[SessionId], channel: &str) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.sessions.remove(id);
        }
        let payload = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.bus.publish_urgent(channel, &payload).await;
    }

    /// Re-authentication (current password or code on change-password, delete-account and
    /// 2FA-disable) is limited to 10 attempts per 15 minutes per user, so a stolen access token
    /// cannot be used to guess the password.
    pub async fn reauth_allowed(&self, user: UserId) -> AppResult<()> {
        self.within_limit(
            "reauth",
            &format!("reauth:{user}"),
            10,
            Duration::from_secs(900),
        )
        .await
    }

    /// Counts one hit against a limit of the service (sends, re-authentication, mails); over it,
    /// a 429 that names this limit (its `RateLimit-*` headers, not the route's general ones).
    pub async fn within_limit(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> AppResult<()> {
        let d = self.limiter.check(key, limit, window).await;
        if d.allowed {
            return Ok(());
        }
        self.metrics
            .rate_limited
            .get_or_create(&vec![("scope", scope.to_string())])
            .inc();
        Err(sc_core::AppError::RateLimited {
            retry_after_seconds: d.reset_seconds,
            limit: Some(limit),
        })
    }

    /// Re-authentication: the budget above, then the password; a wrong one is a 400 naming
    /// `field` (API.md §12: wrong current password → VALIDATION_ERROR).
    pub async fn check_current_password(
        &self,
        user: &sc_db::users::UserRow,
        password: &str,
        field: &str,
    ) -> AppResult<()> {
        self.reauth_allowed(user.id).await?;
        if !self
            .hasher
            .verify(password, Some(&user.password_hash))
            .await?
        {
            return Err(sc_core::AppError::validation(field, "wrong password"));
        }
        Ok(())
    }

    /// How long a cached entry may live (see `session_cache`).
    pub fn cache_ttl(&self) -> std::time::Duration {
        CACHE_TTL
    }

    /// The account as the owner sees it, from the cache when fresh.
    pub async fn user_view(&self, id: UserId) -> AppResult<Option<sc_db::users::UserRow>> {
        if let Some(u) = self.users.get(&id) {
            return Ok(Some(u));
        }
        let user = self.db.users().find(id).await?;
        if let Some(u) = &user {
            self.users.put(id, u.clone(), self.cache_ttl());
        }
        Ok(user)
    }

    /// Call after changing any field of a user that `user_view` shows.
    pub async fn user_changed(&self, id: UserId) {
        self.users.remove(&id);
        self.bus
            .publish(crate::USER_CHANGED_CHANNEL, &id.to_string())
            .await;
    }

    /// Call after removing members from a conversation or deleting it: drops its cached access
    /// on every instance.
    pub async fn conversation_changed(&self, id: ConversationId) {
        self.conversations.remove(&id);
        self.bus
            .publish(crate::CONVERSATION_CHANGED_CHANNEL, &id.to_string())
            .await;
    }

    /// Call after a call's participants changed (committed): drops its cached sessions on
    /// every instance.
    pub async fn call_changed(&self, id: sc_core::ids::CallId) {
        self.calls.remove(&id);
        self.bus
            .publish(crate::CALL_CHANGED_CHANNEL, &id.to_string())
            .await;
    }

    /// Drops cached contexts (role or verification changed) on every instance; sessions live on.
    pub async fn invalidate_cached(&self, ids: &[SessionId]) {
        if ids.is_empty() {
            return;
        }
        for id in ids {
            self.sessions.remove(id);
        }
        let payload = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.bus
            .publish(crate::SESSION_CHANGED_CHANNEL, &payload)
            .await;
    }

    pub async fn end_session(&self, id: SessionId, reason: &str) -> AppResult<bool> {
        let ended = self
            .db
            .sessions()
            .revoke(id, reason, Timestamp::now())
            .await?;
        self.announce_revoked(&[id]).await;
        Ok(ended)
    }

    pub async fn end_all_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: &str,
    ) -> AppResult<Vec<SessionId>> {
        let ids = self
            .db
            .sessions()
            .revoke_all(user, keep, reason, Timestamp::now())
            .await?;
        self.announce_revoked(&ids).await;
        Ok(ids)
    }

    /// Mail to a user's address (queued; never fails the caller).
    pub async fn notify_user(&self, user: UserId, subject: &str, body: &str) {
        match self.db.users().find(user).await {
            Ok(Some(u)) => self.mail.enqueue(&u.email, subject, body).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not look up user for notification mail"),
        }
    }
}
