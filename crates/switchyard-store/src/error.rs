//! Failures of the store's own operations (opening, migrating, backing up). Failures of the
//! [`StateStore`](switchyard_core::ports::StateStore) methods are core's `StoreError`.

use std::path::PathBuf;

/// Why the state store could not be opened or backed up. Each variant names the database: the
/// SQLite file, or the PostgreSQL server as `postgres://user@host:port/database` (never the
/// password).
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    #[error("cannot create the data directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the data directory {} is not writable (read-only file system or no permission); choose another with --data-dir",
        path.display()
    )]
    NotWritable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the state database {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the database URL is not a PostgreSQL URL (postgres://user:password@host:port/database): {reason}"
    )]
    BadUrl { reason: String },
    #[error("cannot connect to the state database {target}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "replicas of schema {running} are running on the state database {target}, and this \
         build's schema {ours} needs migration {migration}, which is not compatible with them; \
         stop every replica and start them all on this build"
    )]
    IncompatibleUpgrade {
        target: String,
        running: i64,
        ours: i64,
        migration: String,
    },
    #[error(
        "the state database {target} has schema version {found}, newer than this build's {known}; \
         run the Switchyard version that wrote it (or a later one)"
    )]
    NewerSchema {
        target: String,
        found: i64,
        known: i64,
    },
    #[error("cannot bring the state database {target} to this version's schema")]
    Migrate {
        target: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("backup target {} already exists; choose a new file", path.display())]
    BackupTargetExists { path: PathBuf },
    #[error("backup target {} is not valid UTF-8, which SQLite needs", path.display())]
    BackupPathNotUtf8 { path: PathBuf },
    #[error("cannot back up the state database to {}", path.display())]
    Backup {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

/// Runs `migrator` and names a database written by a newer build as such: sqlx reports it as a
/// migration it cannot find, which reads like a broken install.
pub(crate) async fn migrate<'a, A>(
    migrator: &sqlx::migrate::Migrator,
    on: A,
    target: &str,
) -> Result<(), StoreOpenError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    migrator.run(on).await.map_err(|source| match source {
        sqlx::migrate::MigrateError::VersionMissing(found) if found > known => {
            StoreOpenError::NewerSchema {
                target: target.to_owned(),
                found,
                known,
            }
        }
        source => StoreOpenError::Migrate {
            target: target.to_owned(),
            source,
        },
    })
}
