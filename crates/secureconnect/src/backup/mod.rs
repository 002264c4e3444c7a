//! `secureconnect backup --to DIR` and `secureconnect restore --from DIR` for the embedded mode:
//! the SQLite database, the drive's objects and the keys the server generated in `data_dir`,
//! taken while the server serves.
//!
//! A backup directory mirrors the data directory, plus a manifest:
//!
//! ```text
//! DIR/manifest.json      written last: format, migrations, counts, sizes, SHA-256 of every file
//! DIR/secureconnect.db   a point-in-time snapshot taken through SQLite (VACUUM INTO)
//! DIR/jwt_secret, DIR/data_key, DIR/vapid_private_key   the generated keys that exist
//! DIR/blobs/objects/…    the objects the snapshot's file versions reference
//! ```
//!
//! It is written into `DIR.partial` and renamed to `DIR` once complete, so an interrupted backup
//! never looks like a finished one. PostgreSQL and S3 deployments are backed up with their own
//! tools: scripts/backup-postgres-s3.sh and docs/operations.md.

mod files;
mod manifest;
mod restore;
mod snapshot;
mod take;

use sc_core::config::{Config, DatabaseKind};
use std::path::{Path, PathBuf};

/// The database file's name inside a backup.
const DB_FILE: &str = "secureconnect.db";
/// The drive's objects, inside both the data directory and a backup.
const BLOBS_DIR: &str = "blobs";
/// The secrets the server generates into the data directory when the configuration has none
/// (see `secrets.rs` and `push.rs`); TURN, SMTP, S3 and AI secrets only ever come from the
/// configuration.
const SECRETS: [&str; 3] = ["jwt_secret", "data_key", "vapid_private_key"];

/// Backs up the embedded mode into `to`, which must be absent or empty.
pub async fn backup(cfg: &Config, to: &Path) -> anyhow::Result<()> {
    take::run(cfg, to).await
}

/// Restores a backup made by `backup` from `from` into the configured data directory, which
/// must be absent or empty.
pub async fn restore(cfg: &Config, from: &Path) -> anyhow::Result<()> {
    restore::run(cfg, from).await
}

/// Where the embedded mode keeps its state.
struct Embedded {
    data_dir: PathBuf,
    db: PathBuf,
    blobs: PathBuf,
}

impl Embedded {
    /// The embedded mode's paths; an error naming the other procedure for PostgreSQL or S3.
    fn of(cfg: &Config, command: &str) -> anyhow::Result<Embedded> {
        let elsewhere = |what: &str| {
            anyhow::anyhow!(
                "`secureconnect {command}` covers the embedded mode only (SQLite and blobs in \
                 data_dir), and this configuration uses {what}: use \
                 scripts/{command}-postgres-s3.sh instead (pg_dump/pg_restore, a bucket copy and \
                 the secrets), see \"Backup and restore\" in docs/operations.md"
            )
        };
        let db = match cfg.database() {
            DatabaseKind::Sqlite(path) => path,
            DatabaseKind::Postgres(_) => return Err(elsewhere("PostgreSQL (database_url)")),
        };
        if cfg.s3_endpoint.is_some() {
            return Err(elsewhere("S3 object storage (s3_endpoint)"));
        }
        Ok(Embedded {
            data_dir: cfg.data_dir.clone(),
            db,
            blobs: cfg.data_dir.join(BLOBS_DIR),
        })
    }
}

/// True when the configuration supplies the secret `name`, so the server never reads (or
/// writes) it in the data directory.
fn configured(cfg: &Config, name: &str) -> bool {
    match name {
        "jwt_secret" => cfg.jwt_secret.is_some(),
        "data_key" => cfg.data_key.is_some(),
        "vapid_private_key" => cfg.vapid_private_key.is_some(),
        _ => false,
    }
}
