//! The drive: storage accounting, files and folders, versions and the blob deletion queue.
//!
//! Quota is counted in `storage_accounts`: an upload reserves its bytes with one conditional
//! UPDATE (never past the quota, whatever runs at once), completion turns them into usage, and
//! abandonment or deletion gives them back. Objects whose rows go are queued in
//! `blob_deletions` in the same transaction, so a crash never leaves an orphan behind.

use crate::BeginWrite as _;
use crate::Db;
use sc_core::{
    AppResult,
    ids::{FileId, UserId},
    time::Timestamp,
};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FileRow {
    pub id: FileId,
    pub owner_id: UserId,
    pub parent_id: Option<FileId>,
    pub name: String,
    pub is_folder: bool,
    pub status: String,
    pub version: i64,
    pub size: i64,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
    pub encrypted: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

macro_rules! file_columns {
    () => {
        "id, owner_id, parent_id, name, is_folder, status, version, size, content_type, sha256, encrypted, created_at, updated_at"
    };
}

/// A pending version: an upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingVersion {
    pub version: i64,
    pub blob_key: String,
    pub size: i64,
    pub content_type: String,
    pub expires_at: Option<Timestamp>,
    /// The digest the store computed while receiving the bytes (local disk), if it did.
    pub sha256: Option<String>,
    /// The digest the client declared at init, if it did.
    pub declared_sha256: Option<String>,
}

/// A pending row's `sha256` column holds what is known of the upload's digest, until complete
/// writes the final one: `<received>` (the local store hashed the bytes), `=<declared>` (the
/// client declared it, nothing received yet), or `<received>=<declared>` when both are known
/// and differ (equal ones are kept once). Ready rows hold a plain digest.
fn split_pending_sha256(raw: Option<String>) -> (Option<String>, Option<String>) {
    let Some(raw) = raw else {
        return (None, None);
    };
    match raw.split_once('=') {
        None => (Some(raw), None),
        Some((received, declared)) => (
            (!received.is_empty()).then(|| received.to_string()),
            Some(declared.to_string()),
        ),
    }
}

#[derive(sqlx::FromRow)]
struct PendingRaw {
    version: i64,
    blob_key: String,
    size: i64,
    content_type: String,
    expires_at: Option<Timestamp>,
    sha256: Option<String>,
}

impl From<PendingRaw> for PendingVersion {
    fn from(r: PendingRaw) -> Self {
        let (sha256, declared_sha256) = split_pending_sha256(r.sha256);
        Self {
            version: r.version,
            blob_key: r.blob_key,
            size: r.size,
            content_type: r.content_type,
            expires_at: r.expires_at,
            sha256,
            declared_sha256,
        }
    }
}

pub struct NewUpload<'a> {
    pub file: FileId,
    pub owner: UserId,
    pub parent: Option<FileId>,
    pub name: &'a str,
    pub size: i64,
    pub content_type: &'a str,
    pub encrypted: bool,
    pub blob_key: &'a str,
    /// The SHA-256 the client declared (lowercase hex), checked at complete.
    pub sha256: Option<&'a str>,
    pub expires_at: Timestamp,
    pub now: Timestamp,
    pub default_quota: i64,
}

pub struct NewVersion<'a> {
    pub file: FileId,
    /// Whose quota pays: the file's owner.
    pub owner: UserId,
    pub size: i64,
    pub content_type: &'a str,
    pub blob_key: &'a str,
    /// The SHA-256 the client declared (lowercase hex), checked at complete.
    pub sha256: Option<&'a str>,
    pub expires_at: Timestamp,
    pub now: Timestamp,
    pub default_quota: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum VersionReserved {
    Ok,
    OverQuota {
        used: i64,
        quota: i64,
    },
    /// An upload of this file is in progress already.
    Busy,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i64,
    pub blob_key: String,
    pub size: i64,
    pub content_type: String,
    pub sha256: Option<String>,
    pub created_at: Timestamp,
}

/// How a reservation went.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserved {
    Ok,
    /// Over the quota: what the account holds now.
    OverQuota {
        used: i64,
        quota: i64,
    },
    /// A file or folder of that name is already in the folder.
    NameTaken,
}

#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct StorageAccount {
    pub used: i64,
    pub reserved: i64,
    pub quota: Option<i64>,
}

pub struct Drive<'a>(pub(crate) &'a Db);

impl Db {
    pub fn drive(&self) -> Drive<'_> {
        Drive(self)
    }
}

impl Drive<'_> {
    pub async fn account(&self, user: UserId) -> AppResult<StorageAccount> {
        let row: Option<StorageAccount> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT used, reserved, quota FROM storage_accounts WHERE user_id = $1")
            .bind(user).fetch_optional(p).await)?;
        Ok(row.unwrap_or(StorageAccount {
            used: 0,
            reserved: 0,
            quota: None,
        }))
    }

    /// Reserves the bytes of a new file's first version and records the pending file, in one
    /// transaction: either both happen or neither.
    pub async fn begin_upload(&self, u: &NewUpload<'_>) -> AppResult<Reserved> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                sqlx::query("INSERT INTO storage_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(u.owner).execute(&mut *tx).await?;
                let reserved = sqlx::query(
                    "UPDATE storage_accounts SET reserved = reserved + $2
                     WHERE user_id = $1 AND used + reserved + $2 <= COALESCE(quota, $3)")
                    .bind(u.owner).bind(u.size).bind(u.default_quota)
                    .execute(&mut *tx).await?.rows_affected();
                if reserved == 0 {
                    let (used, reserved, quota): (i64, i64, Option<i64>) = sqlx::query_as(
                        "SELECT used, reserved, quota FROM storage_accounts WHERE user_id = $1")
                        .bind(u.owner).fetch_one(&mut *tx).await?;
                    tx.rollback().await?;
                    return Ok(Reserved::OverQuota { used: used + reserved, quota: quota.unwrap_or(u.default_quota) });
                }
                let inserted = sqlx::query(concat!("INSERT INTO files (", file_columns!(), ")
                     VALUES ($1, $2, $3, $4, FALSE, 'pending', 0, $5, $6, NULL, $7, $8, $8)"))
                    .bind(u.file).bind(u.owner).bind(u.parent).bind(u.name).bind(u.size)
                    .bind(u.content_type).bind(u.encrypted).bind(u.now)
                    .execute(&mut *tx).await;
                match inserted {
                    Err(e) if crate::is_unique_violation(&e) => {
                        tx.rollback().await?;
                        return Ok(Reserved::NameTaken);
                    }
                    other => { other?; }
                }
                sqlx::query(
                    "INSERT INTO file_versions (file_id, version, blob_key, size, content_type, sha256, status, expires_at, created_at)
                     VALUES ($1, 1, $2, $3, $4, $7, 'pending', $5, $6)")
                    .bind(u.file).bind(u.blob_key).bind(u.size).bind(u.content_type).bind(u.expires_at).bind(u.now)
                    .bind(u.sha256.map(|d| format!("={d}")))
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Reserved::Ok)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Reserves the bytes of a new version of a ready file and records it as pending. The
    /// owner's quota pays, whoever uploads. `Busy` when an upload of this file is pending.
    pub async fn begin_version(&self, v: &NewVersion<'_>) -> AppResult<VersionReserved> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let pending: Option<(i64,)> = sqlx::query_as(
                    "SELECT version FROM file_versions WHERE file_id = $1 AND status = 'pending'")
                    .bind(v.file).fetch_optional(&mut *tx).await?;
                if pending.is_some() {
                    tx.rollback().await?;
                    return Ok(VersionReserved::Busy);
                }
                sqlx::query("INSERT INTO storage_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(v.owner).execute(&mut *tx).await?;
                let reserved = sqlx::query(
                    "UPDATE storage_accounts SET reserved = reserved + $2
                     WHERE user_id = $1 AND used + reserved + $2 <= COALESCE(quota, $3)")
                    .bind(v.owner).bind(v.size).bind(v.default_quota)
                    .execute(&mut *tx).await?.rows_affected();
                if reserved == 0 {
                    let (used, reserved, quota): (i64, i64, Option<i64>) = sqlx::query_as(
                        "SELECT used, reserved, quota FROM storage_accounts WHERE user_id = $1")
                        .bind(v.owner).fetch_one(&mut *tx).await?;
                    tx.rollback().await?;
                    return Ok(VersionReserved::OverQuota { used: used + reserved, quota: quota.unwrap_or(v.default_quota) });
                }
                let inserted = sqlx::query(
                    "INSERT INTO file_versions (file_id, version, blob_key, size, content_type, sha256, status, expires_at, created_at)
                     SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $7, 'pending', $5, $6 FROM file_versions WHERE file_id = $1")
                    .bind(v.file).bind(v.blob_key).bind(v.size).bind(v.content_type).bind(v.expires_at).bind(v.now)
                    .bind(v.sha256.map(|d| format!("={d}")))
                    .execute(&mut *tx).await;
                match inserted {
                    // Another upload of the same file took that version number first.
                    Err(e) if crate::is_unique_violation(&e) => {
                        tx.rollback().await?;
                        return Ok(VersionReserved::Busy);
                    }
                    other => { other?; }
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(VersionReserved::Ok)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// A file's ready versions, newest first, below `before`.
    pub async fn versions(
        &self,
        file: FileId,
        before: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<VersionRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT version, blob_key, size, content_type, sha256, created_at FROM file_versions
             WHERE file_id = $1 AND status = 'ready' AND version < $2 ORDER BY version DESC LIMIT $3")
            .bind(file).bind(before.unwrap_or(i64::MAX)).bind(limit).fetch_all(p).await)?)
    }

    pub async fn version(&self, file: FileId, version: i64) -> AppResult<Option<VersionRow>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT version, blob_key, size, content_type, sha256, created_at FROM file_versions
             WHERE file_id = $1 AND version = $2 AND status = 'ready'")
            .bind(file).bind(version).fetch_optional(p).await)?)
    }

    /// Adds a ready version whose object already exists (a restore's copy) and makes it
    /// current; its bytes are counted as usage at once, never past the quota.
    pub async fn add_ready_version(
        &self,
        v: &NewVersion<'_>,
        sha256: &str,
    ) -> AppResult<VersionReserved> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                sqlx::query("INSERT INTO storage_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(v.owner).execute(&mut *tx).await?;
                let counted = sqlx::query(
                    "UPDATE storage_accounts SET used = used + $2
                     WHERE user_id = $1 AND used + reserved + $2 <= COALESCE(quota, $3)")
                    .bind(v.owner).bind(v.size).bind(v.default_quota)
                    .execute(&mut *tx).await?.rows_affected();
                if counted == 0 {
                    let (used, reserved, quota): (i64, i64, Option<i64>) = sqlx::query_as(
                        "SELECT used, reserved, quota FROM storage_accounts WHERE user_id = $1")
                        .bind(v.owner).fetch_one(&mut *tx).await?;
                    tx.rollback().await?;
                    return Ok(VersionReserved::OverQuota { used: used + reserved, quota: quota.unwrap_or(v.default_quota) });
                }
                let next: (i64,) = sqlx::query_as(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM file_versions WHERE file_id = $1")
                    .bind(v.file).fetch_one(&mut *tx).await?;
                let inserted = sqlx::query(
                    "INSERT INTO file_versions (file_id, version, blob_key, size, content_type, sha256, status, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, 'ready', NULL, $7)")
                    .bind(v.file).bind(next.0).bind(v.blob_key).bind(v.size).bind(v.content_type).bind(sha256).bind(v.now)
                    .execute(&mut *tx).await;
                match inserted {
                    Err(e) if crate::is_unique_violation(&e) => {
                        tx.rollback().await?;
                        return Ok(VersionReserved::Busy);
                    }
                    other => { other?; }
                }
                sqlx::query(
                    "UPDATE files SET version = $2, size = $3, content_type = $4, sha256 = $5, updated_at = $6 WHERE id = $1")
                    .bind(v.file).bind(next.0).bind(v.size).bind(v.content_type).bind(sha256).bind(v.now)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(VersionReserved::Ok)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Deletes the oldest ready versions beyond the newest `keep` (the current one is the
    /// newest, so it always stays): objects queued, bytes given back. Returns how many went.
    pub async fn prune_versions(
        &self,
        file: FileId,
        keep: i64,
        now: Timestamp,
    ) -> AppResult<usize> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let ready: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT version, blob_key, size FROM file_versions WHERE file_id = $1 AND status = 'ready'
                     ORDER BY version DESC")
                    .bind(file).fetch_all(&mut *tx).await?;
                let old = ready.get(usize::try_from(keep).unwrap_or(usize::MAX)..).unwrap_or_default();
                let mut freed = 0i64;
                for (version, key, size) in old {
                    sqlx::query("INSERT INTO blob_deletions (blob_key, queued_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(key).bind(now).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM file_versions WHERE file_id = $1 AND version = $2")
                        .bind(file).bind(*version).execute(&mut *tx).await?;
                    freed += size;
                }
                if freed > 0 {
                    sqlx::query(
                        "UPDATE storage_accounts SET used = used - $2
                         WHERE user_id = (SELECT owner_id FROM files WHERE id = $1)")
                        .bind(file).bind(freed).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(old.len())
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    pub async fn pending_version(&self, file: FileId) -> AppResult<Option<PendingVersion>> {
        let row: Option<PendingRaw> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT version, blob_key, size, content_type, expires_at, sha256 FROM file_versions
             WHERE file_id = $1 AND status = 'pending' ORDER BY version DESC LIMIT 1")
            .bind(file).fetch_optional(p).await)?;
        Ok(row.map(Into::into))
    }

    /// Records the digest of a pending upload's bytes as the store received them, next to a
    /// declared one that differs (see [`PendingVersion`]). False when no pending upload has
    /// that object (it was given up, or never existed).
    pub async fn object_received(&self, blob_key: &str, sha256: &str) -> AppResult<bool> {
        let n = on_pool!(self.0, p => sqlx::query(
            "UPDATE file_versions SET sha256 = CASE
                 WHEN sha256 LIKE '=%' AND sha256 <> '=' || $2 THEN $2 || sha256
                 ELSE $2 END
             WHERE blob_key = $1 AND status = 'pending'")
            .bind(blob_key).bind(sha256).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn blob_key_of(&self, file: FileId, version: i64) -> AppResult<Option<String>> {
        let row: Option<(String,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT blob_key FROM file_versions WHERE file_id = $1 AND version = $2 AND status = 'ready'")
            .bind(file).bind(version).fetch_optional(p).await)?;
        Ok(row.map(|(k,)| k))
    }

    /// Makes a pending version current: the file is ready at that version and the reserved
    /// bytes become usage. False when the version is no longer pending (completed or abandoned).
    pub async fn complete_version(
        &self,
        file: FileId,
        version: i64,
        sha256: &str,
        now: Timestamp,
    ) -> AppResult<bool> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let row: Option<(i64, String)> = sqlx::query_as(
                    "UPDATE file_versions SET status = 'ready', sha256 = $3, expires_at = NULL
                     WHERE file_id = $1 AND version = $2 AND status = 'pending'
                     RETURNING size, content_type")
                    .bind(file).bind(version).bind(sha256).fetch_optional(&mut *tx).await?;
                let Some((size, content_type)) = row else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE files SET status = 'ready', version = $2, size = $3, content_type = $4, sha256 = $5, updated_at = $6
                     WHERE id = $1")
                    .bind(file).bind(version).bind(size).bind(content_type).bind(sha256).bind(now)
                    .execute(&mut *tx).await?;
                sqlx::query(
                    "UPDATE storage_accounts SET reserved = reserved - $2, used = used + $2
                     WHERE user_id = (SELECT owner_id FROM files WHERE id = $1)")
                    .bind(file).bind(size).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Gives up a pending version: its reservation is released, its object queued for deletion,
    /// and a file that never had a ready version goes with it. False when it was not pending.
    pub async fn abandon_version(
        &self,
        file: FileId,
        version: i64,
        now: Timestamp,
    ) -> AppResult<bool> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                let row: Option<(i64, String)> = sqlx::query_as(
                    "DELETE FROM file_versions WHERE file_id = $1 AND version = $2 AND status = 'pending'
                     RETURNING size, blob_key")
                    .bind(file).bind(version).fetch_optional(&mut *tx).await?;
                let Some((size, blob_key)) = row else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query(
                    "UPDATE storage_accounts SET reserved = reserved - $2
                     WHERE user_id = (SELECT owner_id FROM files WHERE id = $1)")
                    .bind(file).bind(size).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO blob_deletions (blob_key, queued_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(blob_key).bind(now).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM files WHERE id = $1 AND status = 'pending'")
                    .bind(file).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            })
        };
        Ok(crate::retry_tx!(run())?)
    }

    /// Pending versions whose reservation lapsed before `before`.
    pub async fn expired_uploads(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> AppResult<Vec<(FileId, i64)>> {
        Ok(on_pool!(self.0, p => sqlx::query_as(
            "SELECT file_id, version FROM file_versions
             WHERE status = 'pending' AND expires_at < $1 ORDER BY expires_at LIMIT $2")
            .bind(before).bind(limit).fetch_all(p).await)?)
    }

    pub async fn queued_blob_deletions(&self, limit: i64) -> AppResult<Vec<String>> {
        let rows: Vec<(String,)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT blob_key FROM blob_deletions ORDER BY queued_at LIMIT $1")
            .bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    pub async fn blob_deleted(&self, key: &str) -> AppResult<()> {
        on_pool!(self.0, p => sqlx::query("DELETE FROM blob_deletions WHERE blob_key = $1")
            .bind(key).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn file(&self, id: FileId) -> AppResult<Option<FileRow>> {
        Ok(
            on_pool!(self.0, p => sqlx::query_as(concat!("SELECT ", file_columns!(), " FROM files WHERE id = $1"))
            .bind(id).fetch_optional(p).await)?,
        )
    }

    /// A folder's entries (or the owner's root), by name, after `after`, at most `limit`.
    pub async fn children(
        &self,
        owner: UserId,
        parent: Option<FileId>,
        after: Option<(String, FileId)>,
        limit: i64,
    ) -> AppResult<Vec<FileRow>> {
        let (name, id) = after.unwrap_or_else(start_of_names);
        let rows = match parent {
            None => {
                on_pool!(self.0, p => sqlx::query_as(concat!("SELECT ", file_columns!(), " FROM files
                 WHERE owner_id = $1 AND parent_id IS NULL AND (name, id) > ($2, $3) ORDER BY name, id LIMIT $4"))
                .bind(owner).bind(name).bind(id).bind(limit).fetch_all(p).await)
            }
            Some(folder) => {
                on_pool!(self.0, p => sqlx::query_as(concat!("SELECT ", file_columns!(), " FROM files
                 WHERE parent_id = $1 AND (name, id) > ($2, $3) ORDER BY name, id LIMIT $4"))
                .bind(folder).bind(name).bind(id).bind(limit).fetch_all(p).await)
            }
        };
        Ok(rows?)
    }

    /// The owner's files and folders whose name contains `needle` (case-insensitive for ASCII).
    pub async fn search(
        &self,
        owner: UserId,
        needle: &str,
        after: Option<(String, FileId)>,
        limit: i64,
    ) -> AppResult<Vec<FileRow>> {
        let pattern = format!("%{}%", like_escape(&needle.to_lowercase()));
        let (name, id) = after.unwrap_or_else(start_of_names);
        Ok(
            on_pool!(self.0, p => sqlx::query_as(concat!("SELECT ", file_columns!(), " FROM files
             WHERE owner_id = $1 AND lower(name) LIKE $2 ESCAPE '\\' AND (name, id) > ($3, $4)
             ORDER BY name, id LIMIT $5"))
            .bind(owner).bind(pattern).bind(name).bind(id).bind(limit).fetch_all(p).await)?,
        )
    }

    /// A new folder; false when the name is taken in that folder.
    pub async fn create_folder(
        &self,
        id: FileId,
        owner: UserId,
        parent: Option<FileId>,
        name: &str,
        now: Timestamp,
    ) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(concat!("INSERT INTO files (", file_columns!(), ")
             VALUES ($1, $2, $3, $4, TRUE, 'ready', 0, 0, NULL, NULL, FALSE, $5, $5)"))
            .bind(id).bind(owner).bind(parent).bind(name).bind(now).execute(p).await.map(|_| ()));
        match r {
            Ok(_) => Ok(true),
            Err(e) if crate::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Renames and/or moves; false when the name is taken in the target folder.
    pub async fn rename_move(
        &self,
        id: FileId,
        name: &str,
        parent: Option<FileId>,
        now: Timestamp,
    ) -> AppResult<bool> {
        let r = on_pool!(self.0, p => sqlx::query(
            "UPDATE files SET name = $2, parent_id = $3, updated_at = $4 WHERE id = $1")
            .bind(id).bind(name).bind(parent).bind(now).execute(p).await.map(|_| ()));
        match r {
            Ok(_) => Ok(true),
            Err(e) if crate::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `folder` and the ids of its ancestors, nearest first (for the cycle check of a move).
    pub async fn ancestry(&self, folder: FileId) -> AppResult<Vec<FileId>> {
        let rows: Vec<(FileId,)> = on_pool!(self.0, p => sqlx::query_as(
            "WITH RECURSIVE up(id, parent_id, depth) AS (
                 SELECT id, parent_id, 0 FROM files WHERE id = $1
                 UNION ALL
                 SELECT f.id, f.parent_id, up.depth + 1 FROM files f JOIN up ON f.id = up.parent_id WHERE up.depth < 1000)
             SELECT id FROM up ORDER BY depth")
            .bind(folder).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// `root` and everything below it, deepest first, so deleting in this order never leaves a
    /// child without its parent.
    pub async fn subtree_deepest_first(&self, root: FileId) -> AppResult<Vec<FileId>> {
        let rows: Vec<(FileId,)> = on_pool!(self.0, p => sqlx::query_as(
            "WITH RECURSIVE down(id, depth) AS (
                 SELECT id, 0 FROM files WHERE id = $1
                 UNION ALL
                 SELECT f.id, down.depth + 1 FROM files f JOIN down ON f.parent_id = down.id WHERE down.depth < 1000)
             SELECT id FROM down ORDER BY depth DESC")
            .bind(root).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Deletes files (children before parents, as `subtree_deepest_first` orders them) with
    /// every version in one transaction: their objects are queued for deletion and their bytes
    /// leave the owner's usage and reservations.
    pub async fn delete_files(&self, ids: &[FileId], now: Timestamp) -> AppResult<()> {
        let run = || async {
            on_pool!(self.0, p => {
                let mut tx = p.begin_write(self.0).await?;
                for id in ids {
                    // The versions this transaction deleted, not the ones it saw: of two
                    // deleters racing, only one gets rows, so usage is released once.
                    let versions: Vec<(String, i64, String)> = sqlx::query_as(
                        "DELETE FROM file_versions WHERE file_id = $1 RETURNING blob_key, size, status")
                        .bind(*id).fetch_all(&mut *tx).await?;
                    let (mut used, mut reserved) = (0i64, 0i64);
                    for (key, size, status) in &versions {
                        if status == "ready" { used += size } else { reserved += size }
                        sqlx::query("INSERT INTO blob_deletions (blob_key, queued_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(key).bind(now).execute(&mut *tx).await?;
                    }
                    if used != 0 || reserved != 0 {
                        sqlx::query(
                            "UPDATE storage_accounts SET used = used - $2, reserved = reserved - $3
                             WHERE user_id = (SELECT owner_id FROM files WHERE id = $1)")
                            .bind(*id).bind(used).bind(reserved).execute(&mut *tx).await?;
                    }
                    sqlx::query("DELETE FROM message_attachments WHERE file_id = $1").bind(*id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM files WHERE id = $1").bind(*id).execute(&mut *tx).await?;
                }
                tx.commit().await
            })
        };
        Ok(crate::retry_tx!(run())?)
    }
}

/// The keyset below every (name, id): names are never empty.
fn start_of_names() -> (String, FileId) {
    (String::new(), FileId(uuid::Uuid::nil()))
}

/// Escapes LIKE's wildcards (`%`, `_`) and the escape character itself.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(super::like_escape("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn pending_digests_split() {
        use super::split_pending_sha256;
        let s = |v: &str| Some(v.to_string());
        assert_eq!(split_pending_sha256(None), (None, None));
        assert_eq!(split_pending_sha256(s("ab")), (s("ab"), None));
        assert_eq!(split_pending_sha256(s("=cd")), (None, s("cd")));
        assert_eq!(split_pending_sha256(s("ab=cd")), (s("ab"), s("cd")));
    }
}
