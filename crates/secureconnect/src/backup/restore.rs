//! `secureconnect restore --from DIR` into an absent or empty data directory.
//!
//! Nothing reaches its place before every file of the backup has been verified: each one is
//! copied into `data_dir/.restore-partial` while its SHA-256 is computed and compared with the
//! manifest; only when all match are they renamed into place (the keys, the objects, and the
//! database last). A damaged or altered backup leaves the data directory as it found it.

use super::{
    BLOBS_DIR, DB_FILE, Embedded, SECRETS, configured,
    files::{self, blocking, warn},
    manifest::{FileEntry, Manifest},
};
use anyhow::{Context, bail};
use sc_core::config::Config;
use sc_db::{Backend, Db};
use sc_infra::blobs::BlobKey;
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

/// Where the files are verified before they are placed, inside the data directory (so the
/// final renames never cross file systems).
const STAGING: &str = ".restore-partial";

pub async fn run(cfg: &Config, from: &Path) -> anyhow::Result<()> {
    let dst = Embedded::of(cfg, "restore")?;
    if from
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(".partial"))
    {
        bail!(
            "{} is an incomplete backup (the backup writing it did not finish)",
            from.display()
        );
    }
    let manifest = Manifest::read(from)?;
    check_migrations(&manifest)?;
    check_secrets(cfg, &manifest)?;
    let entries = checked_entries(&manifest)?;
    files::ensure_empty_or_absent(
        &dst.data_dir,
        "the data directory",
        "restore into a new or empty data directory (see data_dir)",
    )?;
    let created = !dst.data_dir.exists();
    files::create_private_dir(&dst.data_dir)?;
    let staging = dst.data_dir.join(STAGING);
    files::create_new_private_dir(&staging)?;

    let (src, stage) = (from.to_path_buf(), staging.clone());
    if let Err(e) = blocking(move || stage_all(&src, &stage, &entries)).await {
        if let Err(rm) = std::fs::remove_dir_all(&staging) {
            warn(format_args!("cannot remove {}: {rm}", staging.display()));
        } else if created {
            // Left as found: absent.
            let _ = std::fs::remove_dir(&dst.data_dir);
        }
        return Err(e.context("nothing was restored"));
    }
    place(&manifest, &staging, &dst)?;
    print_summary(from, &dst.data_dir, &manifest);
    Ok(())
}

/// Refuses a database with migrations this binary does not have (made by a newer version);
/// older ones are migrated by the server at start.
fn check_migrations(m: &Manifest) -> anyhow::Result<()> {
    let known: HashSet<i64> = Db::migration_versions(Backend::Sqlite)
        .into_iter()
        .collect();
    let unknown: Vec<i64> = m
        .database
        .migrations
        .iter()
        .copied()
        .filter(|v| !known.contains(v))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the backup's database has migrations {unknown:?} that this secureconnect ({}) does \
             not know: restore it with the version that made it ({}) or a newer one",
            env!("CARGO_PKG_VERSION"),
            m.server_version
        );
    }
    Ok(())
}

/// The backup and the configuration must agree on where each secret comes from.
fn check_secrets(cfg: &Config, m: &Manifest) -> anyhow::Result<()> {
    for name in &m.secrets_from_configuration {
        if configured(cfg, name) {
            continue;
        }
        if name == "data_key" {
            bail!(
                "the backup was made with data_key from the configuration, and this \
                 configuration sets none: set data_key (or data_key_file) to that same value and \
                 run the restore again; a new key would make every TOTP secret unreadable"
            );
        }
        warn(format_args!(
            "the backup was made with {name} from the configuration, and this configuration \
             sets none: the server will generate a new one"
        ));
    }
    for s in &m.secrets {
        if configured(cfg, &s.path) {
            warn(format_args!(
                "the configuration sets {}: the server uses that value, not the restored file; \
                 it must be the value the backup was made with",
                s.path
            ));
        }
    }
    Ok(())
}

/// Every file of the manifest with its path inside the backup, checked to be one a backup
/// holds (the manifest is input: no path may leave the directories it names).
fn checked_entries(m: &Manifest) -> anyhow::Result<Vec<(PathBuf, FileEntry)>> {
    let mut entries = Vec::with_capacity(1 + m.secrets.len() + m.blobs.objects.len());
    let mut seen = HashSet::new();
    let mut add = |rel: PathBuf, e: &FileEntry| -> anyhow::Result<()> {
        if !seen.insert(rel.clone()) {
            bail!("the manifest lists {} twice", e.path);
        }
        entries.push((rel, e.clone()));
        Ok(())
    };
    if m.database.file.path != DB_FILE {
        bail!("the manifest names the database {:?}", m.database.file.path);
    }
    add(PathBuf::from(DB_FILE), &m.database.file)?;
    for s in &m.secrets {
        if !SECRETS.contains(&s.path.as_str()) {
            bail!("the manifest lists an unknown secret {:?}", s.path);
        }
        add(PathBuf::from(&s.path), s)?;
    }
    for o in &m.blobs.objects {
        let key = o
            .path
            .strip_prefix(BLOBS_DIR)
            .and_then(|p| p.strip_prefix('/'))
            .and_then(BlobKey::parse)
            .with_context(|| format!("the manifest lists a malformed object path {:?}", o.path))?;
        add(Path::new(BLOBS_DIR).join(key.as_str()), o)?;
    }
    Ok(entries)
}

/// Copies every entry from the backup into `staging`, verifying its size and SHA-256.
fn stage_all(from: &Path, staging: &Path, entries: &[(PathBuf, FileEntry)]) -> anyhow::Result<()> {
    let mut made_dirs = HashSet::new();
    for (rel, expected) in entries {
        let dst = staging.join(rel);
        if let Some(dir) = dst.parent()
            && made_dirs.insert(dir.to_path_buf())
        {
            files::create_private_dir(dir)?;
        }
        let src = from.join(rel);
        let copied = files::copy_hashed(&src, &dst)?
            .with_context(|| format!("{} is listed in the manifest but missing", src.display()))?;
        if copied.bytes != expected.bytes || copied.sha256 != expected.sha256 {
            bail!(
                "{} does not match its checksum in the manifest: the backup is damaged or was \
                 altered",
                src.display()
            );
        }
    }
    for dir in &made_dirs {
        files::sync_dir(dir);
    }
    Ok(())
}

/// Renames the verified files into place: keys, objects, then the database, so that a
/// database is never there without its keys.
fn place(m: &Manifest, staging: &Path, dst: &Embedded) -> anyhow::Result<()> {
    for s in &m.secrets {
        files::rename_durably(&staging.join(&s.path), &dst.data_dir.join(&s.path))?;
    }
    let blobs = staging.join(BLOBS_DIR);
    if blobs.exists() {
        files::rename_durably(&blobs, &dst.blobs)?;
    }
    files::rename_durably(&staging.join(DB_FILE), &dst.db)?;
    std::fs::remove_dir(staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    files::sync_dir(&dst.data_dir);
    Ok(())
}

fn print_summary(from: &Path, data_dir: &Path, m: &Manifest) {
    let c = &m.database.counts;
    let names: Vec<&str> = m.secrets.iter().map(|s| s.path.as_str()).collect();
    println!(
        "restored {} (snapshot of {}) into {}",
        from.display(),
        m.created_at,
        data_dir.display()
    );
    println!(
        "  database  {} users, {} conversations, {} messages, {} files; migrations {:?}",
        c.users, c.conversations, c.messages, c.files, m.database.migrations
    );
    println!("  objects   {} ({} bytes)", m.blobs.count, m.blobs.bytes);
    println!("  secrets   {}", names.join(", "));
    let unservable = m.blobs.deleted_since_snapshot.len() + m.blobs.missing.len();
    if unservable > 0 {
        warn(format_args!(
            "{unservable} file versions in this backup have no object (see \
             deleted_since_snapshot and missing in its manifest): their downloads will fail"
        ));
    }
    println!(
        "start the server with this configuration (with auto_migrate on, the default, it \
         applies pending migrations at start)"
    );
}
