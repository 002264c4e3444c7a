//! Shares to users and conversations, and what is shared with the caller.

use super::*;

impl DriveService {
    /// Shares a file or folder with a user or with a conversation's members (owner only). A
    /// second share to the same grantee changes its permission. A new user share is audited and
    /// notified (`file.shared`); every share is audited.
    pub async fn share(
        &self,
        ctx: &AuthContext,
        id: FileId,
        grantee: Grantee,
        permission: &str,
    ) -> AppResult<(ShareView, bool)> {
        if !matches!(permission, "read" | "write") {
            return Err(AppError::validation("permission", "read or write"));
        }
        let file = self.file_for(ctx, id, Access::Owner).await?;
        if file.status != "ready" {
            return Err(AppError::conflict("the file's upload is not complete"));
        }
        match grantee {
            Grantee::User(u) if u == ctx.user_id => {
                return Err(AppError::validation("user_id", "you own this file"));
            }
            Grantee::User(u) => {
                if self.d.db.users().profile(u).await?.is_none() {
                    return Err(AppError::validation("user_id", "no such user"));
                }
            }
            Grantee::Conversation(c) => {
                if self.d.db.chat().role_of(c, ctx.user_id).await?.is_none() {
                    return Err(AppError::NotFound("conversation".into()));
                }
            }
        }
        let now = Timestamp::now();
        let (row, is_new) = self
            .d
            .db
            .shares()
            .upsert(id, grantee, permission, now)
            .await?;
        self.d
            .audit(
                Some(ctx.user_id),
                "file.shared",
                None,
                serde_json::json!({"file_id": id, "share_id": row.id, "user_id": row.user_id,
                    "conversation_id": row.conversation_id, "permission": permission}),
            )
            .await;
        if let (true, Grantee::User(u)) = (is_new, grantee) {
            self.notify_shared(u, id, ctx.user_id, permission, row.id)
                .await;
        }
        Ok((row.into(), is_new))
    }

    /// The `file.shared` notification of a new user share (its event, push and mail follow
    /// from the dispatcher). Failing to notify never undoes the share.
    pub(super) async fn notify_shared(
        &self,
        to: sc_core::ids::UserId,
        file: FileId,
        owner: sc_core::ids::UserId,
        permission: &str,
        share: impl std::fmt::Display,
    ) {
        let data =
            serde_json::json!({"file_id": file, "owner_id": owner, "permission": permission});
        crate::notify::record(&self.d, to, "file.shared", share.to_string(), &data).await;
    }

    /// A file's shares (owner only), oldest first.
    pub async fn shares(
        &self,
        ctx: &AuthContext,
        id: FileId,
        after: Option<(Timestamp, ShareId)>,
        limit: i64,
    ) -> AppResult<Vec<ShareView>> {
        self.file_for(ctx, id, Access::Owner).await?;
        let rows = self.d.db.shares().list(id, after, limit).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes a share (owner only); the grantee's access ends at once.
    pub async fn unshare(&self, ctx: &AuthContext, id: FileId, share: ShareId) -> AppResult<()> {
        self.file_for(ctx, id, Access::Owner).await?;
        if !self.d.db.shares().delete(id, share).await? {
            return Err(AppError::NotFound("share".into()));
        }
        Ok(())
    }

    /// Files and folders others shared with the caller or their conversations, most recently
    /// shared first, with the time of that share (the page's keyset).
    pub async fn shared_with_me(
        &self,
        ctx: &AuthContext,
        before: Option<(Timestamp, FileId)>,
        limit: i64,
    ) -> AppResult<Vec<(FileView, Timestamp)>> {
        let rows = self
            .d
            .db
            .shares()
            .shared_with(ctx.user_id, before, limit)
            .await?;
        Ok(rows.into_iter().map(|(f, at)| (f.into(), at)).collect())
    }
}
