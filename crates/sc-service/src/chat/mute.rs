//! Muting a conversation: the member gets no `message` notifications, pushes or mails for it
//! until the mute ends; mentions still notify (API.md §12).

use super::{ChatService, ConversationView, not_found};
use crate::AuthContext;
use sc_core::{AppError, AppResult, ids::ConversationId, time::Timestamp};
use std::time::Duration;

/// What "forever" means for a mute without an end: far beyond the year the contract asks for.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl ChatService {
    /// Mutes the conversation for the caller until `until` (RFC 3339; forever without one).
    /// Membership first: a stranger learns nothing from a bad `until` (404, API.md §12).
    pub async fn mute(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        until: Option<&str>,
    ) -> AppResult<ConversationView> {
        self.membership(ctx, id).await?;
        let now = Timestamp::now();
        let until = match until.map(Timestamp::parse_rfc3339) {
            Some(None) => return Err(AppError::validation("until", "an RFC 3339 time")),
            Some(Some(t)) if t <= now => {
                return Err(AppError::validation("until", "must be in the future"));
            }
            Some(Some(t)) => t,
            None => now.plus(FOREVER),
        };
        self.set_mute(ctx, id, Some(until)).await
    }

    /// Ends the caller's mute of the conversation.
    pub async fn unmute(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
    ) -> AppResult<ConversationView> {
        self.set_mute(ctx, id, None).await
    }

    async fn set_mute(
        &self,
        ctx: &AuthContext,
        id: ConversationId,
        until: Option<Timestamp>,
    ) -> AppResult<ConversationView> {
        if !self.d.db.chat().set_mute(id, ctx.user_id, until).await? {
            return Err(not_found());
        }
        Ok(self.membership(ctx, id).await?.into())
    }
}
