//! Switchyard's durable state: applied manifests, each app's stable release, rollouts, the
//! append-only event log, flags and their audit log, experiments and API tokens, behind the
//! store ports of `switchyard-core` (and `switchyard-experiments`), on SQLite (one machine, a
//! file in the data directory) or PostgreSQL (shared by several replicas).
//!
//! It does not interpret what it stores: rollout state belongs to the rollout engine, manifests
//! are validated by `switchyard-core` before they get here. Its job is that every write happens
//! whole (with its events) or not at all, and survives a restart. See `docs/store.md` for the
//! schema, its invariants and backups.
//!
//! - [`sqlite`]: [`SqliteStore`], the database file, its options and backups.
//! - [`postgres`]: [`PostgresStore`], the connection pool and the write lock.
//! - `ops/`: every store operation, written once and compiled for each backend.
//! - [`Store`]: either backend, as the daemon holds it.
//! - [`error`]: [`StoreOpenError`], what can fail while opening or backing up.
//! - [`flag_audit`]: the flag audit log's hash chain (canonical form, hashing, verification).
//! - [`event_chain`]: the event log's hash chain, the same way.

pub mod backup;
mod codec;
pub mod error;
pub mod event_chain;
pub mod flag_audit;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use switchyard_core::ports::{FlagStore, StateStore, TokenStore};
use switchyard_experiments::port::ExperimentStore;

pub use error::StoreOpenError;
pub use postgres::{Changes, Heard, PostgresStore};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// Statements slower than this are logged, at info: a backup's whole-table reads take seconds on
/// a large store by design, and sqlx's default (a warning) would alarm whoever runs it.
pub(crate) const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(1);
pub(crate) const SLOW_STATEMENT_LEVEL: log::LevelFilter = log::LevelFilter::Info;

/// What changed, as other replicas of a PostgreSQL store are told after each commit (the
/// payload of a `NOTIFY switchyard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Flags or segments.
    Flags,
    /// API tokens.
    Tokens,
    /// Applied manifests, or an experiment stopped.
    Manifests,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Flags => "flags",
            Topic::Tokens => "tokens",
            Topic::Manifests => "manifests",
        }
    }

    pub fn parse(text: &str) -> Option<Topic> {
        [Topic::Flags, Topic::Tokens, Topic::Manifests]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// `$body` with `$store` bound to whichever backend `$self` holds.
macro_rules! each_backend {
    ($self:expr, $store:ident => $body:expr) => {
        match $self {
            Store::Sqlite($store) => $body,
            Store::Postgres($store) => $body,
        }
    };
}

/// The state store of a daemon: the SQLite file in its data directory, or a PostgreSQL database.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the SQLite database in `data_dir`, or connects to `database_url` when one is given.
    ///
    /// # Errors
    /// As [`SqliteStore::open`] and [`PostgresStore::connect`].
    pub async fn open(
        data_dir: &std::path::Path,
        database_url: Option<&str>,
    ) -> Result<Store, StoreOpenError> {
        match database_url {
            Some(url) => PostgresStore::connect(url).await.map(Store::Postgres),
            None => SqliteStore::open(data_dir).await.map(Store::Sqlite),
        }
    }

    /// Where the state lives: the SQLite file, or `postgres://user@host:port/database`.
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => s
                .path()
                .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string()),
            Store::Postgres(p) => p.target().to_owned(),
        }
    }

    pub fn state(&self) -> Arc<dyn StateStore> {
        each_backend!(self, store => Arc::new(store.clone()))
    }

    pub fn flags(&self) -> Arc<dyn FlagStore> {
        each_backend!(self, store => Arc::new(store.clone()))
    }

    pub fn tokens(&self) -> Arc<dyn TokenStore> {
        each_backend!(self, store => Arc::new(store.clone()))
    }

    pub fn notifications(&self) -> Arc<dyn switchyard_core::ports::NotificationStore> {
        each_backend!(self, store => Arc::new(store.clone()))
    }

    pub fn experiments(&self) -> Arc<dyn ExperimentStore> {
        each_backend!(self, store => Arc::new(store.clone()))
    }

    /// See [`SqliteStore::export`] (the same on both backends).
    ///
    /// # Errors
    /// As `export`.
    pub async fn export(
        &self,
        out: impl std::io::Write,
    ) -> Result<backup::End, backup::BackupError> {
        each_backend!(self, store => store.export(out).await)
    }

    /// See [`SqliteStore::import`] (the same on both backends).
    ///
    /// # Errors
    /// As `import`.
    pub async fn import(
        &self,
        input: impl std::io::BufRead,
    ) -> Result<backup::End, backup::BackupError> {
        each_backend!(self, store => store.import(input).await)
    }

    /// Waits for running queries and closes every connection.
    pub async fn close(&self) {
        each_backend!(self, store => store.close().await);
    }
}
