//! The drive's rules: uploads with atomic quota and verified types, files and folders, and the
//! cleanup of abandoned uploads and deleted objects. Bytes never pass through here: clients PUT
//! and GET signed URLs of the blob store.

pub mod sniff;

use crate::{AuthContext, Deps};
use sc_core::{
    AppError, AppResult,
    files::{self, FileName, MediaType},
    ids::{FileId, NotificationId, ShareId},
    time::Timestamp,
};
use sc_db::{
    drive::{FileRow, NewUpload, NewVersion, Reserved, VersionReserved, VersionRow},
    drive_shares::{Grantee, ShareRow},
    notifications::NewNotification,
};
use sc_infra::blobs::{BlobKey, BlobStore, UploadTarget};
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

/// Bytes of an object read to check its type.
const SNIFF_BYTES: usize = 8 * 1024;
/// How often, and past what age, temporary files of interrupted writes are removed.
const TEMP_SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Rows handled per cleanup statement and per deletion transaction.
const BATCH: i64 = 100;

/// The File object of API.md §7.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileView {
    #[schema(value_type = uuid::Uuid)]
    pub id: FileId,
    pub name: String,
    pub size: i64,
    pub content_type: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<FileId>,
    pub is_folder: bool,
    /// "pending" until the upload completes, then "ready".
    pub status: String,
    pub version: i64,
    pub sha256: Option<String>,
    pub encrypted: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<FileRow> for FileView {
    fn from(f: FileRow) -> Self {
        Self {
            id: f.id,
            name: f.name,
            size: f.size,
            content_type: f.content_type,
            parent_id: f.parent_id,
            is_folder: f.is_folder,
            status: f.status,
            version: f.version,
            sha256: f.sha256,
            encrypted: f.encrypted,
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

/// What `POST /v1/files/uploads` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicket {
    #[schema(value_type = uuid::Uuid)]
    pub file_id: FileId,
    pub upload_url: String,
    /// Always "PUT".
    pub method: &'static str,
    /// Headers the PUT must carry.
    pub headers: std::collections::BTreeMap<String, String>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// One entry of a file's version history.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i64,
    pub size: i64,
    pub sha256: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<VersionRow> for VersionView {
    fn from(v: VersionRow) -> Self {
        Self {
            version: v.version,
            size: v.size,
            sha256: v.sha256,
            created_at: v.created_at,
        }
    }
}

/// A share of a file or folder (API.md §7).
#[derive(Debug, Serialize, ToSchema)]
pub struct ShareView {
    #[schema(value_type = uuid::Uuid)]
    pub id: ShareId,
    #[schema(value_type = uuid::Uuid)]
    pub file_id: FileId,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<sc_core::ids::UserId>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub conversation_id: Option<sc_core::ids::ConversationId>,
    /// "read" or "write"
    pub permission: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<ShareRow> for ShareView {
    fn from(s: ShareRow) -> Self {
        Self {
            id: s.id,
            file_id: s.file_id,
            user_id: s.user_id,
            conversation_id: s.conversation_id,
            permission: s.permission,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadLink {
    pub download_url: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub used: i64,
    pub reserved: i64,
    pub quota: i64,
    pub available: i64,
}

pub struct NewUploadRequest {
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub parent_id: Option<FileId>,
    pub encrypted: bool,
}

/// A rename and/or move; `parent_id: Some(None)` moves to the root.
pub struct FileChange {
    pub name: Option<String>,
    pub parent_id: Option<Option<FileId>>,
}

#[derive(Clone)]
pub struct DriveService {
    d: Arc<Deps>,
    blobs: Arc<BlobStore>,
}

fn not_found() -> AppError {
    AppError::NotFound("file".into())
}

/// What a caller may do with a file, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Access {
    /// See, list, download (a read share).
    Read,
    /// Also rename, move within the owner's tree, upload and restore versions (a write share).
    Write,
    /// Also delete and share.
    Owner,
}

impl DriveService {
    pub fn new(d: Arc<Deps>, blobs: Arc<BlobStore>) -> Self {
        Self { d, blobs }
    }

    fn default_quota(&self) -> i64 {
        i64::try_from(self.d.cfg.default_quota_bytes).unwrap_or(i64::MAX)
    }

    /// Checks a declared upload against the limits, in the order API.md §12 gives: size limit
    /// (413) before type (415), both before quota (507).
    fn check_declared(
        &self,
        name: &FileName,
        size: i64,
        content_type: &str,
    ) -> AppResult<MediaType> {
        let max = i64::try_from(self.d.cfg.max_file_size_bytes).unwrap_or(i64::MAX);
        if size < 0 {
            return Err(AppError::validation("size", "size must not be negative"));
        }
        if size > max {
            return Err(AppError::PayloadTooLarge(format!(
                "files are limited to {max} bytes"
            )));
        }
        let media = MediaType::parse("content_type", content_type)?;
        let ext = name.extension();
        let allowed = &self.d.cfg.allowed_file_types.0;
        let listed = if allowed.is_empty() {
            files::DEFAULT_ALLOWED_TYPES.contains(&media.as_str())
        } else {
            allowed
                .iter()
                .any(|t| t.eq_ignore_ascii_case(media.as_str()))
        };
        let refused = files::is_always_refused_type(&media)
            || ext
                .as_deref()
                .is_some_and(files::is_always_refused_extension);
        if !listed || refused {
            return Err(AppError::UnsupportedMediaType(format!(
                "files of type {} are not accepted",
                media.as_str()
            )));
        }
        if !files::extension_matches(&media, ext.as_deref()) {
            return Err(AppError::UnsupportedMediaType(
                "the file name's extension does not match its content_type".into(),
            ));
        }
        Ok(media)
    }

    /// A folder the caller may put new files in: their own.
    async fn own_folder(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileRow> {
        self.folder_for(ctx, id, Access::Owner).await
    }

    async fn folder_for(&self, ctx: &AuthContext, id: FileId, need: Access) -> AppResult<FileRow> {
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
    async fn access(&self, ctx: &AuthContext, f: &FileRow) -> AppResult<Option<Access>> {
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
    async fn file_for(&self, ctx: &AuthContext, id: FileId, need: Access) -> AppResult<FileRow> {
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

    pub async fn init_upload(
        &self,
        ctx: &AuthContext,
        req: NewUploadRequest,
    ) -> AppResult<UploadTicket> {
        let name = FileName::parse("name", &req.name)?;
        let media = self.check_declared(&name, req.size, &req.content_type)?;
        if let Some(parent) = req.parent_id {
            self.own_folder(ctx, parent).await?;
        }
        let now = Timestamp::now();
        let ttl = i64::try_from(self.d.cfg.upload_reservation_ttl_seconds).unwrap_or(900);
        let expires_at = Timestamp(now.millis() + ttl * 1000);
        let file = FileId::new();
        let key = BlobKey::new_random();
        let outcome = self
            .d
            .db
            .drive()
            .begin_upload(&NewUpload {
                file,
                owner: ctx.user_id,
                parent: req.parent_id,
                name: name.as_str(),
                size: req.size,
                content_type: media.as_str(),
                encrypted: req.encrypted,
                blob_key: key.as_str(),
                expires_at,
                now,
                default_quota: self.default_quota(),
            })
            .await?;
        match outcome {
            Reserved::Ok => {}
            Reserved::OverQuota { used, quota } => {
                return Err(AppError::QuotaExceeded {
                    used: used.max(0) as u64,
                    quota: quota.max(0) as u64,
                    requested: req.size as u64,
                });
            }
            Reserved::NameTaken => {
                return Err(AppError::conflict(
                    "a file or folder of that name is already there",
                ));
            }
        }
        let UploadTarget {
            url,
            method,
            headers,
            expires_at,
        } = self
            .blobs
            .upload_target(&key, req.size as u64, media.as_str(), expires_at);
        Ok(UploadTicket {
            file_id: file,
            upload_url: url,
            method,
            headers,
            expires_at,
        })
    }

    /// Checks the uploaded object (present, exactly the declared size, magic bytes of the
    /// declared type unless client-side encrypted), records its sha256 and makes it current.
    /// A wrong size is 400 and a wrong type 415; both give the reservation back, and a file
    /// whose first upload failed is gone.
    pub async fn complete(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileView> {
        let file = self.file_for(ctx, id, Access::Write).await?;
        let repo = self.d.db.drive();
        let Some(pending) = repo.pending_version(id).await? else {
            return Err(AppError::conflict("no upload is pending for this file"));
        };
        let key = BlobKey::parse(&pending.blob_key)
            .ok_or_else(|| AppError::internal("stored blob key is malformed"))?;
        let now = Timestamp::now();
        let size = self.blobs.size_of(&key).await?;
        if size != Some(pending.size as u64) {
            repo.abandon_version(id, pending.version, now).await?;
            return Err(AppError::validation(
                "size",
                match size {
                    None => "nothing was uploaded".to_string(),
                    Some(n) => format!("{n} bytes were uploaded, {} declared", pending.size),
                },
            ));
        }
        if !file.encrypted {
            let media = MediaType::parse("content_type", &pending.content_type)?;
            let head = self.blobs.read_head(&key, SNIFF_BYTES).await?;
            if !sniff::matches_declared(&media, &head) {
                repo.abandon_version(id, pending.version, now).await?;
                return Err(AppError::UnsupportedMediaType(
                    "the file's content does not match its declared type".into(),
                ));
            }
        }
        let sha256 = self.blobs.sha256_hex(&key).await?;
        if !repo
            .complete_version(id, pending.version, &sha256, now)
            .await?
        {
            return Err(AppError::conflict(
                "the upload expired or was completed already",
            ));
        }
        self.prune(id).await?;
        self.get(ctx, id).await
    }

    /// Keeps at most `max_versions_per_file` versions (0: all), dropping the oldest.
    async fn prune(&self, id: FileId) -> AppResult<()> {
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

    fn version_conflict(outcome: VersionReserved, requested: i64) -> AppResult<()> {
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
    async fn writable_file(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileRow> {
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
    ) -> AppResult<UploadTicket> {
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
                expires_at,
                now,
                default_quota: self.default_quota(),
            })
            .await?;
        Self::version_conflict(outcome, size)?;
        let t = self
            .blobs
            .upload_target(&key, size as u64, media.as_str(), expires_at);
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

    pub async fn get(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileView> {
        Ok(self.file_for(ctx, id, Access::Read).await?.into())
    }

    /// A folder's entries (the root without `parent`), or with `query` the caller's files whose
    /// name contains it; by name, one page at a time.
    pub async fn list(
        &self,
        ctx: &AuthContext,
        parent: Option<FileId>,
        query: Option<&str>,
        after: Option<(String, FileId)>,
        limit: i64,
    ) -> AppResult<Vec<FileView>> {
        let repo = self.d.db.drive();
        let rows = match query {
            Some(q) => {
                let q = q.trim();
                if q.is_empty() || q.chars().count() > 255 || q.chars().any(char::is_control) {
                    return Err(AppError::validation("q", "q must be 1-255 characters"));
                }
                repo.search(ctx.user_id, q, after, limit).await?
            }
            None => {
                if let Some(p) = parent {
                    self.folder_for(ctx, p, Access::Read).await?;
                }
                repo.children(ctx.user_id, parent, after, limit).await?
            }
        };
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn create_folder(
        &self,
        ctx: &AuthContext,
        name: &str,
        parent: Option<FileId>,
    ) -> AppResult<FileView> {
        let name = FileName::parse("name", name)?;
        if let Some(p) = parent {
            self.own_folder(ctx, p).await?;
        }
        let id = FileId::new();
        if !self
            .d
            .db
            .drive()
            .create_folder(id, ctx.user_id, parent, name.as_str(), Timestamp::now())
            .await?
        {
            return Err(AppError::conflict(
                "a file or folder of that name is already there",
            ));
        }
        self.get(ctx, id).await
    }

    /// Renames and/or moves within the caller's tree; a folder never moves into itself or
    /// below itself.
    pub async fn update(
        &self,
        ctx: &AuthContext,
        id: FileId,
        change: FileChange,
    ) -> AppResult<FileView> {
        let file = self.file_for(ctx, id, Access::Write).await?;
        let name = match &change.name {
            Some(n) => FileName::parse("name", n)?.as_str().to_string(),
            None => file.name.clone(),
        };
        if !file.is_folder && change.name.is_some() {
            let ext = FileName::parse("name", &name)?.extension();
            let media = MediaType::parse(
                "content_type",
                file.content_type.as_deref().unwrap_or_default(),
            )?;
            if !files::extension_matches(&media, ext.as_deref()) {
                return Err(AppError::validation(
                    "name",
                    "the new name's extension does not match the file's type",
                ));
            }
        }
        let parent = match change.parent_id {
            None => file.parent_id,
            // Grantees move only within the owner's tree, into folders they may write.
            Some(None) if file.owner_id != ctx.user_id => {
                return Err(AppError::Forbidden(
                    "only the owner moves a file to the root".into(),
                ));
            }
            Some(None) => None,
            Some(Some(p)) => {
                let target = self.folder_for(ctx, p, Access::Write).await?;
                if target.owner_id != file.owner_id {
                    return Err(AppError::validation(
                        "parent_id",
                        "a file moves only within its owner's folders",
                    ));
                }
                if self.d.db.drive().ancestry(p).await?.contains(&id) {
                    return Err(AppError::validation(
                        "parent_id",
                        "a folder cannot move into itself",
                    ));
                }
                Some(p)
            }
        };
        if !self
            .d
            .db
            .drive()
            .rename_move(id, &name, parent, Timestamp::now())
            .await?
        {
            return Err(AppError::conflict(
                "a file or folder of that name is already there",
            ));
        }
        self.get(ctx, id).await
    }

    /// Deletes a file with every version, or a folder with everything below it (in batches,
    /// children first). Quota is released and the objects are queued for deletion.
    pub async fn delete(&self, ctx: &AuthContext, id: FileId) -> AppResult<()> {
        let file = self.file_for(ctx, id, Access::Owner).await?;
        let repo = self.d.db.drive();
        let ids = if file.is_folder {
            repo.subtree_deepest_first(id).await?
        } else {
            vec![id]
        };
        for chunk in ids.chunks(BATCH as usize) {
            repo.delete_files(chunk, Timestamp::now()).await?;
        }
        Ok(())
    }

    /// A short-lived signed URL for the current version's bytes.
    pub async fn download(&self, ctx: &AuthContext, id: FileId) -> AppResult<DownloadLink> {
        let file = self.file_for(ctx, id, Access::Read).await?;
        if file.is_folder || file.status != "ready" {
            return Err(AppError::conflict("only a ready file can be downloaded"));
        }
        let key = self
            .d
            .db
            .drive()
            .blob_key_of(id, file.version)
            .await?
            .and_then(|k| BlobKey::parse(&k))
            .ok_or_else(not_found)?;
        // Client-side encrypted bytes are opaque: never labelled as something a browser renders.
        let content_type = if file.encrypted {
            "application/octet-stream".to_string()
        } else {
            file.content_type
                .unwrap_or_else(|| "application/octet-stream".into())
        };
        let ttl = i64::try_from(self.d.cfg.download_url_ttl_seconds).unwrap_or(300);
        let expires_at = Timestamp(Timestamp::now().millis() + ttl * 1000);
        let download_url = self.blobs.download_url(
            &key,
            file.size as u64,
            &file.name,
            &content_type,
            expires_at,
        );
        Ok(DownloadLink {
            download_url,
            expires_at,
        })
    }

    pub async fn quota(&self, ctx: &AuthContext) -> AppResult<QuotaView> {
        let a = self.d.db.drive().account(ctx.user_id).await?;
        let quota = a.quota.unwrap_or_else(|| self.default_quota());
        Ok(QuotaView {
            used: a.used,
            reserved: a.reserved,
            quota,
            available: (quota - a.used - a.reserved).max(0),
        })
    }

    /// The durable cleanup job: every instance runs it (each step is a conditional write, so
    /// two instances never release a reservation twice).
    pub fn spawn_cleanup(&self, stop: CancellationToken) {
        let svc = self.clone();
        let every = Duration::from_secs(self.d.cfg.drive_cleanup_interval_seconds.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            // Temporary files of writes a crash cut short: a walk of the store, so hourly.
            let mut sweep = tokio::time::interval(TEMP_SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = sweep.tick() => match svc.blobs.sweep_temp(TEMP_SWEEP_EVERY).await {
                        Ok(0) => {}
                        Ok(removed) => tracing::info!(removed, "drive cleanup: temporary files"),
                        Err(e) => tracing::warn!(error = %e, "drive temporary-file sweep failed"),
                    },
                    _ = tick.tick() => match svc.cleanup_once().await {
                        Ok((0, 0)) => {}
                        Ok((abandoned, deleted)) => tracing::info!(abandoned, deleted, "drive cleanup"),
                        Err(e) => tracing::warn!(error = %e, "drive cleanup failed"),
                    },
                }
            }
        });
    }

    /// One pass of the cleanup job: abandons uploads whose reservation lapsed, then deletes
    /// queued objects. Returns (uploads abandoned, objects deleted).
    pub async fn cleanup_once(&self) -> AppResult<(usize, usize)> {
        let repo = self.d.db.drive();
        let now = Timestamp::now();
        // Collected one interval after the reservation lapsed, so a PUT that started just
        // before its URL expired can finish first.
        let grace = Duration::from_secs(self.d.cfg.drive_cleanup_interval_seconds);
        let before = Timestamp(now.millis() - grace.as_millis() as i64);
        let mut abandoned = 0;
        for (file, version) in repo.expired_uploads(before, BATCH).await? {
            if repo.abandon_version(file, version, now).await? {
                abandoned += 1;
            }
        }
        let mut deleted = 0;
        for raw in repo.queued_blob_deletions(BATCH).await? {
            if let Some(key) = BlobKey::parse(&raw) {
                self.blobs.delete(&key).await?;
            }
            repo.blob_deleted(&raw).await?;
            deleted += 1;
        }
        Ok((abandoned, deleted))
    }

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
            self.notify_shared(u, id, ctx.user_id, permission, now)
                .await;
        }
        Ok((row.into(), is_new))
    }

    /// The `file.shared` notification of a new user share, and its realtime event. Failing to
    /// notify never undoes the share.
    async fn notify_shared(
        &self,
        to: sc_core::ids::UserId,
        file: FileId,
        owner: sc_core::ids::UserId,
        permission: &str,
        now: Timestamp,
    ) {
        let id = NotificationId::new();
        let data =
            serde_json::json!({"file_id": file, "owner_id": owner, "permission": permission});
        let text = data.to_string();
        let row = NewNotification {
            id,
            user_id: to,
            kind: "file.shared",
            data: &text,
            now,
        };
        match self.d.db.notifications().complete_jobs(&[], &[row]).await {
            Ok(()) => {
                let event = serde_json::json!({"id": id, "kind": "file.shared", "data": data,
                    "read_at": null, "created_at": now});
                self.d.emit(vec![to], "notification", &event).await;
            }
            Err(e) => tracing::warn!(error = %e, "could not record the file.shared notification"),
        }
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
