//! Pipeline runs: creating one (at most one active per subject), replacing its state with its
//! events, and reading them back.

use sqlx::Transaction;

use super::{Conn, Db, Pool};
use switchyard_core::ports::{NewEvent, RunId, RunRecord, RunUpdate, StoreError};
use switchyard_core::{Clock, SystemClock, Version};

use super::{Store, begin_write, events};
use crate::codec::{backend, decode, decode_text, encode, millis, timestamp};

pub(super) async fn create(
    store: &Store,
    subject: &str,
    version: &Version,
    phase: &str,
    state: &serde_json::Value,
    events: &[NewEvent],
) -> Result<RunId, StoreError> {
    let at = events.first().map_or_else(|| SystemClock.now(), |e| e.at);
    let state = encode(state, "encode pipeline run state")?;
    let mut tx = begin_write(store).await?;
    if let Some(run) = active_id(&mut tx, subject).await? {
        return Err(StoreError::RunInProgress {
            subject: subject.to_owned(),
            run,
        });
    }
    let inserted = sqlx::query_scalar(
        "INSERT INTO pipeline_runs \
         (subject, version, phase, active, state_json, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $6) RETURNING id",
    )
    .bind(subject)
    .bind(version.as_str())
    .bind(phase)
    .bind(state)
    .bind(millis(at))
    .bind(millis(at))
    .fetch_one(&mut *tx)
    .await;
    let id: RunId = match inserted {
        Ok(id) => id,
        Err(e) => return Err(conflict_or_backend(tx, &store.pool, subject, e).await),
    };
    events::append(&mut tx, events, events::Owner::NONE).await?;
    tx.commit()
        .await
        .map_err(backend("commit a new pipeline run"))?;
    Ok(id)
}

pub(super) async fn update(store: &Store, update: &RunUpdate) -> Result<(), StoreError> {
    let state = encode(&update.state, "encode pipeline run state")?;
    let mut tx = begin_write(store).await?;
    let updated = sqlx::query(
        "UPDATE pipeline_runs SET phase = $1, active = $2, state_json = $3, updated_at = $4 \
         WHERE id = $5",
    )
    .bind(update.phase.as_str())
    .bind(i64::from(update.active))
    .bind(state)
    .bind(millis(update.at))
    .bind(update.id)
    .execute(&mut *tx)
    .await
    .map_err(backend("update a pipeline run"))?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::UnknownRun(update.id));
    }
    events::append(&mut tx, &update.events, events::Owner::NONE).await?;
    tx.commit()
        .await
        .map_err(backend("commit a pipeline run update"))
}

async fn active_id(conn: &mut Conn, subject: &str) -> Result<Option<RunId>, StoreError> {
    sqlx::query_scalar("SELECT id FROM pipeline_runs WHERE subject = $1 AND active = 1")
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend("look up the active pipeline run"))
}

/// The unique index on active runs is the backstop behind the check in `create`.
async fn conflict_or_backend(
    tx: Transaction<'static, Db>,
    pool: &Pool,
    subject: &str,
    error: sqlx::Error,
) -> StoreError {
    let unique = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation());
    drop(tx.rollback().await);
    if unique {
        if let Ok(mut conn) = pool.acquire().await {
            if let Ok(Some(run)) = active_id(&mut conn, subject).await {
                return StoreError::RunInProgress {
                    subject: subject.to_owned(),
                    run,
                };
            }
        }
    }
    backend("insert a pipeline run")(error)
}

type RunRow = (i64, String, String, String, i64, String, i64, i64);

const COLUMNS: &str = "id, subject, version, phase, active, state_json, created_at, updated_at";

pub(super) async fn by_id(pool: &Pool, id: RunId) -> Result<Option<RunRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM pipeline_runs WHERE id = $1");
    let row: Option<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(backend("read a pipeline run"))?;
    row.map(decode_run).transpose()
}

pub(super) async fn list(
    pool: &Pool,
    subject: Option<&str>,
    limit: u32,
) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM pipeline_runs WHERE ($1 IS NULL OR subject = $1) \
         ORDER BY id DESC LIMIT $2"
    );
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(subject)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(backend("read pipeline runs"))?;
    rows.into_iter().map(decode_run).collect()
}

pub(super) async fn active(pool: &Pool) -> Result<Vec<RunRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM pipeline_runs WHERE active = 1 ORDER BY id ASC");
    let rows: Vec<RunRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(backend("read active pipeline runs"))?;
    rows.into_iter().map(decode_run).collect()
}

fn decode_run(
    (id, subject, version, phase, active, state, created_at, updated_at): RunRow,
) -> Result<RunRecord, StoreError> {
    let what = |field: &'static str| move || format!("{field} of pipeline run {id}");
    Ok(RunRecord {
        id,
        subject,
        version: decode_text(version, what("version"))?,
        phase,
        active: active != 0,
        state: decode(&state, what("state"))?,
        created_at: timestamp(created_at, what("creation time"))?,
        updated_at: timestamp(updated_at, what("update time"))?,
    })
}
