//! Files the server makes itself (a generated image): stored like an upload — the quota
//! reserved atomically, the type checked by its magic bytes — but written by the server, then
//! completed at once.

use super::{DriveService, sniff};
use crate::AuthContext;
use sc_core::{AppError, AppResult, files::FileName, ids::FileId, time::Timestamp};
use sc_db::drive::{NewUpload, Reserved};
use sc_infra::blobs::BlobKey;
use sha2::{Digest, Sha256};

impl DriveService {
    /// Stores `bytes` as a ready file named `name` in the caller's drive root. The bytes must
    /// be what `content_type` says (503 otherwise: the maker failed, not the caller); over the
    /// quota is 507 and nothing is kept.
    pub async fn store_generated(
        &self,
        ctx: &AuthContext,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> AppResult<super::FileView> {
        let name = FileName::parse("name", name)?;
        let size = i64::try_from(bytes.len()).map_err(AppError::internal)?;
        let media = self.check_declared(&name, size, content_type)?;
        if !sniff::matches_declared(&media, &bytes[..bytes.len().min(super::SNIFF_BYTES)]) {
            return Err(AppError::ServiceUnavailable(format!(
                "the generated file is not {}",
                media.as_str()
            )));
        }
        let now = Timestamp::now();
        let file = FileId::new();
        let key = BlobKey::new_random();
        let repo = self.d.db.drive();
        let outcome = repo
            .begin_upload(&NewUpload {
                file,
                owner: ctx.user_id,
                parent: None,
                name: name.as_str(),
                size,
                content_type: media.as_str(),
                encrypted: false,
                blob_key: key.as_str(),
                sha256: None,
                expires_at: now.plus(std::time::Duration::from_secs(300)),
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
                    requested: size as u64,
                });
            }
            Reserved::NameTaken => {
                return Err(AppError::conflict(
                    "a file or folder of that name is already there",
                ));
            }
        }
        let version = repo
            .pending_version(file)
            .await?
            .map(|p| p.version)
            .ok_or_else(|| AppError::internal("the reserved version is missing"))?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let stored = self
            .blobs
            .put_bytes(&key, bytes.into(), media.as_str())
            .await;
        if let Err(e) = stored {
            // The reservation goes back; the cleanup job removes any partial object.
            repo.abandon_version(file, version, Timestamp::now())
                .await?;
            return Err(e);
        }
        if !repo
            .complete_version(file, version, &sha256, Timestamp::now())
            .await?
        {
            return Err(AppError::conflict(
                "the file was removed while it was stored",
            ));
        }
        self.get(ctx, file).await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
