//! Backups as a logical export: every row of every Switchyard table, read in one consistent
//! snapshot, as JSON lines that restore into either backend. The same file moves a SQLite
//! installation to PostgreSQL (`switchyard migrate-store`).
//!
//! ```text
//! {"format":"switchyard-backup","version":1,"schema":5,"source":"sqlite","takenAt":…}
//! {"table":"apps","row":["checkout","{…}",2,null,1000]}
//! …
//! {"end":{"rows":{"apps":1,"events":42,…}}}
//! ```
//!
//! Rows carry their ids and hashes verbatim, so the restored event log and flag audit log verify
//! as the originals did. The trailer counts every table's rows: a truncated file has none, or
//! counts that disagree, and is refused before anything is committed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::ports::StoreError;

/// What this build writes in `format`.
pub const FORMAT: &str = "switchyard-backup";
/// The version of the file layout (not of the schema).
pub const FORMAT_VERSION: u32 = 1;

/// A column's SQL type: every Switchyard column is one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Integer,
    Text,
}

/// A table as the export reads and the import writes it.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    /// The export's order: the primary key.
    pub order_by: &'static str,
}

use ColumnType::{Integer as I, Text as T};

/// Every table of schema 8, parents before children (the import inserts in this order).
pub const TABLES: &[Table] = &[
    Table {
        name: "apps",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("stable_json", T),
            ("updated_at", I),
        ],
        order_by: "name",
    },
    Table {
        name: "templates",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("updated_at", I),
        ],
        order_by: "name",
    },
    Table {
        name: "pipelines",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("updated_at", I),
        ],
        order_by: "name",
    },
    Table {
        name: "deployment_windows",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("updated_at", I),
        ],
        order_by: "name",
    },
    Table {
        name: "pipeline_runs",
        columns: &[
            ("id", I),
            ("subject", T),
            ("version", T),
            ("phase", T),
            ("active", I),
            ("state_json", T),
            ("created_at", I),
            ("updated_at", I),
        ],
        order_by: "id",
    },
    Table {
        name: "notifiers",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("updated_at", I),
        ],
        order_by: "name",
    },
    Table {
        name: "notifications",
        columns: &[
            ("id", I),
            ("notifier", T),
            ("event_id", I),
            ("kind", T),
            ("idempotency_key", T),
            ("sink", T),
            ("url", T),
            ("content_type", T),
            ("body", T),
            ("secret_env", T),
            ("status", T),
            ("attempts", I),
            ("next_attempt_at", I),
            ("last_error", T),
            ("created_at", I),
            ("delivered_at", I),
        ],
        order_by: "id",
    },
    Table {
        name: "notification_cursor",
        columns: &[("id", I), ("event_id", I)],
        order_by: "id",
    },
    Table {
        name: "rollouts",
        columns: &[
            ("id", I),
            ("app", T),
            ("version", T),
            ("phase", T),
            ("active", I),
            ("state_json", T),
            ("created_at", I),
            ("updated_at", I),
        ],
        order_by: "id",
    },
    Table {
        name: "events",
        columns: &[
            ("id", I),
            ("at", I),
            ("app", T),
            ("rollout", I),
            ("kind", T),
            ("actor", T),
            ("reason", T),
            ("data_json", T),
            ("source", T),
            ("prev_hash", T),
            ("hash", T),
        ],
        order_by: "id",
    },
    Table {
        name: "flag_documents",
        columns: &[
            ("kind", T),
            ("key", T),
            ("document_json", T),
            ("position", I),
            ("updated_at", I),
        ],
        order_by: "kind, key",
    },
    Table {
        name: "flag_audit",
        columns: &[
            ("id", I),
            ("at", I),
            ("actor", T),
            ("reason", T),
            ("kind", T),
            ("key", T),
            ("before_json", T),
            ("after_json", T),
            ("prev_hash", T),
            ("hash", T),
        ],
        order_by: "id",
    },
    Table {
        name: "experiments",
        columns: &[
            ("name", T),
            ("manifest_json", T),
            ("generation", I),
            ("updated_at", I),
            ("started_at", I),
            ("stopped_json", T),
        ],
        order_by: "name",
    },
    Table {
        name: "experiment_units",
        columns: &[
            ("experiment", T),
            ("unit", T),
            ("variant", T),
            ("exposed_at", I),
            ("values_json", T),
        ],
        order_by: "experiment, unit",
    },
    Table {
        name: "experiment_variants",
        columns: &[
            ("experiment", T),
            ("variant", T),
            ("units", I),
            ("metrics_json", T),
        ],
        order_by: "experiment, variant",
    },
    Table {
        name: "experiment_event_ids",
        columns: &[
            ("experiment", T),
            ("id", T),
            ("received_at", I),
            ("event_json", T),
        ],
        order_by: "experiment, id",
    },
    Table {
        name: "experiment_snapshots",
        columns: &[("experiment", T), ("at", I), ("snapshot_json", T)],
        order_by: "experiment, at",
    },
    Table {
        name: "tokens",
        columns: &[
            ("id", T),
            ("name", T),
            ("role", T),
            ("apps_json", T),
            ("environments_json", T),
            ("secret_hash", T),
            ("created_at", I),
            ("created_by", T),
            ("revoked_at", I),
            ("revoked_by", T),
        ],
        order_by: "id",
    },
];

impl Table {
    /// `SELECT <columns> FROM <table> ORDER BY <key>`.
    pub(crate) fn select(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            self.name,
            self.order_by
        )
    }

    /// `INSERT INTO <table> (<columns>)<overriding>`, to which the rows' `VALUES` are added.
    pub(crate) fn insert_prefix(&self, overriding: &str) -> String {
        format!(
            "INSERT INTO {} ({}){overriding} ",
            self.name,
            self.column_list()
        )
    }

    fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn by_name(name: &str) -> Option<&'static Table> {
        TABLES.iter().find(|t| t.name == name)
    }
}

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// The schema version of the store it was taken from.
    pub schema: i64,
    /// `sqlite` or `postgres`.
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub taken_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct RowLine {
    table: String,
    row: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EndLine {
    end: End,
}

/// The last line: how many rows of each table the file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub rows: BTreeMap<String, u64>,
}

/// Why a backup could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot {action} the backup file: {source}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the backup file is not a Switchyard backup: line {line}: {message}")]
    Format { line: u64, message: String },
    #[error(
        "the backup file ends at line {line} without its closing line: it is truncated; nothing was restored"
    )]
    Truncated { line: u64 },
    #[error(
        "the backup file holds {found} rows of `{table}` but its closing line counts {counted}; nothing was restored"
    )]
    Count {
        table: String,
        found: u64,
        counted: u64,
    },
    #[error(
        "the backup has schema version {backup} and this store {store}; restore it with the Switchyard version that took it, then upgrade"
    )]
    Schema { backup: i64, store: i64 },
    #[error(
        "the target store is not empty (table `{table}` has rows); restore only into an empty store"
    )]
    NotEmpty { table: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes a backup line by line.
pub(crate) struct Writer<W: Write> {
    out: W,
    end: End,
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(mut out: W, header: &Header) -> Result<Self, BackupError> {
        write_line(&mut out, header)?;
        Ok(Self {
            out,
            end: End::default(),
        })
    }

    pub(crate) fn row(&mut self, table: &Table, row: Vec<Value>) -> Result<(), BackupError> {
        *self.end.rows.entry(table.name.to_owned()).or_default() += 1;
        write_line(
            &mut self.out,
            &RowLine {
                table: table.name.to_owned(),
                row,
            },
        )
    }

    /// Writes the closing line and flushes; returns the row counts.
    pub(crate) fn finish(mut self) -> Result<End, BackupError> {
        for table in TABLES {
            self.end.rows.entry(table.name.to_owned()).or_default();
        }
        write_line(
            &mut self.out,
            &EndLine {
                end: self.end.clone(),
            },
        )?;
        self.out.flush().map_err(|source| BackupError::Io {
            action: "write",
            source,
        })?;
        Ok(self.end)
    }
}

fn write_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> Result<(), BackupError> {
    let write = |out: &mut W| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(b"\n")
    };
    write(out).map_err(|source| BackupError::Io {
        action: "write",
        source,
    })
}

/// One row read back, with its table.
pub(crate) struct Row {
    pub(crate) table: &'static Table,
    pub(crate) values: Vec<Value>,
}

/// Reads a backup line by line, checking each row against its table.
pub(crate) struct Reader<R: BufRead> {
    input: R,
    line: u64,
    counts: BTreeMap<String, u64>,
    buffer: String,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header.
    pub(crate) fn new(input: R) -> Result<(Self, Header), BackupError> {
        let mut reader = Self {
            input,
            line: 0,
            counts: BTreeMap::new(),
            buffer: String::new(),
        };
        let Some(first) = reader.next_line()? else {
            return Err(reader.format_error("the file is empty"));
        };
        let header: Header = serde_json::from_str(&first)
            .map_err(|e| reader.format_error(&format!("expected the header line: {e}")))?;
        if header.format != FORMAT {
            return Err(reader.format_error(&format!("`format` is `{}`", header.format)));
        }
        if header.version != FORMAT_VERSION {
            return Err(reader.format_error(&format!(
                "file layout version {} is not {FORMAT_VERSION}, which this build reads",
                header.version
            )));
        }
        Ok((reader, header))
    }

    /// The next row, or `None` after a closing line whose counts match what was read.
    pub(crate) fn next_row(&mut self) -> Result<Option<Row>, BackupError> {
        let Some(text) = self.next_line()? else {
            return Err(BackupError::Truncated { line: self.line });
        };
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| self.format_error(&format!("not JSON: {e}")))?;
        if value.get("end").is_some() {
            let end: EndLine = serde_json::from_value(value)
                .map_err(|e| self.format_error(&format!("closing line: {e}")))?;
            self.check_counts(&end.end)?;
            if self.next_line()?.is_some() {
                return Err(self.format_error("lines after the closing line"));
            }
            return Ok(None);
        }
        let line: RowLine =
            serde_json::from_value(value).map_err(|e| self.format_error(&e.to_string()))?;
        let Some(table) = Table::by_name(&line.table) else {
            return Err(self.format_error(&format!("unknown table `{}`", line.table)));
        };
        self.check_row(table, &line.row)?;
        *self.counts.entry(line.table).or_default() += 1;
        Ok(Some(Row {
            table,
            values: line.row,
        }))
    }

    fn check_row(&self, table: &Table, row: &[Value]) -> Result<(), BackupError> {
        if row.len() != table.columns.len() {
            return Err(self.format_error(&format!(
                "a `{}` row has {} values, not {}",
                table.name,
                row.len(),
                table.columns.len()
            )));
        }
        for ((column, ty), value) in table.columns.iter().zip(row) {
            let fits = match ty {
                ColumnType::Integer => value.is_null() || value.is_i64(),
                ColumnType::Text => value.is_null() || value.is_string(),
            };
            if !fits {
                return Err(self.format_error(&format!(
                    "`{}.{column}` holds {value}, not {}",
                    table.name,
                    match ty {
                        ColumnType::Integer => "an integer",
                        ColumnType::Text => "text",
                    }
                )));
            }
        }
        Ok(())
    }

    fn check_counts(&self, end: &End) -> Result<(), BackupError> {
        let names: std::collections::BTreeSet<&String> =
            end.rows.keys().chain(self.counts.keys()).collect();
        for name in names {
            let found = self.counts.get(name).copied().unwrap_or(0);
            let counted = end.rows.get(name).copied().unwrap_or(0);
            if found != counted {
                return Err(BackupError::Count {
                    table: name.clone(),
                    found,
                    counted,
                });
            }
        }
        Ok(())
    }

    fn next_line(&mut self) -> Result<Option<String>, BackupError> {
        loop {
            self.buffer.clear();
            let read =
                self.input
                    .read_line(&mut self.buffer)
                    .map_err(|source| BackupError::Io {
                        action: "read",
                        source,
                    })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = self.buffer.trim_end();
            if !text.is_empty() {
                return Ok(Some(text.to_owned()));
            }
        }
    }

    fn format_error(&self, message: &str) -> BackupError {
        BackupError::Format {
            line: self.line,
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            schema: 5,
            source: "sqlite".into(),
            taken_at: 1,
        }
    }

    fn written(rows: &[(&str, Vec<Value>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out, &header()).unwrap();
        for (name, row) in rows {
            writer
                .row(Table::by_name(name).unwrap(), row.clone())
                .unwrap();
        }
        writer.finish().unwrap();
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<Value>)>, BackupError> {
        let (mut reader, read_header) = Reader::new(bytes)?;
        assert_eq!(read_header, header());
        let mut rows = Vec::new();
        while let Some(row) = reader.next_row()? {
            rows.push((row.table.name.to_owned(), row.values));
        }
        Ok(rows)
    }

    fn snapshot_row() -> (&'static str, Vec<Value>) {
        (
            "experiment_snapshots",
            vec![Value::from("exp"), Value::from(7), Value::from("{}")],
        )
    }

    #[test]
    fn rows_read_back_as_written() {
        let bytes = written(&[snapshot_row(), snapshot_row()]);
        let rows = read_all(&bytes).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, snapshot_row().1);
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let bytes = written(&[snapshot_row(), snapshot_row()]);
        let text = String::from_utf8(bytes).unwrap();
        let cut: Vec<&str> = text.lines().take(2).collect();
        let error = read_all(cut.join("\n").as_bytes()).unwrap_err();
        assert!(
            matches!(error, BackupError::Truncated { line: 2 }),
            "{error}"
        );
    }

    #[test]
    fn a_removed_row_disagrees_with_the_closing_count() {
        let bytes = written(&[snapshot_row(), snapshot_row()]);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let edited = [lines[0], lines[2], lines[3]].join("\n");
        let error = read_all(edited.as_bytes()).unwrap_err();
        assert!(
            matches!(&error, BackupError::Count { table, found: 1, counted: 2 } if table == "experiment_snapshots"),
            "{error}"
        );
    }

    #[test]
    fn rows_that_do_not_fit_their_table_name_the_line_and_column() {
        let bytes = written(&[(
            "experiment_snapshots",
            vec![Value::from("exp"), Value::from("soon"), Value::from("{}")],
        )]);
        let error = read_all(&bytes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the backup file is not a Switchyard backup: line 2: \
             `experiment_snapshots.at` holds \"soon\", not an integer"
        );
        let error = read_all(b"{\"format\":\"other\"}\n").unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}
