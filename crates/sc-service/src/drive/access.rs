//! Who may do what with a file: the owner, and what shares give.

use super::*;
use sc_core::ids::UserId;

/// What a caller may do with a file, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Access {
    /// See, list, download (a read share).
    Read,
    /// Also rename, move within the owner's tree, upload and restore versions (a write share).
    Write,
    /// Also delete and share.
    Owner,
}

/// What `user` may do with `f`: owner; what shares of it (or of a folder above it) to them or
/// their conversations give; read if it is attached to a standing message of a conversation
/// they are a member of now. None: they may not know it exists.
pub(crate) async fn access_of(d: &Deps, user: UserId, f: &FileRow) -> AppResult<Option<Access>> {
    if f.owner_id == user {
        return Ok(Some(Access::Owner));
    }
    let shares = d.db.shares();
    Ok(match shares.permission_of(f.id, user).await?.as_deref() {
        Some("write") => Some(Access::Write),
        Some(_) => Some(Access::Read),
        None if !f.is_folder && shares.attached_for(f.id, user).await? => Some(Access::Read),
        None => None,
    })
}

/// Checks that `user` may attach `files` to a message: each a ready file (not a folder) they
/// can read. A file they cannot read, or that does not exist, is 403 alike, so attaching never
/// reveals whether someone else's file exists.
pub(crate) async fn check_attachable(d: &Deps, user: UserId, files: &[FileId]) -> AppResult<()> {
    for id in files {
        let f = d.db.drive().file(*id).await?;
        let readable = match &f {
            Some(f) => access_of(d, user, f).await?.is_some(),
            None => false,
        };
        let Some(f) = f.filter(|_| readable) else {
            return Err(AppError::Forbidden(format!(
                "you cannot read the file {id} you attach"
            )));
        };
        if f.is_folder || f.status != "ready" {
            return Err(AppError::validation(
                "attachments",
                "only files whose upload is complete can be attached",
            ));
        }
    }
    Ok(())
}

impl DriveService {
    /// A folder the caller may put new files in: their own.
    pub(super) async fn own_folder(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileRow> {
        self.folder_for(ctx, id, Access::Owner).await
    }

    pub(super) async fn folder_for(
        &self,
        ctx: &AuthContext,
        id: FileId,
        need: Access,
    ) -> AppResult<FileRow> {
        let f = self.file_for(ctx, id, need).await.map_err(|e| match e {
            AppError::NotFound(_) => AppError::NotFound("folder".into()),
            e => e,
        })?;
        if !f.is_folder {
            return Err(AppError::validation("parent_id", "not a folder"));
        }
        Ok(f)
    }

    /// What the caller may do with a file: owner, or what shares of it (or of a folder above
    /// it) to them or their conversations give. None: they may not know it exists.
    pub(super) async fn access(&self, ctx: &AuthContext, f: &FileRow) -> AppResult<Option<Access>> {
        access_of(&self.d, ctx.user_id, f).await
    }

    /// The file if the caller holds at least `need`: 404 for someone it is not shared with (its
    /// existence does not leak), 403 for a grantee asking for more than the share gives.
    pub(super) async fn file_for(
        &self,
        ctx: &AuthContext,
        id: FileId,
        need: Access,
    ) -> AppResult<FileRow> {
        let f = self.d.db.drive().file(id).await?.ok_or_else(not_found)?;
        match self.access(ctx, &f).await? {
            None => Err(not_found()),
            Some(has) if has < need => Err(AppError::Forbidden(match need {
                Access::Owner => "only the owner may do this".into(),
                _ => "the share does not allow changes".into(),
            })),
            Some(_) => Ok(f),
        }
    }
}
