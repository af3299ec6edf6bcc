//! A store under test on either backend, and a way around it for what the store itself never
//! does (tampering, injected failures). SQLite stores live in temporary directories; PostgreSQL
//! stores each get a fresh database on the server `SWITCHYARD_TEST_POSTGRES` names (an admin
//! URL such as `postgres://switchyard:switchyard@127.0.0.1:5433/postgres`; `scripts/postgres`
//! starts one, `scripts/test` runs these tests with it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{ConnectOptions, Connection};
use switchyard_core::ports::{FlagStore, StateStore, TokenStore};
use switchyard_experiments::port::ExperimentStore;
use switchyard_store::{DB_FILE_NAME, PostgresStore, SqliteStore, Store};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a store's data is: kept alive (the temporary directory) as long as the fixture.
pub enum Place {
    Sqlite(TempDir),
    Postgres { url: String },
}

pub struct Fixture {
    pub place: Place,
    pub store: Store,
}

/// The admin URL of the test server.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_POSTGRES").expect(
        "SWITCHYARD_TEST_POSTGRES names the PostgreSQL server for these tests \
         (scripts/postgres start prints one; scripts/test sets it)",
    )
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("the URL names a database");
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// A database of its own on the test server, for one test.
pub async fn fresh_postgres_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_admin_url();
    let name = format!(
        "sy_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    with_database(&admin, &name)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0u8) % 1_000_000
}

impl Fixture {
    pub async fn open(backend: Backend) -> Fixture {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::Sqlite(SqliteStore::open(dir.path()).await.unwrap());
                Fixture {
                    place: Place::Sqlite(dir),
                    store,
                }
            }
            Backend::Postgres => {
                let url = fresh_postgres_database().await;
                let store = Store::Postgres(PostgresStore::connect(&url).await.unwrap());
                Fixture {
                    place: Place::Postgres { url },
                    store,
                }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite(_) => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// A second store on the same data, as a restarted daemon (or another replica) opens it.
    pub async fn reopen(&self) -> Store {
        match &self.place {
            Place::Sqlite(dir) => Store::Sqlite(SqliteStore::open(dir.path()).await.unwrap()),
            Place::Postgres { url } => Store::Postgres(PostgresStore::connect(url).await.unwrap()),
        }
    }

    pub fn state(&self) -> Arc<dyn StateStore> {
        self.store.state()
    }

    pub fn flags(&self) -> Arc<dyn FlagStore> {
        self.store.flags()
    }

    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        self.store.tokens()
    }

    pub fn experiments(&self) -> Arc<dyn ExperimentStore> {
        self.store.experiments()
    }

    /// `sqlite` or `postgres`, whichever this fixture's backend reads.
    pub fn pick<'a>(&self, sqlite: &'a str, postgres: &'a str) -> &'a str {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }

    /// Runs `sql` on a connection of its own, beside the store.
    pub async fn execute(&self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.place {
            Place::Sqlite(dir) => {
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(dir.path().join(DB_FILE_NAME))
                    .connect()
                    .await?;
                sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await
            }
            Place::Postgres { url } => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::query(sql).execute(&mut conn).await?;
                conn.close().await
            }
        }
    }

    /// Runs each statement, panicking on the first failure.
    pub async fn execute_all(&self, statements: &[&str]) {
        for sql in statements {
            self.execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    /// Makes every insert into `table` fail, until [`Fixture::heal`].
    pub async fn break_inserts(&self, table: &str) {
        let sql = match self.backend() {
            Backend::Sqlite => format!(
                "CREATE TRIGGER injected_failure BEFORE INSERT ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            ),
            Backend::Postgres => format!(
                "CREATE TRIGGER injected_failure BEFORE INSERT ON {table} FOR EACH ROW \
                 EXECUTE FUNCTION switchyard_refuse_change('injected failure')"
            ),
        };
        self.execute(&sql).await.unwrap();
    }

    pub async fn heal(&self, table: &str) {
        self.drop_trigger("injected_failure", table).await;
    }

    /// Drops one of the schema's guards (or an injected trigger).
    pub async fn drop_trigger(&self, trigger: &str, table: &str) {
        let sql = match self.backend() {
            Backend::Sqlite => format!("DROP TRIGGER {trigger}"),
            Backend::Postgres => format!("DROP TRIGGER {trigger} ON {table}"),
        };
        self.execute(&sql).await.unwrap();
    }
}

/// Declares each named test body (`async fn name(backend: Backend)`) twice: in `sqlite::`, and
/// in `postgres::`, ignored unless asked for (`cargo test -- --ignored`, which `scripts/test`
/// runs with a server).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::fixture::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs a PostgreSQL server: SWITCHYARD_TEST_POSTGRES (scripts/test sets it)"]
                async fn $name() {
                    super::$name($crate::fixture::Backend::Postgres).await;
                }
            )*
        }
    };
}
