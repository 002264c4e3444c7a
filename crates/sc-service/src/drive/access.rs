//! Who may do what with a file: the owner, and what shares give.

use super::*;

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
        if f.owner_id == ctx.user_id {
            return Ok(Some(Access::Owner));
        }
        let p = self.d.db.shares().permission_of(f.id, ctx.user_id).await?;
        Ok(match p.as_deref() {
            Some("write") => Some(Access::Write),
            Some(_) => Some(Access::Read),
            None => None,
        })
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
