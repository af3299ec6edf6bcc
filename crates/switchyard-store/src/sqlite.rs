//! [`SqliteStore`]: the database file, its connection pool, schema migrations and backups. The
//! store's operations are the shared ones in `ops/`, compiled here for SQLite.

#[path = "ops/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the shared operations are compiled once per backend on purpose (ops/mod.rs)"
)]
mod ops;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Sqlite, Transaction};
use switchyard_core::ports::StoreError;

use crate::codec;
use crate::error::StoreOpenError;

type Db = Sqlite;
type Conn = sqlx::SqliteConnection;
type Pool = SqlitePool;
type Store = SqliteStore;

/// The `values_json` of a group of rows in one text, separated by U+001E (which JSON text
/// never holds raw): one row per variant instead of one per unit when results read every unit.
const CONCAT_VALUES: &str = "group_concat(values_json, char(30))";

/// What backups taken here name as their source.
const SOURCE: &str = "sqlite";

/// An `AUTOINCREMENT` key takes explicit values as they are.
const OVERRIDING_IDENTITY: &str = "";

/// The name of the database file inside the data directory.
pub const DB_FILE_NAME: &str = "switchyard.db";

/// SQLite runs one writer at a time; a few connections let reads (the API, the event stream)
/// proceed beside it without queueing behind a write.
const POOL_SIZE: u32 = 4;

/// How long a connection waits for another's write lock before failing with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, embedded at compile time from `migrations/`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Whether a pooled connection can be handed out (`false` closes it and the pool opens a fresh
/// one). A write that failed at `COMMIT` — a full disk, where SQLite rolls the transaction back
/// by itself — leaves the driver believing a transaction is still open, and every later `BEGIN`
/// on that connection would fail; such a connection is replaced, so the store recovers as soon
/// as the disk has room again. The ping first runs the rollback the failed transaction queued.
async fn healthy(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection as _;
    if conn.ping().await.is_err() {
        return Ok(false);
    }
    let broken = conn.is_in_transaction();
    if broken {
        tracing::warn!("a database connection left in a failed transaction is replaced");
    }
    Ok(!broken)
}

/// Creates and removes a file in `data_dir`, so that a directory Switchyard cannot write to is
/// named as such rather than as SQLite's "unable to open database file".
async fn check_writable(data_dir: &Path) -> Result<(), StoreOpenError> {
    let probe = data_dir.join(".switchyard-write-check");
    let written = tokio::fs::write(&probe, b"").await;
    let _ = tokio::fs::remove_file(&probe).await;
    written.map_err(|source| StoreOpenError::NotWritable {
        path: data_dir.to_path_buf(),
        source,
    })
}

/// Switchyard's state in one SQLite database. Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens (creating when missing) `data_dir/switchyard.db` and brings its schema up to date.
    ///
    /// The file is in WAL mode (readers never block the writer), with foreign keys enforced,
    /// `synchronous = FULL` (a committed transition survives power loss, not only a crash; writes
    /// are rare enough that the fsync does not matter) and a busy timeout.
    ///
    /// # Errors
    /// The directory cannot be created, the file cannot be opened, or its schema cannot be
    /// migrated — including a database written by a newer Switchyard, whose migrations this build
    /// does not know.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreOpenError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| StoreOpenError::CreateDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        check_writable(data_dir).await?;
        let path = data_dir.join(DB_FILE_NAME);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .log_slow_statements(crate::SLOW_STATEMENT_LEVEL, crate::SLOW_STATEMENT);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .before_acquire(|conn, _| Box::pin(healthy(conn)))
            .connect_with(options)
            .await
            .map_err(|source| StoreOpenError::Open {
                path: path.clone(),
                source,
            })?;
        tracing::info!(path = %path.display(), "state database opened");
        Self::migrated(pool, Some(path)).await
    }

    /// A store that lives in memory and vanishes when dropped; for tests and trials.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], without the file.
    pub async fn open_in_memory() -> Result<SqliteStore, StoreOpenError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Every connection to `:memory:` is a database of its own, so the pool holds exactly one
        // connection and never lets it go.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|source| StoreOpenError::Open {
                path: PathBuf::from(":memory:"),
                source,
            })?;
        Self::migrated(pool, None).await
    }

    async fn migrated(pool: SqlitePool, path: Option<PathBuf>) -> Result<Self, StoreOpenError> {
        let target = path
            .as_deref()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string());
        crate::error::migrate(&MIGRATOR, &pool, &target).await?;
        Ok(Self { pool, path })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes a consistent copy of the whole database to `target` (`VACUUM INTO`) while the
    /// store stays in use. The copy is a complete database: open its directory with
    /// [`SqliteStore::open`] after naming it `switchyard.db`.
    ///
    /// # Errors
    /// `target` exists already or is not UTF-8, or SQLite cannot write it.
    pub async fn backup_to(&self, target: &Path) -> Result<(), StoreOpenError> {
        // VACUUM INTO refuses an existing non-empty file too; checking first gives a clear error
        // and never overwrites an earlier backup.
        if tokio::fs::try_exists(target).await.unwrap_or(false) {
            return Err(StoreOpenError::BackupTargetExists {
                path: target.to_path_buf(),
            });
        }
        let Some(text) = target.to_str() else {
            return Err(StoreOpenError::BackupPathNotUtf8 {
                path: target.to_path_buf(),
            });
        };
        sqlx::query("VACUUM INTO $1")
            .bind(text)
            .execute(&self.pool)
            .await
            .map_err(|source| StoreOpenError::Backup {
                path: target.to_path_buf(),
                source,
            })?;
        tracing::info!(target = %target.display(), "state store backed up");
        Ok(())
    }

    /// Waits for running queries and closes every connection (checkpointing the WAL). Every
    /// clone of this store fails afterwards.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Starts a write transaction holding the write lock from its first statement.
///
/// A plain (deferred) `BEGIN` takes the lock at the first write; if another connection wrote
/// since this transaction's first read, SQLite fails it with `SQLITE_BUSY` at once, without
/// waiting. `BEGIN IMMEDIATE` makes writers queue on the busy timeout instead, and makes the
/// checks a write does first (is a rollout active?) hold until it commits.
async fn begin_write(store: &SqliteStore) -> Result<Transaction<'static, Sqlite>, StoreError> {
    store
        .pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(codec::backend("begin a write transaction"))
}

/// Nothing to tell: one daemon owns a SQLite store.
#[allow(
    clippy::unused_async,
    reason = "the same signature as PostgreSQL's, which has work to do"
)]
async fn notify(_conn: &mut Conn, _topic: crate::Topic) -> Result<(), StoreError> {
    Ok(())
}

/// A read transaction: in WAL mode its first read fixes the snapshot every later read sees,
/// while writers carry on.
async fn begin_snapshot(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin()
        .await
        .map_err(codec::backend("begin a read snapshot"))
}

/// Nothing to do after a restore: SQLite moves `AUTOINCREMENT` past the largest id inserted.
#[allow(
    clippy::unused_async,
    reason = "the same signature as PostgreSQL's, which has work to do"
)]
async fn after_import(_conn: &mut Conn) -> Result<(), StoreError> {
    Ok(())
}
