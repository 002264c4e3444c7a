//! The database port: one `Db` enum over a SQLite or PostgreSQL pool, and repositories that own
//! every SQL statement. Each statement is written once (`$1` placeholders work on both backends)
//! and compiled for both pools by the `on_pool!` macro, so types are checked per backend.

use sc_core::{AppError, AppResult};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{path::Path, str::FromStr, time::Duration};

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is configured.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {{
        use tracing::Instrument as _;
        // Each database call is a child span of the request in exported traces.
        async {
            match $db {
                $crate::Db::Sqlite($pool, _) => $body,
                $crate::Db::Postgres($pool) => $body,
            }
        }
        .instrument(sc_core::dependency_span!("db", "db.query"))
        .await
    }};
}

/// Appends `(id, id, …)` of `$ids` to the query builder `$q`.
macro_rules! push_id_list {
    ($q:expr, $ids:expr) => {{
        $q.push("(");
        let mut list = $q.separated(", ");
        for id in $ids {
            list.push_bind(*id);
        }
        list.push_unseparated(")");
    }};
}

pub mod admin;
pub mod ai;
pub mod audit;
pub mod blocks;
pub mod calls;
pub mod chat;
pub mod drive;
pub mod drive_links;
pub mod drive_shares;
pub mod mail;
pub mod maintenance;
pub mod mls;
pub mod notification_prefs;
pub mod notifications;
pub mod polls;
pub mod push;
pub mod realtime;
pub mod retention;
pub mod scheduled_calls;
pub mod sessions;
pub mod tokens;
pub mod users;

#[derive(Clone, Debug)]
pub enum Db {
    /// Readers (and single-statement writes) on the first pool; write transactions on the
    /// writer.
    Sqlite(SqlitePool, SqliteWriter),
    Postgres(PgPool),
}

/// SQLite's single writer as a pool of one connection. Write transactions queue for it in
/// order (the pool's acquire is fair) instead of colliding in the database file, where each
/// loser sleeps in SQLite's busy handler (1, 2, 5, 10, 15… ms) while the lock may already be
/// free again: with a few dozen transactions in flight those sleeps were most of their latency.
#[derive(Clone, Debug)]
pub struct SqliteWriter(SqlitePool);

impl SqliteWriter {
    /// The writer's pool, for tests and tools that check it directly; repositories open write
    /// transactions through [`BeginWrite`].
    pub fn pool(&self) -> &SqlitePool {
        &self.0
    }
}

/// Opens a write transaction: on SQLite `BEGIN IMMEDIATE` on the one writer connection (so it
/// never has to upgrade a read lock and fail), on PostgreSQL a plain `BEGIN` on the pool.
/// A write transaction must not open another one while it runs (on SQLite it would wait for
/// itself).
pub(crate) trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
        db: &Db,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(
        &self,
        db: &Db,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        match db {
            Db::Sqlite(_, SqliteWriter(writer)) => writer.begin_with("BEGIN IMMEDIATE").await,
            Db::Postgres(_) => self.begin().await,
        }
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(
        &self,
        _: &Db,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// Opens the embedded SQLite file: WAL, a busy timeout, foreign keys on.
    pub async fn connect_sqlite(path: &Path, max_connections: u32) -> AppResult<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let open = |max_connections: u32| {
            SqlitePoolOptions::new()
                // A COMMIT that failed (a full disk, say) leaves the connection inside its
                // transaction; handed out again, its later "commits" would only release
                // savepoints and nothing would ever be stored. Such a connection is closed, not
                // reused.
                .after_release(|conn, _| {
                    Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
                })
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone())
        };
        let unavailable = |e: sqlx::Error| {
            AppError::ServiceUnavailable(format!("cannot open SQLite database: {e}"))
        };
        let pool = open(max_connections).await.map_err(unavailable)?;
        let writer = open(1).await.map_err(unavailable)?;
        Ok(Db::Sqlite(pool, SqliteWriter(writer)))
    }

    /// Connects to PostgreSQL (or CockroachDB). The pool connects lazily, so the server starts
    /// and reports `database: down` in /ready rather than refusing to start when the database is
    /// briefly away.
    pub async fn connect_postgres(url: &str, max_connections: u32) -> AppResult<Self> {
        let opts = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(|_| AppError::validation("database_url", "not a valid PostgreSQL URL"))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        Ok(Db::Postgres(pool))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations. Both folders carry the same version numbers.
    pub async fn migrate(&self) -> AppResult<()> {
        match self {
            Db::Sqlite(p, _) => sqlx::migrate!("./migrations/sqlite").run(p).await,
            Db::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await,
        }
        .map_err(|e| AppError::Internal(format!("migration failed: {e}")))
    }

    /// Versions of the bundled migrations (for the schema-parity test and `migrate`).
    pub fn migration_versions(backend: Backend) -> Vec<i64> {
        let m = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        m.iter().map(|m| m.version).collect()
    }

    /// Readiness probe.
    pub async fn ping(&self) -> bool {
        let fut = async { on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.is_ok()) };
        tokio::time::timeout(Duration::from_secs(2), fut)
            .await
            .unwrap_or(false)
    }

    /// (table, column) pairs of the application schema, sorted; used to prove both backends'
    /// migrations define the same tables and columns. SQLite's FTS5 tables are left out: they
    /// are its search index, which PostgreSQL keeps as a GIN index instead.
    pub async fn schema_columns(&self) -> AppResult<Vec<(String, String)>> {
        let mut cols: Vec<(String, String)> = match self {
            Db::Sqlite(p, _) => {
                sqlx::query_as(
                    "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%'
                   AND m.name NOT LIKE 'messages_fts%'",
                )
                .fetch_all(p)
                .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%'",
                )
                .fetch_all(p)
                .await?
            }
        };
        cols.sort();
        Ok(cols)
    }

    pub fn pool_stats(&self) -> (u32, usize) {
        match self {
            Db::Sqlite(p, _) => (p.size(), p.num_idle()),
            Db::Postgres(p) => (p.size(), p.num_idle()),
        }
    }

    pub async fn close(&self) {
        if let Db::Sqlite(_, SqliteWriter(writer)) = self {
            writer.close().await;
        }
        on_pool!(self, p => p.close().await)
    }
}

/// True when the error is a serialization failure (SQLSTATE 40001, CockroachDB's "restart
/// transaction") or SQLite's busy/locked, which are safe to retry from the start.
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(
                d.code().as_deref(),
                Some("40001") | Some("40P01") | Some("5") | Some("6") | Some("517")
            )
        }
        _ => false,
    }
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Runs a write transaction, retrying on serialization failures (CockroachDB-compatible).
#[macro_export]
macro_rules! retry_tx {
    ($op:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $op.await {
                Err(e) if attempt < 5 && $crate::is_retryable(&e) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                other => break other,
            }
        }
    }};
}
