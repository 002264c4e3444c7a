//! `manifest.json`: what a backup holds and the SHA-256 of every file in it. It detects damage
//! and accidental edits; it is no signature (whoever can rewrite a file can rewrite the
//! manifest, and the only key there is travels in the backup itself).

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT: &str = "secureconnect-backup";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    /// RFC 3339 UTC, when the database snapshot was taken.
    pub created_at: String,
    /// The version of the `secureconnect` that wrote it.
    pub server_version: String,
    pub database: Database,
    /// The key files copied from the data directory.
    pub secrets: Vec<FileEntry>,
    /// Secrets the configuration supplied when the backup was made: not in the backup, and
    /// needed again (the same values) to use it.
    pub secrets_from_configuration: Vec<String>,
    pub blobs: Blobs,
}

/// A file of the backup: its path relative to the backup directory, size and SHA-256 (hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Database {
    pub file: FileEntry,
    /// The migration versions applied in the snapshot.
    pub migrations: Vec<i64>,
    pub counts: Counts,
}

/// Rows in the snapshot, for the operator and for comparing a restore.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub users: i64,
    pub conversations: i64,
    pub messages: i64,
    /// Files (folders left out), pending uploads included.
    pub files: i64,
    /// Ready file versions, each with its own object.
    pub ready_versions: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Blobs {
    pub count: u64,
    pub bytes: u64,
    pub objects: Vec<FileEntry>,
    /// Objects of ready versions in the snapshot that a deletion removed before they could be
    /// copied (the file was deleted while the backup ran): the restored server lists these
    /// file versions, but cannot serve their bytes.
    pub deleted_since_snapshot: Vec<String>,
    /// Objects of ready versions that were absent although the live database still refers to
    /// them: lost from the live store already.
    pub missing: Vec<String>,
    /// Objects whose bytes do not match the size or SHA-256 their version row records: damaged
    /// in the live store (copied as found).
    pub digest_mismatch: Vec<String>,
}

impl Manifest {
    /// Reads and checks the manifest of the backup in `dir`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let file = std::fs::File::open(&path).with_context(|| {
            format!(
                "{} has no {MANIFEST_FILE}: not a complete backup made by `secureconnect backup`",
                dir.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| format!("{} is not a backup manifest", path.display()))?;
        if manifest.format != FORMAT {
            bail!(
                "{} is not a SecureConnect backup manifest (format {:?})",
                path.display(),
                manifest.format
            );
        }
        if manifest.format_version != FORMAT_VERSION {
            bail!(
                "{} has format version {}; this secureconnect reads version {FORMAT_VERSION} \
                 (use the secureconnect that made the backup, or a newer one)",
                path.display(),
                manifest.format_version
            );
        }
        Ok(manifest)
    }

    /// Writes the manifest as the new file `dir/manifest.json` (0600, fsynced).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self).context("cannot encode the manifest")?;
        super::files::write_private_file(&dir.join(MANIFEST_FILE), &json)
    }
}
