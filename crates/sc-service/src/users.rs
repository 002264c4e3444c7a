//! Accounts as their owners and other users see them: profile, password change, deletion,
//! search and blocking.

use crate::{AuthContext, ClientInfo, Deps, password::check_policy};
use sc_core::{
    AppError, AppResult,
    domain::{AvatarUrl, DisplayName},
    ids::UserId,
    time::Timestamp,
};
use sc_db::users::{ProfileRow, UserRow};
use serde_json::json;
use std::sync::Arc;

/// A profile change: `None` leaves a field alone; `Some(None)` clears the avatar.
pub struct ProfilePatch {
    pub display_name: Option<DisplayName>,
    pub avatar_url: Option<Option<AvatarUrl>>,
}

#[derive(Clone)]
pub struct UserService {
    d: Arc<Deps>,
}

impl UserService {
    pub fn new(d: Arc<Deps>) -> Self {
        Self { d }
    }

    /// The caller's account for display (may come from the short cache).
    pub async fn me(&self, ctx: &AuthContext) -> AppResult<UserRow> {
        self.d
            .user_view(ctx.user_id)
            .await?
            .ok_or_else(AppError::unauthorized)
    }

    /// The caller's account straight from the database, for decisions (password checks).
    async fn fresh(&self, ctx: &AuthContext) -> AppResult<UserRow> {
        self.d
            .db
            .users()
            .find(ctx.user_id)
            .await?
            .ok_or_else(AppError::unauthorized)
    }

    pub async fn update_profile(
        &self,
        ctx: &AuthContext,
        patch: ProfilePatch,
    ) -> AppResult<UserRow> {
        let user = self.fresh(ctx).await?;
        let display = match &patch.display_name {
            Some(d) => d.clone(),
            None => DisplayName::parse("display_name", &user.display_name)?,
        };
        let avatar = match patch.avatar_url {
            Some(a) => a.map(|a| a.as_str().to_string()),
            None => user.avatar_url.clone(),
        };
        self.d
            .db
            .users()
            .update_profile(
                user.id,
                display.as_str(),
                &display.search_key(),
                avatar.as_deref(),
                Timestamp::now(),
            )
            .await?;
        self.d.user_changed(user.id).await;
        self.me(ctx).await
    }

    /// Needs the current password; ends every other session.
    pub async fn change_password(
        &self,
        ctx: &AuthContext,
        current: &str,
        new: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = self.fresh(ctx).await?;
        self.d
            .check_current_password(&user, current, "current_password")
            .await?;
        let password = check_policy("new_password", new, &user.username, &user.email)?;
        let hash = self.d.hasher.hash(&password).await?;
        self.d
            .db
            .users()
            .set_password(user.id, &hash, Timestamp::now())
            .await?;
        self.d
            .end_all_sessions(user.id, Some(ctx.session_id), "password_changed")
            .await?;
        self.d
            .audit(
                Some(user.id),
                "password.changed",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        crate::notify::security(
            &self.d,
            user.id,
            crate::notify::SecurityEvent::PasswordChanged,
        )
        .await;
        Ok(())
    }

    /// Needs the password; removes the account with its sessions, tokens and blocks.
    pub async fn delete_account(
        &self,
        ctx: &AuthContext,
        password: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user = self.fresh(ctx).await?;
        self.d
            .check_current_password(&user, password, "password")
            .await?;
        self.d
            .end_all_sessions(user.id, None, "account_deleted")
            .await?;
        // No group is left without an owner.
        self.d.db.chat().hand_over_groups(user.id, None).await?;
        self.d.db.users().delete(user.id).await?;
        self.d.user_changed(user.id).await;
        self.d
            .audit(
                Some(user.id),
                "account.deleted",
                client.ip.as_deref(),
                json!({}),
            )
            .await;
        Ok(())
    }

    pub async fn profile(&self, id: UserId) -> AppResult<ProfileRow> {
        self.d
            .db
            .users()
            .profile(id)
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))
    }

    /// Prefix search on username and display name; `after` is the last username of the previous page.
    pub async fn search(
        &self,
        q: &str,
        after: Option<&str>,
        limit: i64,
    ) -> AppResult<Vec<ProfileRow>> {
        let q = q.trim().to_lowercase();
        if q.is_empty() || q.chars().count() > 64 || q.chars().any(char::is_control) {
            return Err(AppError::validation(
                "q",
                "search text must be 1-64 characters",
            ));
        }
        self.d.db.users().search(&q, after, limit).await
    }

    pub async fn block(&self, ctx: &AuthContext, target: UserId) -> AppResult<()> {
        if target == ctx.user_id {
            return Err(AppError::validation("id", "you cannot block yourself"));
        }
        self.profile(target).await?;
        self.d
            .db
            .blocks()
            .block(ctx.user_id, target, Timestamp::now())
            .await
    }

    pub async fn unblock(&self, ctx: &AuthContext, target: UserId) -> AppResult<()> {
        self.d.db.blocks().unblock(ctx.user_id, target).await
    }

    pub async fn blocked(
        &self,
        ctx: &AuthContext,
        before: Option<(Timestamp, UserId)>,
        limit: i64,
    ) -> AppResult<Vec<(ProfileRow, Timestamp)>> {
        self.d.db.blocks().list(ctx.user_id, before, limit).await
    }
}
