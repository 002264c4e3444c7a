//! Authentication: registration, login with lockout and second factor, token refresh with
//! rotation and reuse detection, sessions, email verification, password reset, TOTP.

use crate::notify::{self, SecurityEvent};
use crate::{
    AuthContext, ClientInfo, Deps, Role,
    crypto::{
        self, new_recovery_codes, random_token, recovery_code_hash, token_hash, totp_matching_step,
    },
    password::check_policy,
};
use sc_core::{
    AppError, AppResult,
    domain::{DisplayName, Email, Username},
    ids::{SessionId, UserId},
    time::Timestamp,
};
use sc_db::{
    sessions::{RefreshLookup, SessionRow},
    users::{FailureOutcome, NewUser, Taken, UserRow},
};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PURPOSE_VERIFY: &str = "verify_email";
const PURPOSE_RESET: &str = "password_reset";
const VERIFY_TTL: Duration = Duration::from_secs(24 * 3600);
const RESET_TTL: Duration = Duration::from_secs(3600);
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A freshly issued token pair.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub session_id: SessionId,
    pub user: UserRow,
}

pub struct Registration {
    pub email: Email,
    pub username: Username,
    pub display_name: DisplayName,
    pub password: String,
    pub device_name: Option<String>,
}

pub enum LoginId {
    Email(Email),
    Username(Username),
    /// An identifier no account can have (e.g. a malformed username).
    NoSuchAccount,
}

pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
}

#[derive(Clone)]
pub struct AuthService {
    d: Arc<Deps>,
}

fn unauthorized() -> AppError {
    AppError::Unauthorized("invalid credentials".into())
}

fn session_expired() -> AppError {
    AppError::Unauthorized("invalid or expired token".into())
}

impl AuthService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    pub fn deps(&self) -> &Deps {
        &self.d
    }

    pub async fn register(&self, r: Registration, client: &ClientInfo) -> AppResult<TokenPair> {
        if r.username.is_reserved() {
            return Err(AppError::validation(
                "username",
                "this username is reserved",
            ));
        }
        let password = check_policy(
            "password",
            &r.password,
            r.username.as_str(),
            &r.email.normalized,
        )?;
        let hash = self.d.hasher.hash(&password).await?;
        let now = Timestamp::now();
        let id = UserId::new();
        let new = NewUser {
            id,
            email: &r.email.address,
            email_normalized: &r.email.normalized,
            username: r.username.as_str(),
            display_name: r.display_name.as_str(),
            search_name: &r.display_name.search_key(),
            password_hash: &hash,
            role: Role::User.as_str(),
            email_verified: false,
            now,
        };
        match self.d.db.users().insert(&new).await? {
            Ok(()) => {}
            Err(Taken::Email) => {
                return Err(AppError::Conflict {
                    message: "email is already registered".into(),
                    details: Some(json!({"field": "email"})),
                });
            }
            Err(Taken::Username) => {
                return Err(AppError::Conflict {
                    message: "username is taken".into(),
                    details: Some(json!({"field": "username"})),
                });
            }
        }
        self.d
            .audit(
                Some(id),
                "account.registered",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        self.send_verification(id, &r.email.address).await?;
        let user = self
            .d
            .db
            .users()
            .find(id)
            .await?
            .ok_or_else(|| AppError::internal("user vanished"))?;
        self.start_session(user, r.device_name, client).await
    }

    /// Creates a user from the command line (`admin create-user`); the email counts as verified.
    pub async fn create_user_admin(
        &self,
        email: Email,
        username: Username,
        display_name: DisplayName,
        password: &str,
        role: Role,
    ) -> AppResult<UserId> {
        if username.is_reserved() {
            return Err(AppError::validation(
                "username",
                "this username is reserved",
            ));
        }
        let password = check_policy("password", password, username.as_str(), &email.normalized)?;
        let hash = self.d.hasher.hash(&password).await?;
        let id = UserId::new();
        let new = NewUser {
            id,
            email: &email.address,
            email_normalized: &email.normalized,
            username: username.as_str(),
            display_name: display_name.as_str(),
            search_name: &display_name.search_key(),
            password_hash: &hash,
            role: role.as_str(),
            email_verified: true,
            now: Timestamp::now(),
        };
        match self.d.db.users().insert(&new).await? {
            Ok(()) => {
                self.d
                    .audit(
                        Some(id),
                        "account.created_by_admin",
                        None,
                        json!({"role": role.as_str()}),
                    )
                    .await;
                Ok(id)
            }
            Err(Taken::Email) => Err(AppError::conflict("email is already registered")),
            Err(Taken::Username) => Err(AppError::conflict("username is taken")),
        }
    }

    /// Login (API.md §12 order: rate limit happens before, in the HTTP layer; then lock →
    /// password → second factor).
    pub async fn login(
        &self,
        id: LoginId,
        password: &str,
        totp_code: Option<&str>,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<TokenPair> {
        let users = self.d.db.users();
        let user = match &id {
            LoginId::Email(e) => users.find_by_email(&e.normalized).await?,
            LoginId::Username(u) => users.find_by_login(None, Some(u.as_str())).await?,
            LoginId::NoSuchAccount => None,
        };
        let now = Timestamp::now();
        let Some(user) = user else {
            // Same work as for a real account: unknown and wrong answer alike.
            self.d.hasher.verify(password, None).await?;
            self.d.metrics.auth_failure("unknown_account");
            return Err(unauthorized());
        };
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            self.d.metrics.auth_failure("locked");
            return Err(AppError::AccountLocked {
                retry_after_seconds: now.seconds_until(until),
            });
        }
        if !self
            .d
            .hasher
            .verify(password, Some(&user.password_hash))
            .await?
        {
            return Err(self
                .count_failure(&user, "bad_password", unauthorized(), client)
                .await);
        }
        if user.banned(now) {
            self.d.metrics.auth_failure("banned");
            return Err(AppError::Banned {
                until: user.banned_until,
            });
        }
        if user.totp_enabled {
            let Some(code) = totp_code.map(str::trim).filter(|c| !c.is_empty()) else {
                return Err(AppError::TotpRequired);
            };
            if !self.check_second_factor(&user, code).await? {
                return Err(self
                    .count_failure(&user, "bad_totp", AppError::TotpRequired, client)
                    .await);
            }
        }
        // Concurrent wrong guesses may have locked the account while this password was being
        // verified: a lock set meanwhile wins over a correct password.
        let now = Timestamp::now();
        if let Some(until) = users.locked_until(user.id).await?.filter(|u| *u > now) {
            self.d.metrics.auth_failure("locked");
            return Err(AppError::AccountLocked {
                retry_after_seconds: now.seconds_until(until),
            });
        }
        if user.failed_login_count != 0 {
            users.clear_failed_logins(user.id).await?;
        }
        self.d.metrics.auth_success.inc();
        self.d
            .audit(
                Some(user.id),
                "login.succeeded",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        let user_id = user.id;
        let pair = self.start_session(user, device_name, client).await?;
        // A ban that committed while this password was being verified ended every session but
        // this new one: end it too (the ban writes the user first, then ends sessions; this
        // writes the session first, then reads the user, so one of the two sees the other).
        if let Some(now_user) = users.find(user_id).await?
            && now_user.banned(Timestamp::now())
        {
            self.d.end_session(pair.session_id, "banned").await?;
            return Err(AppError::Banned {
                until: now_user.banned_until,
            });
        }
        Ok(pair)
    }

    /// Counts a failed attempt atomically; the failure that reaches the threshold locks the
    /// account (audited and mailed once).
    async fn count_failure(
        &self,
        user: &UserRow,
        reason: &'static str,
        err: AppError,
        client: &ClientInfo,
    ) -> AppError {
        self.d.metrics.auth_failure(reason);
        let cfg = &self.d.cfg;
        let now = Timestamp::now();
        let outcome = self
            .d
            .db
            .users()
            .record_failed_login(
                user.id,
                now,
                now.minus(Duration::from_secs(cfg.lockout_window_seconds)),
                cfg.lockout_threshold as i32,
                now.plus(Duration::from_secs(cfg.lockout_duration_seconds)),
            )
            .await;
        self.d
            .audit(
                Some(user.id),
                "login.failed",
                client.ip.as_deref(),
                json!({"reason": reason}),
            )
            .await;
        match outcome {
            Ok(FailureOutcome::Counted(_)) => err,
            Ok(FailureOutcome::LockedNow(until)) => {
                self.d.metrics.auth_lockouts.inc();
                self.d
                    .audit(
                        Some(user.id),
                        "account.locked",
                        client.ip.as_deref(),
                        json!({"until": until.to_rfc3339()}),
                    )
                    .await;
                notify::security(&self.d, user.id, SecurityEvent::AccountLocked { until }).await;
                err
            }
            Ok(FailureOutcome::AlreadyLocked(until)) => AppError::AccountLocked {
                retry_after_seconds: now.seconds_until(until).max(1),
            },
            Err(e) => e,
        }
    }

    /// A TOTP code (each time step usable once) or an unused recovery code.
    async fn check_second_factor(&self, user: &UserRow, code: &str) -> AppResult<bool> {
        let Some(enc) = &user.totp_secret_enc else {
            return Ok(false);
        };
        let secret = self.d.secret_box.open(enc, user.id)?;
        if let Some(step) = totp_matching_step(&secret, code, Timestamp::now())? {
            return self.d.db.users().consume_totp_step(user.id, step).await;
        }
        if code.len() >= 10 {
            return self
                .d
                .db
                .tokens()
                .consume_recovery_code(user.id, &recovery_code_hash(code), Timestamp::now())
                .await;
        }
        Ok(false)
    }

    async fn start_session(
        &self,
        user: UserRow,
        device_name: Option<String>,
        client: &ClientInfo,
    ) -> AppResult<TokenPair> {
        let cfg = &self.d.cfg;
        let now = Timestamp::now();
        let refresh = random_token();
        let session = SessionRow {
            id: SessionId::new(),
            user_id: user.id,
            device_name,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now.plus(Duration::from_secs(cfg.refresh_idle_days * 86_400)),
            absolute_expires_at: now.plus(Duration::from_secs(cfg.refresh_absolute_days * 86_400)),
            revoked_at: None,
        };
        // A sign-in from a device the account never used (another user agent) is announced.
        let (had_sessions, known_device) = self
            .d
            .db
            .sessions()
            .device_known(user.id, client.user_agent.as_deref())
            .await?;
        self.d
            .db
            .sessions()
            .insert(&session, &token_hash(&refresh))
            .await?;
        if had_sessions && !known_device {
            notify::security(&self.d, user.id, SecurityEvent::NewDeviceSignIn).await;
        }
        let evicted = self
            .d
            .db
            .sessions()
            .evict_beyond(user.id, cfg.max_sessions_per_user as i64, now)
            .await?;
        if !evicted.is_empty() {
            self.d.announce_revoked(&evicted).await;
            self.d
                .audit(
                    Some(user.id),
                    "session.evicted",
                    client.ip.as_deref(),
                    json!({"count": evicted.len()}),
                )
                .await;
        }
        let access = self
            .d
            .jwt
            .issue(user.id, session.id, now, cfg.access_token_ttl_seconds)?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: cfg.access_token_ttl_seconds,
            session_id: session.id,
            user,
        })
    }

    /// Rotates a refresh token. A token that was already rotated revokes its session.
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> AppResult<TokenPair> {
        let hash = token_hash(refresh_token);
        let sessions = self.d.db.sessions();
        let sid = match sessions.find_refresh(&hash).await? {
            RefreshLookup::Unknown => return Err(session_expired()),
            RefreshLookup::Rotated(sid) => return Err(self.reuse_detected(sid, client).await),
            RefreshLookup::Current(sid) => sid,
        };
        let now = Timestamp::now();
        let session = sessions.find(sid).await?.ok_or_else(session_expired)?;
        let user = self
            .d
            .db
            .users()
            .find(session.user_id)
            .await?
            .ok_or_else(session_expired)?;
        // A ban ended the session too; the holder of its refresh token learns why (API.md §12).
        if user.banned(now) {
            return Err(AppError::Banned {
                until: user.banned_until,
            });
        }
        if !session.is_active(now) {
            return Err(session_expired());
        }
        let new_refresh = random_token();
        let idle = now.plus(Duration::from_secs(self.d.cfg.refresh_idle_days * 86_400));
        if !sessions
            .rotate_refresh(sid, &hash, &token_hash(&new_refresh), now, idle)
            .await?
        {
            // Lost a race with another use of the same token: that is reuse too.
            return Err(self.reuse_detected(sid, client).await);
        }
        let access = self
            .d
            .jwt
            .issue(user.id, sid, now, self.d.cfg.access_token_ttl_seconds)?;
        Ok(TokenPair {
            access_token: access,
            refresh_token: new_refresh,
            expires_in: self.d.cfg.access_token_ttl_seconds,
            session_id: sid,
            user,
        })
    }

    async fn reuse_detected(&self, sid: SessionId, client: &ClientInfo) -> AppError {
        let user = self
            .d
            .db
            .sessions()
            .find(sid)
            .await
            .ok()
            .flatten()
            .map(|s| s.user_id);
        match self.d.end_session(sid, "refresh_token_reuse").await {
            Ok(_) => {
                self.d
                    .audit(
                        user,
                        "session.refresh_reuse",
                        client.ip.as_deref(),
                        json!({"session_id": sid}),
                    )
                    .await
            }
            Err(e) => return e,
        }
        session_expired()
    }

    /// Establishes the caller from an access token. Never fails open: a session is accepted
    /// from the cache only while the cache is trustworthy, otherwise the database decides.
    pub async fn authenticate(
        &self,
        bearer: &str,
        client_ip: Option<&str>,
    ) -> AppResult<AuthContext> {
        let now = Timestamp::now();
        let claims = self
            .d
            .jwt
            .verify_access(bearer, now)
            .ok_or_else(session_expired)?;
        if let Some(ctx) = self.d.sessions.get(&claims.session_id) {
            return if ctx.user_id == claims.user_id {
                Ok(ctx)
            } else {
                Err(session_expired())
            };
        }
        let found = self
            .d
            .db
            .sessions()
            .find_with_account(claims.session_id)
            .await?
            .filter(|s| s.session.is_active(now) && s.session.user_id == claims.user_id)
            .ok_or_else(session_expired)?;
        if found.banned(now) {
            return Err(session_expired());
        }
        let session = found.session;
        let ctx = AuthContext {
            user_id: session.user_id,
            session_id: session.id,
            role: Role::parse(&found.role).unwrap_or(Role::User),
            email_verified: found.email_verified,
        };
        // Invalidations reach this cache through the bus only when it crosses instances.
        self.d.sessions.put(ctx.session_id, ctx, self.d.cache_ttl());
        if now.millis() - session.last_seen_at.millis() > TOUCH_EVERY.as_millis() as i64 {
            self.d
                .db
                .sessions()
                .touch(session.id, now, client_ip)
                .await?;
        }
        Ok(ctx)
    }

    /// True while the session is live (the database decides).
    pub async fn session_alive(&self, id: SessionId) -> bool {
        let now = Timestamp::now();
        match self.d.db.sessions().find(id).await {
            Ok(s) => s.is_some_and(|s| s.is_active(now)),
            // Unknown is not alive: revocation never fails open.
            Err(_) => false,
        }
    }

    pub async fn logout(&self, ctx: &AuthContext) -> AppResult<()> {
        self.d.end_session(ctx.session_id, "logout").await?;
        self.d
            .audit(Some(ctx.user_id), "logout", None, json!({}))
            .await;
        Ok(())
    }

    pub async fn logout_all(&self, ctx: &AuthContext) -> AppResult<()> {
        self.d
            .end_all_sessions(ctx.user_id, None, "logout_all")
            .await?;
        self.d
            .audit(Some(ctx.user_id), "logout_all", None, json!({}))
            .await;
        Ok(())
    }

    /// The caller's live sessions, most recently used first, one page at a time.
    pub async fn list_sessions(
        &self,
        ctx: &AuthContext,
        before: Option<(Timestamp, SessionId)>,
        limit: i64,
    ) -> AppResult<Vec<SessionRow>> {
        self.d
            .db
            .sessions()
            .list_active(ctx.user_id, Timestamp::now(), before, limit)
            .await
    }

    /// Ends one of the caller's sessions; someone else's id is "not found".
    pub async fn end_own_session(&self, ctx: &AuthContext, id: SessionId) -> AppResult<()> {
        let s = self
            .d
            .db
            .sessions()
            .find(id)
            .await?
            .filter(|s| s.user_id == ctx.user_id && s.revoked_at.is_none());
        if s.is_none() {
            return Err(AppError::NotFound("session".into()));
        }
        self.d.end_session(id, "ended_by_user").await?;
        self.d
            .audit(
                Some(ctx.user_id),
                "session.ended",
                None,
                json!({"session_id": id}),
            )
            .await;
        Ok(())
    }

    async fn send_verification(&self, user: UserId, address: &str) -> AppResult<()> {
        let token = random_token();
        let now = Timestamp::now();
        self.d
            .db
            .tokens()
            .invalidate(user, PURPOSE_VERIFY, now)
            .await?;
        self.d
            .db
            .tokens()
            .insert(
                &token_hash(&token),
                user,
                PURPOSE_VERIFY,
                now,
                now.plus(VERIFY_TTL),
            )
            .await?;
        let link = format!("{}/verify-email?token={token}", self.d.cfg.public_url);
        self.d
            .mail
            .enqueue(address, "Confirm your email address", &format!("Welcome to SecureConnect.\n\nConfirm your email address within 24 hours:\n{link}\n"))
            .await;
        Ok(())
    }

    pub async fn resend_verification(&self, ctx: &AuthContext) -> AppResult<()> {
        let user = self
            .d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(session_expired)?;
        if user.email_verified {
            return Err(AppError::conflict("email is already verified"));
        }
        self.d
            .within_limit(
                "email_resend",
                &format!("resend:{}", user.id),
                self.d.cfg.email_resend_per_hour,
                Duration::from_secs(3600),
            )
            .await?;
        self.send_verification(user.id, &user.email).await
    }

    pub async fn verify_email(&self, token: &str) -> AppResult<()> {
        let now = Timestamp::now();
        let user = self
            .d
            .db
            .tokens()
            .consume(&token_hash(token), PURPOSE_VERIFY, now)
            .await?
            .ok_or_else(|| {
                AppError::validation("token", "invalid, expired or already used token")
            })?;
        self.d.db.users().set_email_verified(user, now).await?;
        self.d.user_changed(user).await;
        self.d
            .audit(Some(user), "email.verified", None, json!({}))
            .await;
        self.d
            .invalidate_cached(&self.active_session_ids(user).await?)
            .await;
        Ok(())
    }

    async fn active_session_ids(&self, user: UserId) -> AppResult<Vec<SessionId>> {
        self.d
            .db
            .sessions()
            .active_ids(user, Timestamp::now())
            .await
    }

    /// Always succeeds from the caller's view (no account enumeration).
    pub async fn request_password_reset(
        &self,
        email: &Email,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let Some(user) = self.d.db.users().find_by_email(&email.normalized).await? else {
            return Ok(());
        };
        // At most 3 reset mails per account per hour: no mailbox flooding.
        let d = self
            .d
            .limiter
            .check(&format!("reset:{}", user.id), 3, Duration::from_secs(3600))
            .await;
        if !d.allowed {
            return Ok(());
        }
        let token = random_token();
        let now = Timestamp::now();
        self.d
            .db
            .tokens()
            .invalidate(user.id, PURPOSE_RESET, now)
            .await?;
        self.d
            .db
            .tokens()
            .insert(
                &token_hash(&token),
                user.id,
                PURPOSE_RESET,
                now,
                now.plus(RESET_TTL),
            )
            .await?;
        let link = format!("{}/reset-password?token={token}", self.d.cfg.public_url);
        self.d
            .mail
            .enqueue(
                &user.email,
                "Reset your SecureConnect password",
                &format!("Someone asked to reset your password. If it was you, open this link within an hour:\n{link}\n\nIf not, ignore this mail; your password is unchanged.\n"),
            )
            .await;
        self.d
            .audit(
                Some(user.id),
                "password.reset_requested",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        Ok(())
    }

    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let hash = token_hash(token);
        let now = Timestamp::now();
        let invalid = || AppError::validation("token", "invalid, expired or already used token");
        let user_id = self
            .d
            .db
            .tokens()
            .peek(&hash, PURPOSE_RESET, now)
            .await?
            .ok_or_else(invalid)?;
        let user = self.d.db.users().find(user_id).await?.ok_or_else(invalid)?;
        let password = check_policy("new_password", new_password, &user.username, &user.email)?;
        let pw_hash = self.d.hasher.hash(&password).await?;
        // Consumed only now, so a refused password leaves the link usable; once, even if raced.
        self.d
            .db
            .tokens()
            .consume(&hash, PURPOSE_RESET, Timestamp::now())
            .await?
            .ok_or_else(invalid)?;
        self.d
            .db
            .users()
            .set_password(user.id, &pw_hash, Timestamp::now())
            .await?;
        self.d
            .end_all_sessions(user.id, None, "password_reset")
            .await?;
        self.d
            .audit(
                Some(user.id),
                "password.reset",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        notify::security(&self.d, user.id, SecurityEvent::PasswordChanged).await;
        Ok(())
    }

    pub async fn totp_setup(&self, ctx: &AuthContext) -> AppResult<TotpSetup> {
        let user = self
            .d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(session_expired)?;
        if user.totp_enabled {
            return Err(AppError::conflict(
                "two-factor authentication is already enabled",
            ));
        }
        let (raw, secret, uri) = crypto::new_totp_secret("SecureConnect", &user.username)?;
        let sealed = self.d.secret_box.seal(&raw, user.id)?;
        if !self
            .d
            .db
            .users()
            .set_pending_totp(user.id, &sealed, Timestamp::now())
            .await?
        {
            return Err(AppError::conflict(
                "two-factor authentication is already enabled",
            ));
        }
        Ok(TotpSetup {
            secret,
            otpauth_uri: uri,
        })
    }

    pub async fn totp_enable(&self, ctx: &AuthContext, code: &str) -> AppResult<Vec<String>> {
        let user = self
            .d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(session_expired)?;
        if user.totp_enabled {
            return Err(AppError::conflict(
                "two-factor authentication is already enabled",
            ));
        }
        let Some(enc) = &user.totp_secret_enc else {
            return Err(AppError::validation(
                "code",
                "call /v1/auth/2fa/setup first",
            ));
        };
        let secret = self.d.secret_box.open(enc, user.id)?;
        let step = totp_matching_step(&secret, code.trim(), Timestamp::now())?
            .ok_or_else(|| AppError::validation("code", "invalid code"))?;
        if !self.d.db.users().consume_totp_step(user.id, step).await? {
            return Err(AppError::validation("code", "code already used"));
        }
        let (codes, hashes) = new_recovery_codes();
        self.d
            .db
            .tokens()
            .replace_recovery_codes(user.id, &hashes)
            .await?;
        self.d
            .db
            .users()
            .set_totp_enabled(user.id, true, Timestamp::now())
            .await?;
        self.d.user_changed(user.id).await;
        self.d
            .audit(Some(user.id), "2fa.enabled", None, json!({}))
            .await;
        notify::security(&self.d, user.id, SecurityEvent::TwoFactorEnabled).await;
        Ok(codes)
    }

    pub async fn totp_disable(
        &self,
        ctx: &AuthContext,
        password: &str,
        code: &str,
    ) -> AppResult<()> {
        let user = self
            .d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(session_expired)?;
        if !user.totp_enabled {
            return Err(AppError::conflict(
                "two-factor authentication is not enabled",
            ));
        }
        self.d
            .check_current_password(&user, password, "password")
            .await?;
        if !self.check_second_factor(&user, code.trim()).await? {
            return Err(AppError::validation("code", "invalid code"));
        }
        self.d
            .db
            .users()
            .set_totp_enabled(user.id, false, Timestamp::now())
            .await?;
        self.d.user_changed(user.id).await;
        self.d
            .db
            .tokens()
            .replace_recovery_codes(user.id, &[])
            .await?;
        self.d
            .audit(Some(user.id), "2fa.disabled", None, json!({}))
            .await;
        notify::security(&self.d, user.id, SecurityEvent::TwoFactorDisabled).await;
        Ok(())
    }
}
