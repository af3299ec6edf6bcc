//! [`PostgresStore`]: Switchyard's state in a PostgreSQL database, shared by every replica that
//! connects to it. The store's operations are the shared ones in `ops/`, compiled here for
//! PostgreSQL.

#[path = "ops/mod.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "the shared operations are compiled once per backend on purpose (ops/mod.rs)"
)]
mod ops;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, Transaction};
use switchyard_core::ports::StoreError;

use crate::codec;
use crate::error::StoreOpenError;

type Db = Postgres;
type Conn = sqlx::PgConnection;
type Pool = PgPool;
type Store = PostgresStore;

/// The `values_json` of a group of rows in one text, separated by U+001E (which JSON text
/// never holds raw): one row per variant instead of one per unit when results read every unit.
const CONCAT_VALUES: &str = "string_agg(values_json, chr(30))";

/// What backups taken here name as their source.
const SOURCE: &str = "postgres";

/// Restored rollouts keep their ids; the identity column takes them only when told to.
const OVERRIDING_IDENTITY: &str = " OVERRIDING SYSTEM VALUE";

/// Connections per process: writes take turns (see [`begin_write`]), reads run beside them.
const POOL_SIZE: u32 = 8;

/// How long opening the store, or a request for a pooled connection, waits for the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the server lets a session sit idle inside a transaction before ending it. Switchyard's
/// transactions never wait on the client for long (milliseconds between statements), so this
/// only ends those of a paused process, which would otherwise block every other replica's writes
/// and campaigns; a takeover then takes at most about the lease TTL or this, whichever is longer.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(2);

/// The advisory lock every write transaction takes first (an arbitrary constant: "SWYD" in
/// ASCII). Other applications sharing the database do not use it.
const WRITE_LOCK: i64 = 0x5357_5944;

/// The schema, embedded at compile time from `migrations/postgres`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// [`PostgresStore::fence`] before fencing is turned on: writes are not checked.
const UNFENCED: i64 = -1;

/// Switchyard's state in one PostgreSQL database. Cloning is cheap and shares the pool and the
/// fencing token.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// `postgres://user@host:port/database`, without the password, for messages.
    target: String,
    /// The leader epoch this process writes as: [`UNFENCED`] (one daemon, no leader
    /// protocol), 0 (a replica that does not lead: every write is refused), or the epoch of the
    /// lease it holds, compared with the database's inside every write transaction.
    fence: Arc<AtomicI64>,
}

/// The leader lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderLease {
    /// Who leads: the replica's own name for itself.
    pub holder: String,
    /// The leader's API, for followers to forward writes to.
    pub api: String,
    pub epoch: i64,
    /// Milliseconds until the lease runs out by the database's clock; negative once it has.
    pub expires_in_ms: i64,
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date. Several processes
    /// may do this at once: the migration runs under PostgreSQL's advisory lock.
    ///
    /// # Errors
    /// The URL is not a PostgreSQL URL, the server cannot be reached or refuses the credentials
    /// within 10 s, or the schema cannot be migrated — including a database written by a newer
    /// Switchyard.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreOpenError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreOpenError::BadUrl {
                reason: format!("`{}` does not start with postgres://", redact(url)),
            });
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreOpenError::BadUrl {
                reason: e.to_string(),
            })?
            .application_name("switchyard")
            // A process paused mid-transaction (SIGSTOP, a frozen VM) would hold the write lock
            // until it resumed, and no other replica could take the lease over: the server ends
            // such a session, rolling its transaction back, after IDLE_IN_TRANSACTION.
            .options([(
                "idle_in_transaction_session_timeout",
                format!("{}ms", IDLE_IN_TRANSACTION.as_millis()),
            )])
            .log_slow_statements(crate::SLOW_STATEMENT_LEVEL, crate::SLOW_STATEMENT);
        let target = describe(&options);
        let failed = |source| StoreOpenError::Connect {
            target: target.clone(),
            source,
        };
        // One connection first, so that a refused connection or a wrong password is reported at
        // once rather than after the pool's retries; an address that never answers is given up
        // after CONNECT_TIMEOUT.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| failed(sqlx::Error::PoolTimedOut))?
            .map_err(failed)?;
        first.close().await.map_err(failed)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(failed)?;
        check_upgrade(&pool, &MIGRATOR, &target).await?;
        crate::error::migrate(&MIGRATOR, &pool, &target).await?;
        tracing::info!(database = %target, "state database opened");
        Ok(Self {
            pool,
            target,
            fence: Arc::new(AtomicI64::new(UNFENCED)),
        })
    }

    /// Turns fencing on for this store and its clones: from now on it writes only while it
    /// holds the leader lease ([`PostgresStore::campaign`]), and each write transaction checks,
    /// under the write lock, that the database's epoch is still the one it won.
    pub fn enable_fencing(&self) {
        let _ = self
            .fence
            .compare_exchange(UNFENCED, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The epoch this process leads with; `None` when it does not lead (or fencing is off).
    pub fn epoch(&self) -> Option<i64> {
        let epoch = self.fence.load(Ordering::SeqCst);
        (epoch > 0).then_some(epoch)
    }

    /// Takes the leader lease if nobody holds a live one: a new epoch, running out after `ttl`
    /// by the database's clock. Returns the epoch won, or `None` while another replica's lease
    /// runs. Under the write lock, so that no write of the previous leader lands after it.
    ///
    /// # Errors
    /// Backend failures.
    ///
    /// With `reclaim`, a live lease that names `api` is taken over too: the caller listens on
    /// that address itself, so the process that holds the lease no longer serves there — it is
    /// this replica's predecessor, killed or crashed, and waiting for its lease to run out would
    /// only delay the restart.
    pub async fn campaign(
        &self,
        holder: &str,
        api: &str,
        ttl: Duration,
        reclaim: bool,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(codec::backend("begin a campaign"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(codec::backend("take the write lock"))?;
        let won: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leader_lease (id, holder, api, epoch, expires_at, schema) \
             VALUES (1, $1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond', $5) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, api = excluded.api, \
             epoch = leader_lease.epoch + 1, expires_at = excluded.expires_at, \
             schema = excluded.schema \
             WHERE leader_lease.expires_at < clock_timestamp() OR ($4 AND leader_lease.api = $2) \
             RETURNING epoch",
        )
        .bind(holder)
        .bind(api)
        .bind(millis(ttl))
        .bind(reclaim)
        .bind(schema_of(&MIGRATOR))
        .fetch_optional(&mut *tx)
        .await
        .map_err(codec::backend("take the leader lease"))?;
        tx.commit()
            .await
            .map_err(codec::backend("commit a campaign"))?;
        if let Some(epoch) = won {
            self.fence.store(epoch, Ordering::SeqCst);
            tracing::info!(epoch, holder, "leader lease taken");
        }
        Ok(won)
    }

    /// Extends the lease this process holds by `ttl` from now. Returns `false`, and stops
    /// writing, when it no longer holds it (another replica took over).
    ///
    /// # Errors
    /// Backend failures (the lease may still be held: renew again before it runs out).
    pub async fn renew(&self, ttl: Duration) -> Result<bool, StoreError> {
        let Some(epoch) = self.epoch() else {
            return Ok(false);
        };
        let renewed: Option<i64> = sqlx::query_scalar(
            "UPDATE leader_lease SET expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
             WHERE id = 1 AND epoch = $1 RETURNING epoch",
        )
        .bind(epoch)
        .bind(millis(ttl))
        .fetch_optional(&self.pool)
        .await
        .map_err(codec::backend("renew the leader lease"))?;
        if renewed.is_none() {
            self.fence.store(0, Ordering::SeqCst);
            tracing::warn!(epoch, "the leader lease was taken over");
        }
        Ok(renewed.is_some())
    }

    /// Gives the lease up at once (a clean shutdown), so that a follower takes over without
    /// waiting for it to run out. Nothing happens if this process does not lead.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn resign(&self) -> Result<(), StoreError> {
        let Some(epoch) = self.epoch() else {
            return Ok(());
        };
        self.fence.store(0, Ordering::SeqCst);
        sqlx::query(
            "UPDATE leader_lease SET expires_at = clock_timestamp() - interval '1 millisecond' \
             WHERE id = 1 AND epoch = $1",
        )
        .bind(epoch)
        .execute(&self.pool)
        .await
        .map_err(codec::backend("give up the leader lease"))?;
        Ok(())
    }

    /// The lease as the database holds it; `None` before any replica led.
    ///
    /// # Errors
    /// Backend failures.
    pub async fn leader(&self) -> Result<Option<LeaderLease>, StoreError> {
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT holder, api, epoch, \
             CAST(FLOOR(EXTRACT(EPOCH FROM expires_at - clock_timestamp()) * 1000) AS BIGINT) \
             FROM leader_lease WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(codec::backend("read the leader lease"))?;
        Ok(row.map(|(holder, api, epoch, expires_in_ms)| LeaderLease {
            holder,
            api,
            epoch,
            expires_in_ms,
        }))
    }

    /// Listens for the changes other replicas commit.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub async fn listen(&self) -> Result<Changes, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(codec::backend("listen for changes"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(codec::backend("listen for changes"))?;
        Ok(Changes { listener })
    }

    /// The database as `postgres://user@host:port/database`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Waits for running queries and closes every connection. Every clone of this store fails
    /// afterwards.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The marker a migration carries, on a line of its own, when replicas of the schema before it
/// keep working on the schema after it (it only adds what they ignore: a table, a nullable
/// column, an index).
pub const COMPATIBLE_MARKER: &str = "-- switchyard: compatible with the previous schema";

/// The newest schema version `migrator` knows.
fn schema_of(migrator: &sqlx::migrate::Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Before migrating a database that replicas of an older build are using (a live leader lease
/// of an older schema), checks that every migration about to run says it is compatible with
/// the schema before it; refuses otherwise, changing nothing. Upgrading every replica at once
/// (stop them all, start the new build) is always possible.
///
/// # Errors
/// `IncompatibleUpgrade`, or the database cannot be read.
pub async fn check_upgrade(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
    target: &str,
) -> Result<(), StoreOpenError> {
    let failed = |source| StoreOpenError::Connect {
        target: target.to_owned(),
        source,
    };
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .or_else(|e| match &e {
                // A new database: nothing applied, no replica running.
                sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(None),
                _ => Err(e),
            })
            .map_err(failed)?;
    let applied = applied.unwrap_or(0);
    let exists: Option<String> =
        sqlx::query_scalar("SELECT CAST(to_regclass('leader_lease') AS TEXT)")
            .fetch_one(pool)
            .await
            .map_err(failed)?;
    if exists.is_none() {
        return Ok(());
    }
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT schema FROM leader_lease WHERE id = 1 AND expires_at > clock_timestamp()",
    )
    .fetch_optional(pool)
    .await
    .map_err(failed)?;
    let Some(running) = running.filter(|r| *r < schema_of(migrator)) else {
        return Ok(());
    };
    let incompatible = migrator.iter().find(|m| {
        m.version > applied
            && !m
                .sql
                .as_str()
                .lines()
                .any(|l| l.trim() == COMPATIBLE_MARKER)
    });
    match incompatible {
        Some(m) => Err(StoreOpenError::IncompatibleUpgrade {
            target: target.to_owned(),
            running,
            ours: schema_of(migrator),
            migration: format!("{:04}_{}", m.version, m.description.replace(' ', "_")),
        }),
        None => Ok(()),
    }
}

/// `postgres://user@host:port/database` for messages: never the password.
fn describe(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
    )
}

/// The URL with any password replaced by `***`, for an error about the URL itself.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Starts a write transaction that holds Switchyard's write lock from its first statement, so
/// that writers — from this process or any other replica — take turns exactly as they do on
/// SQLite: the checks a write does first (is a rollout active? what is the head of the event
/// log?) hold until it commits. The lock is released at commit or rollback.
///
/// With fencing on, the transaction then reads the leader epoch and refuses to go on
/// (`NotLeader`) unless it is the one this process won: a deposed leader — paused past its
/// lease, then resumed — writes nothing, since a campaign takes the same lock to raise it.
async fn begin_write(store: &PostgresStore) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = store
        .pool
        .begin()
        .await
        .map_err(codec::backend("begin a write transaction"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(codec::backend("take the write lock"))?;
    let held = store.fence.load(Ordering::SeqCst);
    if held != UNFENCED {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM leader_lease WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(codec::backend("read the leader epoch"))?;
        if held == 0 || current != Some(held) {
            drop(tx.rollback().await);
            return Err(StoreError::NotLeader { held, current });
        }
    }
    Ok(tx)
}

/// A duration as whole milliseconds for SQL.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The channel replicas are told of changes on.
const CHANNEL: &str = "switchyard";

/// Tells the other replicas what changed, once the transaction commits (`NOTIFY` is
/// transactional: a rolled-back change tells nothing).
async fn notify(conn: &mut Conn, topic: crate::Topic) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(topic.as_str())
        .execute(&mut *conn)
        .await
        .map_err(codec::backend("notify the other replicas"))?;
    Ok(())
}

/// What a replica hears from the others ([`PostgresStore::listen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A change of this kind was committed.
    Changed(crate::Topic),
    /// The connection was lost (and is being made again): changes may have been missed, so
    /// everything must be read again.
    Lost,
}

/// The changes the other replicas commit, as they commit them.
pub struct Changes {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl Changes {
    /// The next change; `Lost` after the connection dropped (it reconnects on the next call).
    pub async fn next(&mut self) -> Heard {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notification)) => {
                    if let Some(topic) = crate::Topic::parse(notification.payload()) {
                        return Heard::Changed(topic);
                    }
                }
                Ok(None) => return Heard::Lost,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for changes failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return Heard::Lost;
                }
            }
        }
    }
}

/// A read-only transaction that sees one snapshot for all its statements.
async fn begin_snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(codec::backend("begin a read snapshot"))
}

/// After a restore, the rollout ids' sequence continues past the largest restored id.
async fn after_import(conn: &mut Conn) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('rollouts', 'id'), COALESCE(MAX(id), 0) + 1, false) \
         FROM rollouts",
    )
    .execute(&mut *conn)
    .await
    .map_err(codec::backend(
        "move the rollout ids past the restored ones",
    ))?;
    for table in ["pipeline_runs", "notifications"] {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, \
             false) FROM {table}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .map_err(codec::backend("move the ids past the restored ones"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("mysql://sy:secret@db:5432/sy"),
            "mysql://sy:***@db:5432/sy"
        );
        assert_eq!(redact("postgres://sy@db/sy"), "postgres://sy@db/sy");
        assert_eq!(redact("not a url"), "not a url");
    }
}
