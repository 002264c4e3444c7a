//! `secureconnect backup --to DIR`, while the server serves.
//!
//! Order matters. The database snapshot comes first; the objects it references are copied
//! after it. Objects are written once (a temporary file, fsynced, then linked into place) and
//! never changed, so every object a ready version of the snapshot names is already complete on
//! disk; objects uploaded after the snapshot are not referenced and not copied. The one race
//! left is a deletion: a file deleted after the snapshot has its object queued in
//! `blob_deletions` and removed by the cleanup job, possibly before the copy reaches it. Such
//! objects are reported (a warning and a count in the manifest), and told apart from objects
//! the live database still refers to, which would be a real loss in the live store.

use super::{
    BLOBS_DIR, DB_FILE, Embedded, SECRETS, configured,
    files::{self, blocking, warn},
    manifest::{Blobs, Database, FORMAT, FORMAT_VERSION, FileEntry, Manifest},
    snapshot::{self, ObjectRef},
};
use anyhow::{Context, bail};
use sc_core::{config::Config, time::Timestamp};
use sc_infra::blobs::BlobKey;
use sqlx::{Connection, SqliteConnection};
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

pub async fn run(cfg: &Config, to: &Path) -> anyhow::Result<()> {
    let src = Embedded::of(cfg, "backup")?;
    let partial = prepare_target(to)?;
    let manifest = match write(cfg, &src, &partial).await {
        Ok(m) => m,
        Err(e) => {
            if let Err(rm) = std::fs::remove_dir_all(&partial) {
                warn(format_args!(
                    "cannot remove the incomplete backup {}: {rm}",
                    partial.display()
                ));
            }
            return Err(e);
        }
    };
    files::rename_durably(&partial, to)?;
    print_summary(to, &manifest);
    Ok(())
}

/// Checks that `to` is absent or empty and creates `to.partial` (0700) to write into.
fn prepare_target(to: &Path) -> anyhow::Result<PathBuf> {
    files::ensure_empty_or_absent(
        to,
        "the backup target",
        "back up into a new or empty directory",
    )?;
    let partial = files::sibling_with_suffix(to, ".partial")?;
    if partial.exists() {
        bail!(
            "{} exists: a backup is running into it, or one was interrupted (remove it, then \
             run the backup again)",
            partial.display()
        );
    }
    if let Some(parent) = partial.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    files::create_new_private_dir(&partial)?;
    Ok(partial)
}

/// Writes the whole backup into `out`; the manifest last.
async fn write(cfg: &Config, src: &Embedded, out: &Path) -> anyhow::Result<Manifest> {
    let mut live = snapshot::open_live(&src.db).await?;
    let created_at = Timestamp::now().to_rfc3339();
    let db_path = out.join(DB_FILE);
    snapshot::vacuum_into(&mut live, &db_path).await?;
    files::seal_file(&db_path)?;
    let contents = snapshot::inspect(&db_path).await?;
    let db_digest = blocking(move || files::hash_file(&db_path)).await?;

    let (blobs_from, blobs_to) = (src.blobs.clone(), out.join(BLOBS_DIR));
    let (mut blobs, absent) =
        blocking(move || copy_objects(&blobs_from, &blobs_to, contents.objects)).await?;
    classify_absent(&mut live, absent, &mut blobs).await?;
    live.close().await.ok();

    let (secrets, secrets_from_configuration) = copy_secrets(cfg, &src.data_dir, out)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at,
        server_version: env!("CARGO_PKG_VERSION").into(),
        database: Database {
            file: FileEntry {
                path: DB_FILE.into(),
                bytes: db_digest.bytes,
                sha256: db_digest.sha256,
            },
            migrations: contents.migrations,
            counts: contents.counts,
        },
        secrets,
        secrets_from_configuration,
        blobs,
    };
    manifest.write(out)?;
    files::sync_dir(out);
    Ok(manifest)
}

/// Copies the objects the snapshot references from `from` (data_dir/blobs) to `to`, checking
/// ready ones against their recorded size and digest. Returns the summary and the keys of
/// ready versions whose object was absent.
fn copy_objects(
    from: &Path,
    to: &Path,
    objects: Vec<ObjectRef>,
) -> anyhow::Result<(Blobs, Vec<String>)> {
    let mut blobs = Blobs::default();
    let mut absent = Vec::new();
    let mut made_dirs = HashSet::new();
    for object in objects {
        let Some(key) = BlobKey::parse(&object.key) else {
            warn(format_args!(
                "a file version names the malformed object key {:?}: not copied",
                object.key
            ));
            if object.ready {
                blobs.missing.push(object.key);
            }
            continue;
        };
        let dst = to.join(key.as_str());
        if let Some(dir) = dst.parent()
            && made_dirs.insert(dir.to_path_buf())
        {
            files::create_private_dir(dir)?;
        }
        let Some(copied) = files::copy_hashed(&from.join(key.as_str()), &dst)? else {
            // A pending upload whose bytes have not arrived is no loss.
            if object.ready {
                absent.push(object.key);
            }
            continue;
        };
        let recorded = u64::try_from(object.size).ok() == Some(copied.bytes)
            && object.sha256.as_deref() == Some(copied.sha256.as_str());
        if object.ready && !recorded {
            warn(format_args!(
                "object {key} does not match the size and SHA-256 its file version records \
                 (damaged in the live store); copied as found"
            ));
            blobs.digest_mismatch.push(object.key.clone());
        }
        blobs.count += 1;
        blobs.bytes += copied.bytes;
        blobs.objects.push(FileEntry {
            path: format!("{BLOBS_DIR}/{key}"),
            bytes: copied.bytes,
            sha256: copied.sha256,
        });
    }
    for dir in &made_dirs {
        files::sync_dir(dir);
    }
    Ok((blobs, absent))
}

/// Tells objects deleted after the snapshot (their rows are gone from the live database) from
/// objects lost although still referenced.
async fn classify_absent(
    live: &mut SqliteConnection,
    absent: Vec<String>,
    blobs: &mut Blobs,
) -> anyhow::Result<()> {
    for key in absent {
        if snapshot::still_referenced(live, &key).await? {
            warn(format_args!(
                "object {key} is missing from the live store although a file version refers \
                 to it: that file cannot be downloaded, here or from the backup"
            ));
            blobs.missing.push(key);
        } else {
            warn(format_args!(
                "object {key} was deleted after the snapshot (its file was deleted while the \
                 backup ran): the restored server lists that file version but cannot serve it"
            ));
            blobs.deleted_since_snapshot.push(key);
        }
    }
    Ok(())
}

/// Copies the generated key files. Secrets the configuration supplies are not in the data
/// directory: they are named in the manifest, and must be kept with the backup by the operator.
fn copy_secrets(
    cfg: &Config,
    data_dir: &Path,
    out: &Path,
) -> anyhow::Result<(Vec<FileEntry>, Vec<String>)> {
    let mut copied = Vec::new();
    let mut from_configuration = Vec::new();
    for name in SECRETS {
        if configured(cfg, name) {
            warn(format_args!(
                "{name} comes from the configuration, not the data directory: it is not in the \
                 backup; keep it with the backup{}",
                if name == "data_key" {
                    " (TOTP secrets are encrypted with it)"
                } else {
                    ""
                }
            ));
            from_configuration.push(name.to_string());
            continue;
        }
        // Absent: never generated (nothing needed it yet); the server makes one when it does.
        if let Some(d) = files::copy_hashed(&data_dir.join(name), &out.join(name))? {
            copied.push(FileEntry {
                path: name.into(),
                bytes: d.bytes,
                sha256: d.sha256,
            });
        }
    }
    Ok((copied, from_configuration))
}

fn print_summary(to: &Path, m: &Manifest) {
    let c = &m.database.counts;
    let names: Vec<&str> = m.secrets.iter().map(|s| s.path.as_str()).collect();
    println!("backup complete: {}", to.display());
    println!(
        "  database  {} bytes, snapshot at {}, migrations {:?}",
        m.database.file.bytes, m.created_at, m.database.migrations
    );
    println!(
        "            {} users, {} conversations, {} messages, {} files",
        c.users, c.conversations, c.messages, c.files
    );
    println!("  objects   {} ({} bytes)", m.blobs.count, m.blobs.bytes);
    println!("  secrets   {}", names.join(", "));
    let b = &m.blobs;
    let problems = b.deleted_since_snapshot.len() + b.missing.len() + b.digest_mismatch.len();
    if problems > 0 {
        println!(
            "  warnings  {} objects deleted after the snapshot, {} missing, {} damaged (listed \
             in manifest.json)",
            b.deleted_since_snapshot.len(),
            b.missing.len(),
            b.digest_mismatch.len()
        );
    }
    if !m.secrets_from_configuration.is_empty() {
        println!(
            "  not in the backup (from the configuration): {}",
            m.secrets_from_configuration.join(", ")
        );
    }
}
