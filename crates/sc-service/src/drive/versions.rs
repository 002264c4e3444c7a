//! A file's versions: new uploads, history, restore and the per-file limit.

use super::*;

impl DriveService {
    /// Keeps at most `max_versions_per_file` versions (0: all), dropping the oldest.
    pub(super) async fn prune(&self, id: FileId) -> AppResult<()> {
        let keep = self.d.cfg.max_versions_per_file;
        if keep > 0 {
            self.d
                .db
                .drive()
                .prune_versions(id, i64::from(keep), Timestamp::now())
                .await?;
        }
        Ok(())
    }

    pub(super) fn version_conflict(outcome: VersionReserved, requested: i64) -> AppResult<()> {
        match outcome {
            VersionReserved::Ok => Ok(()),
            VersionReserved::OverQuota { used, quota } => Err(AppError::QuotaExceeded {
                used: used.max(0) as u64,
                quota: quota.max(0) as u64,
                requested: requested.max(0) as u64,
            }),
            VersionReserved::Busy => Err(AppError::conflict(
                "an upload of this file is already in progress",
            )),
        }
    }

    /// A ready file (not a folder) the caller may write: their own (shares come later).
    pub(super) async fn writable_file(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileRow> {
        let f = self.file_for(ctx, id, Access::Write).await?;
        if f.is_folder {
            return Err(AppError::validation("id", "folders have no versions"));
        }
        if f.status != "ready" {
            return Err(AppError::conflict(
                "the file's first upload is not complete",
            ));
        }
        Ok(f)
    }

    /// Starts the upload of a new version: answered like an upload init, for the same file;
    /// `complete` makes it current. The type may change within what the name's extension fits.
    pub async fn init_version(
        &self,
        ctx: &AuthContext,
        id: FileId,
        size: i64,
        content_type: &str,
        sha256: Option<&str>,
    ) -> AppResult<UploadTicket> {
        let sha256 = declared_sha256(sha256)?;
        let file = self.writable_file(ctx, id).await?;
        let name = FileName::parse("name", &file.name)?;
        let media = self.check_declared(&name, size, content_type)?;
        let now = Timestamp::now();
        let ttl = i64::try_from(self.d.cfg.upload_reservation_ttl_seconds).unwrap_or(900);
        let expires_at = Timestamp(now.millis() + ttl * 1000);
        let key = BlobKey::new_random();
        let outcome = self
            .d
            .db
            .drive()
            .begin_version(&NewVersion {
                file: id,
                owner: file.owner_id,
                size,
                content_type: media.as_str(),
                blob_key: key.as_str(),
                sha256,
                expires_at,
                now,
                default_quota: self.default_quota(),
            })
            .await?;
        Self::version_conflict(outcome, size)?;
        let t = self
            .blobs
            .upload_target(&key, size as u64, media.as_str(), sha256, expires_at);
        Ok(UploadTicket {
            file_id: id,
            upload_url: t.url,
            method: t.method,
            headers: t.headers,
            expires_at: t.expires_at,
        })
    }

    /// The file's ready versions, newest first.
    pub async fn versions(
        &self,
        ctx: &AuthContext,
        id: FileId,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<VersionView>> {
        let f = self.file_for(ctx, id, Access::Read).await?;
        if f.is_folder {
            return Err(AppError::validation("id", "folders have no versions"));
        }
        let rows = self.d.db.drive().versions(id, before, limit).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Makes a new current version with version `n`'s bytes (a copy of its object, counted
    /// against the quota like any version).
    pub async fn restore(&self, ctx: &AuthContext, id: FileId, n: i64) -> AppResult<FileView> {
        let file = self.writable_file(ctx, id).await?;
        let repo = self.d.db.drive();
        let old = repo
            .version(id, n)
            .await?
            .ok_or_else(|| AppError::NotFound("version".into()))?;
        let from = BlobKey::parse(&old.blob_key)
            .ok_or_else(|| AppError::internal("stored blob key is malformed"))?;
        let to = BlobKey::new_random();
        self.blobs.copy(&from, &to).await?;
        let now = Timestamp::now();
        let outcome = repo
            .add_ready_version(
                &NewVersion {
                    file: id,
                    owner: file.owner_id,
                    size: old.size,
                    content_type: &old.content_type,
                    blob_key: to.as_str(),
                    sha256: None,
                    expires_at: now,
                    now,
                    default_quota: self.default_quota(),
                },
                old.sha256.as_deref().unwrap_or_default(),
            )
            .await;
        if !matches!(outcome, Ok(VersionReserved::Ok)) {
            // The copy belongs to nothing: delete it now (the cleanup job does not know of it).
            self.blobs.delete(&to).await?;
        }
        Self::version_conflict(outcome?, old.size)?;
        self.prune(id).await?;
        self.get(ctx, id).await
    }
}
