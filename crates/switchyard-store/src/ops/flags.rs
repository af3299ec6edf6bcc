//! Flag and segment documents and their hash-chained audit log: the [`FlagStore`]
//! implementation.
//!
//! A change runs in one write transaction (writers take turns, see `begin_write`): it reads the chain's head, writes each
//! changed document and appends its entry with the next id and the head's hash, so two writers
//! can never fork the chain.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::QueryBuilder;

use super::{Conn, Db};
use switchyard_core::Timestamp;
use switchyard_core::ports::{
    EventKind, FlagAuditEntry, FlagAuditProblem, FlagAuditQuery, FlagAuditVerification, FlagChange,
    FlagChangeOutcome, FlagDocument, FlagDocuments, FlagEdit, FlagEditResult, FlagObjectKind,
    FlagStore, GENESIS_HASH, NewEvent, StoreError,
};

use super::{Store, begin_snapshot, begin_write, events, notify};
use crate::Topic;
use crate::codec::{backend, decode, decode_text, encode, millis, timestamp};
use crate::flag_audit::{entry_hash, verify_chain};

#[async_trait::async_trait]
impl FlagStore for Store {
    async fn flag_documents(&self) -> Result<FlagDocuments, StoreError> {
        // The documents and the revision from one snapshot: read apart, a change committed
        // between them (by another replica) would pair the new revision with the old documents,
        // and a reader that reloads on a new revision would never see the change.
        let mut tx = begin_snapshot(&self.pool).await?;
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT kind, key, document_json, updated_at FROM flag_documents \
             ORDER BY position, key",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("read flag documents"))?;
        let revision = head(&mut *tx).await?.0;
        tx.rollback()
            .await
            .map_err(backend("end a read snapshot"))?;
        let mut documents = FlagDocuments {
            revision,
            ..FlagDocuments::default()
        };
        for (kind, key, text, updated_at) in rows {
            let what = |field: &'static str| {
                let key = key.clone();
                move || format!("{field} of flag document `{key}`")
            };
            let kind: FlagObjectKind = decode_text(kind, what("kind"))?;
            let document = FlagDocument {
                document: decode(&text, what("document"))?,
                updated_at: timestamp(updated_at, what("update time"))?,
                key,
            };
            match kind {
                FlagObjectKind::Flag => documents.flags.push(document),
                FlagObjectKind::Segment => documents.segments.push(document),
            }
        }
        Ok(documents)
    }

    async fn change_flags(&self, change: &FlagChange) -> Result<FlagChangeOutcome, StoreError> {
        let mut tx = begin_write(self).await?;
        let (mut revision, mut prev_hash) = head(&mut *tx).await?;
        let mut results = Vec::with_capacity(change.edits.len());
        for edit in &change.edits {
            let before = document(&mut tx, edit).await?;
            let result = match (&before, &edit.after) {
                (None, None) => "unchanged",
                (Some(b), Some(a)) if b == a => "unchanged",
                (None, Some(after)) => {
                    insert(&mut tx, edit, after, change.at).await?;
                    "created"
                }
                (Some(_), Some(after)) => {
                    sqlx::query(
                        "UPDATE flag_documents SET document_json = $1, updated_at = $2 \
                         WHERE kind = $3 AND key = $4",
                    )
                    .bind(encode(after, "encode a flag document")?)
                    .bind(millis(change.at))
                    .bind(edit.kind.as_str())
                    .bind(&edit.key)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend("update a flag document"))?;
                    "configured"
                }
                (Some(_), None) => {
                    sqlx::query("DELETE FROM flag_documents WHERE kind = $1 AND key = $2")
                        .bind(edit.kind.as_str())
                        .bind(&edit.key)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend("delete a flag document"))?;
                    "deleted"
                }
            };
            if result != "unchanged" {
                revision += 1;
                let mut entry = FlagAuditEntry {
                    id: revision,
                    at: change.at,
                    actor: change.by.actor.clone(),
                    reason: change.reason.clone(),
                    kind: edit.kind,
                    key: edit.key.clone(),
                    before,
                    after: edit.after.clone(),
                    prev_hash: prev_hash.clone(),
                    hash: String::new(),
                };
                entry.hash = entry_hash(&entry);
                append(&mut tx, &entry).await?;
                // The whole log tells who changed what; the flag audit log keeps the documents.
                let logged = NewEvent {
                    at: change.at,
                    app: None,
                    rollout: None,
                    kind: EventKind::FlagChanged,
                    actor: change.by.actor.clone(),
                    source: change.by.source.clone(),
                    reason: format!(
                        "{} {} {result}{}",
                        edit.kind.as_str(),
                        edit.key,
                        if change.reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", change.reason)
                        }
                    ),
                    data: serde_json::json!({
                        "kind": edit.kind.as_str(),
                        "key": edit.key,
                        "result": result,
                        "revision": revision,
                        "audit_hash": entry.hash,
                    }),
                };
                events::append(&mut tx, &[logged], events::Owner::NONE).await?;
                prev_hash = entry.hash;
            }
            results.push(FlagEditResult {
                kind: edit.kind,
                key: edit.key.clone(),
                result: result.into(),
            });
        }
        notify(&mut tx, Topic::Flags).await?;
        tx.commit().await.map_err(backend("commit a flag change"))?;
        Ok(FlagChangeOutcome { revision, results })
    }

    async fn flag_audit(&self, query: &FlagAuditQuery) -> Result<Vec<FlagAuditEntry>, StoreError> {
        let mut sql = QueryBuilder::<Db>::new(
            "SELECT id, at, actor, reason, kind, key, before_json, after_json, prev_hash, hash \
             FROM flag_audit WHERE 1 = 1",
        );
        if let Some(key) = &query.key {
            sql.push(" AND key = ").push_bind(key.clone());
        }
        if let Some(after) = query.after {
            sql.push(" AND id > ").push_bind(after);
        }
        match query.limit {
            Some(limit) => sql
                .push(" ORDER BY id DESC LIMIT ")
                .push_bind(i64::from(limit)),
            None => sql.push(" ORDER BY id ASC"),
        };
        let rows: Vec<AuditRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(backend("read the flag audit log"))?;
        let mut entries = rows
            .into_iter()
            .map(decode_entry)
            .collect::<Result<Vec<_>, _>>()?;
        if query.limit.is_some() {
            entries.reverse();
        }
        Ok(entries)
    }

    async fn verify_flag_audit(&self) -> Result<FlagAuditVerification, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, reason, kind, key, before_json, after_json, prev_hash, hash \
             FROM flag_audit ORDER BY id ASC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend("read the flag audit log"))?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut problems = Vec::new();
        for row in rows {
            let id = row.0;
            match decode_entry(row) {
                Ok(entry) => entries.push(entry),
                Err(e) => problems.push(FlagAuditProblem {
                    id: Some(id),
                    message: e.to_string(),
                }),
            }
        }
        problems.extend(verify_chain(&entries));
        problems.extend(self.compare_with_documents(&entries).await?);
        Ok(FlagAuditVerification {
            ok: problems.is_empty(),
            entries: entries.len() as u64,
            head: entries.last().map(|e| e.hash.clone()),
            problems,
        })
    }
}

impl Store {
    /// Replays the log and reports every stored document that differs from where the log leads
    /// (a document edited behind the log's back).
    async fn compare_with_documents(
        &self,
        entries: &[FlagAuditEntry],
    ) -> Result<Vec<FlagAuditProblem>, StoreError> {
        let mut expected: BTreeMap<(FlagObjectKind, &str), Option<&Value>> = BTreeMap::new();
        for entry in entries {
            expected.insert((entry.kind, &entry.key), entry.after.as_ref());
        }
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT kind, key, document_json FROM flag_documents")
                .fetch_all(&self.pool)
                .await
                .map_err(backend("read flag documents"))?;
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        for (kind, key, text) in rows {
            let stored: Option<Value> = serde_json::from_str(&text).ok();
            let kind = if kind == "segment" {
                FlagObjectKind::Segment
            } else {
                FlagObjectKind::Flag
            };
            let logged = expected.get(&(kind, key.as_str())).copied().flatten();
            if logged != stored.as_ref() {
                problems.push(FlagAuditProblem {
                    id: None,
                    message: format!(
                        "stored {} `{key}` differs from the state the audit log leads to",
                        kind.as_str()
                    ),
                });
            }
            seen.push((kind, key));
        }
        for ((kind, key), after) in &expected {
            if after.is_some() && !seen.iter().any(|(k, n)| k == kind && n == key) {
                problems.push(FlagAuditProblem {
                    id: None,
                    message: format!(
                        "{} `{key}` is in the audit log but missing from the store",
                        kind.as_str()
                    ),
                });
            }
        }
        Ok(problems)
    }
}

/// The id and hash of the last entry; `(0, GENESIS_HASH)` for an empty log.
async fn head<'e, E>(executor: E) -> Result<(i64, String), StoreError>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, hash FROM flag_audit ORDER BY id DESC LIMIT 1")
            .fetch_optional(executor)
            .await
            .map_err(backend("read the flag audit head"))?;
    Ok(row.unwrap_or_else(|| (0, GENESIS_HASH.to_string())))
}

async fn document(conn: &mut Conn, edit: &FlagEdit) -> Result<Option<Value>, StoreError> {
    let text: Option<(String,)> =
        sqlx::query_as("SELECT document_json FROM flag_documents WHERE kind = $1 AND key = $2")
            .bind(edit.kind.as_str())
            .bind(&edit.key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend("read a flag document"))?;
    text.map(|(t,)| decode(&t, || format!("document of `{}`", edit.key)))
        .transpose()
}

async fn insert(
    conn: &mut Conn,
    edit: &FlagEdit,
    after: &Value,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO flag_documents (kind, key, document_json, position, updated_at) \
         VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM flag_documents), $4)",
    )
    .bind(edit.kind.as_str())
    .bind(&edit.key)
    .bind(encode(after, "encode a flag document")?)
    .bind(millis(at))
    .execute(&mut *conn)
    .await
    .map_err(backend("insert a flag document"))?;
    Ok(())
}

async fn append(conn: &mut Conn, entry: &FlagAuditEntry) -> Result<(), StoreError> {
    let before = entry
        .before
        .as_ref()
        .map(|v| encode(v, "encode an audit document"))
        .transpose()?;
    let after = entry
        .after
        .as_ref()
        .map(|v| encode(v, "encode an audit document"))
        .transpose()?;
    sqlx::query(
        "INSERT INTO flag_audit \
         (id, at, actor, reason, kind, key, before_json, after_json, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(entry.id)
    .bind(millis(entry.at))
    .bind(&entry.actor)
    .bind(&entry.reason)
    .bind(entry.kind.as_str())
    .bind(&entry.key)
    .bind(before)
    .bind(after)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await
    .map_err(backend("append a flag audit entry"))?;
    Ok(())
}

type AuditRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

fn decode_entry(
    (id, at, actor, reason, kind, key, before, after, prev_hash, hash): AuditRow,
) -> Result<FlagAuditEntry, StoreError> {
    let what = |field: &'static str| move || format!("{field} of flag audit entry {id}");
    Ok(FlagAuditEntry {
        id,
        at: timestamp(at, what("time"))?,
        actor,
        reason,
        kind: decode_text(kind, what("kind"))?,
        key,
        before: before
            .map(|t| decode(&t, what("before document")))
            .transpose()?,
        after: after
            .map(|t| decode(&t, what("after document")))
            .transpose()?,
        prev_hash,
        hash,
    })
}
