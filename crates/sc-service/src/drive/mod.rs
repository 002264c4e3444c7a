//! The drive's rules: uploads with atomic quota and verified types, files and folders, and the
//! cleanup of abandoned uploads and deleted objects. Bytes never pass through here: clients PUT
//! and GET signed URLs of the blob store.

pub(crate) mod access;
mod cleanup;
mod generated;
mod links;
mod shares;
pub mod sniff;
mod versions;
mod views;

use access::Access;
pub use links::{LinkCreated, LinkView, NewLinkRequest, PublicLinkView};
pub use views::*;

use crate::{AuthContext, Deps};
use sc_core::{
    AppError, AppResult,
    files::{self, FileName, MediaType},
    ids::{FileId, ShareId},
    time::Timestamp,
};
use sc_db::{
    drive::{FileRow, NewUpload, NewVersion, Reserved, VersionReserved, VersionRow},
    drive_shares::{Grantee, ShareRow},
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

#[derive(Clone)]
pub struct DriveService {
    d: Arc<Deps>,
    blobs: Arc<BlobStore>,
}

fn not_found() -> AppError {
    AppError::NotFound("file".into())
}

/// A declared SHA-256: exactly 64 lowercase hex digits (400 `sha256` otherwise).
fn declared_sha256(sha256: Option<&str>) -> AppResult<Option<&str>> {
    match sha256 {
        Some(h) if h.len() != 64 || !h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Err(AppError::validation(
                "sha256",
                "sha256 must be 64 lowercase hexadecimal digits",
            ))
        }
        other => Ok(other),
    }
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

    pub async fn init_upload(
        &self,
        ctx: &AuthContext,
        req: NewUploadRequest,
    ) -> AppResult<UploadTicket> {
        let name = FileName::parse("name", &req.name)?;
        let sha256 = declared_sha256(req.sha256.as_deref())?;
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
                sha256,
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
            .upload_target(&key, req.size as u64, media.as_str(), sha256, expires_at);
        Ok(UploadTicket {
            file_id: file,
            upload_url: url,
            method,
            headers,
            expires_at,
        })
    }

    /// Checks the uploaded object (present, exactly the declared size, magic bytes of the
    /// declared type unless client-side encrypted, the declared SHA-256 if there was one),
    /// records its sha256 and makes it current. A wrong size or digest is 400 and a wrong type
    /// 415; all give the reservation back, and a file whose first upload failed is gone.
    ///
    /// What it costs: on local disk nothing is read but the first 8 KiB (the store hashed the
    /// bytes as they arrived). On S3 one ranged GET gives the size and the first 8 KiB; with a
    /// declared digest a HEAD in parallel confirms that the store verified it (its recorded
    /// `x-amz-checksum-sha256`), and only a store that reports none is read back in full, as
    /// every upload without a declared digest is.
    pub async fn complete(&self, ctx: &AuthContext, id: FileId) -> AppResult<FileView> {
        let file = self.file_for(ctx, id, Access::Write).await?;
        let repo = self.d.db.drive();
        let Some(pending) = repo.pending_version(id).await? else {
            return Err(AppError::conflict("no upload is pending for this file"));
        };
        let key = BlobKey::parse(&pending.blob_key)
            .ok_or_else(|| AppError::internal("stored blob key is malformed"))?;
        let now = Timestamp::now();
        // The store's own record of a declared digest, unless the probe's range brings it along.
        let ask_store = pending.declared_sha256.is_some()
            && pending.sha256.is_none()
            && pending.size > SNIFF_BYTES as i64;
        let (probe, stored) = tokio::join!(self.blobs.probe(&key, SNIFF_BYTES), async {
            if ask_store {
                self.blobs.stored_sha256(&key).await
            } else {
                Ok(None)
            }
        });
        let probe = probe?;
        let size = probe.as_ref().map(|p| p.size);
        let Some(probe) = probe.filter(|p| p.size == pending.size as u64) else {
            repo.abandon_version(id, pending.version, now).await?;
            return Err(AppError::validation(
                "size",
                match size {
                    None => "nothing was uploaded".to_string(),
                    Some(n) => format!("{n} bytes were uploaded, {} declared", pending.size),
                },
            ));
        };
        if !file.encrypted {
            let media = MediaType::parse("content_type", &pending.content_type)?;
            if !sniff::matches_declared(&media, &probe.head) {
                repo.abandon_version(id, pending.version, now).await?;
                return Err(AppError::UnsupportedMediaType(
                    "the file's content does not match its declared type".into(),
                ));
            }
        }
        // The local store hashed the bytes as they arrived; S3 vouches for a declared digest it
        // verified; anything else is read back once.
        let sha256 = match (pending.sha256, probe.sha256, stored?) {
            (Some(h), _, _) | (None, Some(h), _) | (None, None, Some(h)) => h,
            (None, None, None) => self.blobs.sha256_hex(&key).await?,
        };
        if let Some(declared) = &pending.declared_sha256
            && *declared != sha256
        {
            repo.abandon_version(id, pending.version, now).await?;
            return Err(AppError::validation(
                "sha256",
                "the uploaded bytes do not have the declared sha256",
            ));
        }
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
        self.signed_download(file).await
    }

    /// A signed URL for a ready file's current version, valid `download_url_ttl_seconds`.
    async fn signed_download(&self, file: FileRow) -> AppResult<DownloadLink> {
        if file.is_folder || file.status != "ready" {
            return Err(AppError::conflict("only a ready file can be downloaded"));
        }
        let key = self
            .d
            .db
            .drive()
            .blob_key_of(file.id, file.version)
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

    /// The local store received an upload's bytes with this digest. An object whose upload
    /// was given up meanwhile (a PUT that finished after the cleanup job abandoned it) belongs
    /// to nothing: it is deleted at once and the PUT answers 409.
    pub async fn object_received(&self, key: &BlobKey, sha256: &str) -> AppResult<()> {
        if self
            .d
            .db
            .drive()
            .object_received(key.as_str(), sha256)
            .await?
        {
            return Ok(());
        }
        self.blobs.delete(key).await?;
        Err(AppError::conflict(
            "the upload was given up before its bytes arrived; start it again",
        ))
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
}
