//! `switchyard backup`, `restore` and `migrate-store`: the state store opened directly, not
//! through a daemon (docs/store.md, "Backup and restore").

use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use switchyard_store::backup::End;
use switchyard_store::{DB_FILE_NAME, PostgresStore, SqliteStore, Store};

use crate::cli::StoreArgs;

async fn open(args: &StoreArgs) -> anyhow::Result<Store> {
    Store::open(&args.data_dir, args.database_url.as_deref())
        .await
        .context("while opening the state store")
}

/// Writes `<to>.partial`, then renames it: a backup file either is complete or does not exist.
pub async fn backup(args: &StoreArgs, to: &Path) -> anyhow::Result<ExitCode> {
    if args.database_url.is_none() && !args.data_dir.join(DB_FILE_NAME).is_file() {
        bail!(
            "there is no {DB_FILE_NAME} in {} to back up (--data-dir, or --database-url for PostgreSQL)",
            args.data_dir.display()
        );
    }
    if to.exists() {
        bail!("{} exists already; choose a new file", to.display());
    }
    let store = open(args).await?;
    let started = Instant::now();
    let partial = partial_path(to);
    let file = std::fs::File::create_new(&partial)
        .with_context(|| format!("while creating {}", partial.display()))?;
    let end = match store.export(BufWriter::new(&file)).await {
        Ok(end) => end,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(anyhow::Error::new(e).context("while writing the backup"));
        }
    };
    file.sync_all()
        .with_context(|| format!("while writing {}", partial.display()))?;
    std::fs::rename(&partial, to).with_context(|| format!("while naming {}", to.display()))?;
    store.close().await;
    outln!(
        "backed up {} from {} to {} in {:.2} s",
        summary(&end),
        store.describe(),
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: &StoreArgs, from: &Path) -> anyhow::Result<ExitCode> {
    let file =
        std::fs::File::open(from).with_context(|| format!("while opening {}", from.display()))?;
    let store = open(args).await?;
    let started = Instant::now();
    let end = store
        .import(BufReader::new(file))
        .await
        .with_context(|| format!("while restoring {}", from.display()))?;
    store.close().await;
    outln!(
        "restored {} into {} in {:.2} s",
        summary(&end),
        store.describe(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A backup of the SQLite store, restored into PostgreSQL. The backup file stays in the data
/// directory until the move succeeded.
pub async fn migrate(data_dir: &Path, to: &str) -> anyhow::Result<ExitCode> {
    if !data_dir.join(DB_FILE_NAME).is_file() {
        bail!(
            "there is no {DB_FILE_NAME} in {} to move (--data-dir)",
            data_dir.display()
        );
    }
    let started = Instant::now();
    let source = SqliteStore::open(data_dir)
        .await
        .context("while opening the SQLite state store")?;
    let target = PostgresStore::connect(to)
        .await
        .context("while opening the PostgreSQL state store")?;
    let file = data_dir.join(format!("migrate-store-{}.backup", std::process::id()));
    let written = std::fs::File::create_new(&file)
        .with_context(|| format!("while creating {}", file.display()))?;
    let exported = source
        .export(BufWriter::new(&written))
        .await
        .context("while reading the SQLite state store")?;
    source.close().await;
    let read =
        std::fs::File::open(&file).with_context(|| format!("while reading {}", file.display()))?;
    let imported = target.import(BufReader::new(read)).await.with_context(|| {
        format!(
            "while writing {} (the SQLite store is untouched)",
            target.target()
        )
    })?;
    if imported != exported {
        bail!(
            "moved {} but read {}; the PostgreSQL database is left as it is for inspection",
            summary(&imported),
            summary(&exported)
        );
    }
    std::fs::remove_file(&file).with_context(|| format!("while removing {}", file.display()))?;
    target.close().await;
    outln!(
        "moved {} from {} to {} in {:.2} s; start the daemon with --database-url",
        summary(&imported),
        data_dir.join(DB_FILE_NAME).display(),
        target.target(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

/// "1,204 rows (apps 2, rollouts 5, events 1,180, …)", tables without rows left out.
fn summary(end: &End) -> String {
    let total: u64 = end.rows.values().sum();
    let tables: Vec<String> = end
        .rows
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    format!("{total} rows ({})", tables.join(", "))
}
