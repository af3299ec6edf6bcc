//! Backups and restores (the file format is `crate::backup`'s): every table read in one
//! consistent snapshot while the store stays in use, and a restore into an empty store in one
//! write transaction, so that a failed restore leaves the store empty.

use std::io::{BufRead, Write};

use futures_util::TryStreamExt as _;
use serde_json::Value;
use sqlx::{AssertSqlSafe, QueryBuilder, Row as _};
use switchyard_core::{Clock, SystemClock};

use super::{Conn, Db, Store, after_import, begin_snapshot, begin_write};
use super::{OVERRIDING_IDENTITY, SOURCE};
use crate::backup::{
    BackupError, ColumnType, End, FORMAT, FORMAT_VERSION, Header, Reader, TABLES, Table, Writer,
};
use crate::codec::backend;

impl Store {
    /// Writes every row of every table to `out`, as one snapshot: writes that commit meanwhile
    /// are either wholly in it or wholly not. Returns the row counts.
    ///
    /// # Errors
    /// The database cannot be read, or `out` cannot be written.
    pub async fn export(&self, out: impl Write) -> Result<End, BackupError> {
        let mut tx = begin_snapshot(&self.pool).await?;
        let header = Header {
            format: FORMAT.to_owned(),
            version: FORMAT_VERSION,
            schema: schema_version(&mut tx).await?,
            source: SOURCE.to_owned(),
            taken_at: SystemClock.now().as_millis(),
        };
        let mut writer = Writer::new(out, &header)?;
        for table in TABLES {
            let mut rows = sqlx::query(AssertSqlSafe(table.select())).fetch(&mut *tx);
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(backend("read a table for the backup"))?
            {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| match ty {
                        ColumnType::Integer => row
                            .try_get::<Option<i64>, _>(i)
                            .map(|v| v.map_or(Value::Null, Value::from)),
                        ColumnType::Text => row
                            .try_get::<Option<String>, _>(i)
                            .map(|v| v.map_or(Value::Null, Value::from)),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend("read a row for the backup"))?;
                writer.row(table, values)?;
            }
        }
        tx.rollback()
            .await
            .map_err(backend("end the backup's snapshot"))?;
        writer.finish()
    }

    /// Restores a backup into this store, which must be empty and of the backup's schema
    /// version. One transaction: on any error (a truncated file, a row that does not fit)
    /// nothing is kept. Returns the row counts.
    ///
    /// # Errors
    /// The file is not a complete backup, the schema versions differ, the store has rows, or
    /// the database refuses a row.
    pub async fn import(&self, input: impl BufRead) -> Result<End, BackupError> {
        let (mut reader, header) = Reader::new(input)?;
        let mut tx = begin_write(self).await?;
        let schema = schema_version(&mut tx).await?;
        if header.schema != schema {
            return Err(BackupError::Schema {
                backup: header.schema,
                store: schema,
            });
        }
        for table in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {}", table.name);
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await
                .map_err(backend("check that the store is empty"))?;
            if rows > 0 {
                return Err(BackupError::NotEmpty {
                    table: table.name.to_owned(),
                });
            }
        }
        let mut end = End::default();
        let mut batch: Vec<Vec<Value>> = Vec::new();
        let mut batch_table: Option<&'static Table> = None;
        while let Some(row) = reader.next_row()? {
            let full = batch.len() * row.table.columns.len() >= MAX_BINDS - row.table.columns.len();
            if batch_table.is_some_and(|t| t.name != row.table.name) || full {
                insert(&mut tx, batch_table, &mut batch).await?;
            }
            batch_table = Some(row.table);
            *end.rows.entry(row.table.name.to_owned()).or_default() += 1;
            batch.push(row.values);
        }
        insert(&mut tx, batch_table, &mut batch).await?;
        after_import(&mut tx).await?;
        tx.commit().await.map_err(backend("commit the restore"))?;
        for table in TABLES {
            end.rows.entry(table.name.to_owned()).or_default();
        }
        Ok(end)
    }
}

/// Bound values per statement: below SQLite's limit (32,766) and PostgreSQL's (65,535).
const MAX_BINDS: usize = 30_000;

/// Inserts `rows` of `table` in one statement and empties `rows`.
async fn insert(
    conn: &mut Conn,
    table: Option<&'static Table>,
    rows: &mut Vec<Vec<Value>>,
) -> Result<(), BackupError> {
    let Some(table) = table.filter(|_| !rows.is_empty()) else {
        return Ok(());
    };
    let overriding = if matches!(table.name, "rollouts" | "pipeline_runs" | "notifications") {
        OVERRIDING_IDENTITY
    } else {
        ""
    };
    let mut sql = QueryBuilder::<Db>::new(table.insert_prefix(overriding));
    sql.push_values(rows.drain(..), |mut values, row| {
        for (value, (_, ty)) in row.into_iter().zip(table.columns) {
            match ty {
                ColumnType::Integer => values.push_bind(value.as_i64()),
                ColumnType::Text => values.push_bind(match value {
                    Value::String(text) => Some(text),
                    _ => None,
                }),
            };
        }
    });
    sql.build()
        .execute(&mut *conn)
        .await
        .map_err(backend("restore rows"))?;
    Ok(())
}

/// The schema version of the store: its newest applied migration.
async fn schema_version(conn: &mut Conn) -> Result<i64, BackupError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(backend("read the schema version"))?;
    Ok(version.unwrap_or(0))
}
