//! The database side of a backup: a consistent snapshot of the live SQLite file taken through
//! SQLite, and what the snapshot says (migrations, counts, the objects it references).

use super::manifest::Counts;
use anyhow::{Context, bail};
use sqlx::{
    ConnectOptions, Connection, Row, SqliteConnection,
    sqlite::{SqliteConnectOptions, SqliteRow},
};
use std::{path::Path, time::Duration};

/// A connection to the live database, which must exist (never created here). No pragma that
/// writes is sent: the journal mode and the schema stay the server's.
pub async fn open_live(path: &Path) -> anyhow::Result<SqliteConnection> {
    if !path.is_file() {
        bail!(
            "no embedded database at {} (is data_dir right? the server creates it on first start)",
            path.display()
        );
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot open the database {}", path.display()))
}

/// Writes a point-in-time copy of the live database to the new file `dest`.
///
/// `VACUUM INTO` rather than the online backup API: it is plain SQL (sqlx exposes no backup
/// API, and this crate forbids the unsafe code a raw handle would need), and it runs inside one
/// read transaction, so the copy is the database exactly as of that transaction's start, with
/// every transaction committed before it and none after. In WAL mode that read transaction does
/// not block the server's writers, which keep committing to the WAL meanwhile (the online backup
/// API, stepped, would restart whenever another connection writes; in one step it is the same
/// read transaction). The result is one self-contained, compacted file: the WAL is folded in,
/// no `-wal`/`-shm` companion is needed.
pub async fn vacuum_into(live: &mut SqliteConnection, dest: &Path) -> anyhow::Result<()> {
    let target = dest
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", dest.display()))?;
    sqlx::query("VACUUM INTO ?1")
        .bind(target)
        .execute(&mut *live)
        .await
        .with_context(|| format!("cannot snapshot the database into {}", dest.display()))?;
    Ok(())
}

/// An object a file version in the snapshot refers to.
pub struct ObjectRef {
    pub key: String,
    /// A ready version (its object must exist); else a pending upload (maybe not sent yet).
    pub ready: bool,
    pub size: i64,
    /// The digest recorded for a ready version.
    pub sha256: Option<String>,
}

/// What a snapshot holds.
pub struct Contents {
    pub migrations: Vec<i64>,
    pub counts: Counts,
    pub objects: Vec<ObjectRef>,
}

/// Opens the snapshot read-only (immutable: no lock, no journal file beside it), checks it, and
/// reads its migrations, counts and object references.
pub async fn inspect(path: &Path) -> anyhow::Result<Contents> {
    let mut conn = open_snapshot(path).await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut conn)
        .await
        .context("cannot check the database snapshot")?;
    if check != "ok" {
        bail!("the database snapshot fails SQLite's quick_check: {check}");
    }
    let contents = Contents {
        migrations: migrations(&mut conn).await?,
        counts: counts(&mut conn).await?,
        objects: objects(&mut conn).await?,
    };
    conn.close().await.ok();
    Ok(contents)
}

async fn open_snapshot(path: &Path) -> anyhow::Result<SqliteConnection> {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .connect()
        .await
        .with_context(|| format!("cannot open the database snapshot {}", path.display()))
}

async fn migrations(conn: &mut SqliteConnection) -> anyhow::Result<Vec<i64>> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(conn)
        .await
        .context("cannot read the migrations of the snapshot (is the database migrated?)")
}

async fn counts(conn: &mut SqliteConnection) -> anyhow::Result<Counts> {
    let row: SqliteRow = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM conversations),
                (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM files WHERE NOT is_folder),
                (SELECT COUNT(*) FROM file_versions WHERE status = 'ready')",
    )
    .fetch_one(conn)
    .await
    .context("cannot count the rows of the snapshot")?;
    Ok(Counts {
        users: row.try_get(0)?,
        conversations: row.try_get(1)?,
        messages: row.try_get(2)?,
        files: row.try_get(3)?,
        ready_versions: row.try_get(4)?,
    })
}

/// Every object a file version refers to. Objects only queued for deletion (`blob_deletions`)
/// are left out: no row serves them, and the restored server's cleanup job forgets them.
async fn objects(conn: &mut SqliteConnection) -> anyhow::Result<Vec<ObjectRef>> {
    let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT blob_key, status, size, sha256 FROM file_versions
         ORDER BY blob_key, status = 'ready' DESC",
    )
    .fetch_all(conn)
    .await
    .context("cannot list the file versions of the snapshot")?;
    let mut objects: Vec<ObjectRef> = rows
        .into_iter()
        .map(|(key, status, size, sha256)| {
            let ready = status == "ready";
            ObjectRef {
                key,
                ready,
                size,
                sha256: sha256.filter(|_| ready),
            }
        })
        .collect();
    // One object per key (a key belongs to one version; a ready row comes first).
    objects.dedup_by(|b, a| a.key == b.key);
    Ok(objects)
}

/// True when the live database still has a file version on `key`.
pub async fn still_referenced(live: &mut SqliteConnection, key: &str) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM file_versions WHERE blob_key = ?1")
        .bind(key)
        .fetch_one(live)
        .await
        .context("cannot look up an object in the live database")?;
    Ok(n > 0)
}
