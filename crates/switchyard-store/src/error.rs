//! Failures of the store's own operations (opening, migrating, backing up). Failures of the
//! [`StateStore`](switchyard_core::ports::StateStore) methods are core's `StoreError`.

use std::path::PathBuf;

/// Why the state database could not be opened or backed up. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SqliteStoreError {
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
    #[error("cannot bring the state database {} to this version's schema", path.display())]
    Migrate {
        path: PathBuf,
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
