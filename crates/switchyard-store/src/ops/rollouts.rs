//! Rollouts: creating one (at most one active per app), replacing its state with its events
//! and perhaps a new stable release, and reading them back.

use sqlx::Transaction;

use super::{Conn, Db, Pool};
use switchyard_core::ports::{
    DeploymentRecord, EventKind, NewEvent, RolloutId, RolloutRecord, RolloutUpdate, StoreError,
};
use switchyard_core::{AppName, Clock, SystemClock, Version};

use super::{Store, begin_write, events};
use crate::codec::{backend, decode, decode_text, encode, millis, timestamp};

pub(super) async fn create(
    store: &Store,
    app: &AppName,
    version: &Version,
    phase: &str,
    state: &serde_json::Value,
    events: &[NewEvent],
) -> Result<RolloutId, StoreError> {
    // The trait gives no time for the rollout itself; its first event (`RolloutStarted`) says
    // when it began, and the clock only serves a caller that passes no event.
    let at = events.first().map_or_else(|| SystemClock.now(), |e| e.at);
    let state = encode(state, "encode rollout state")?;
    let mut tx = begin_write(store).await?;
    let known: Option<String> = sqlx::query_scalar("SELECT name FROM apps WHERE name = $1")
        .bind(app.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend("look up an app"))?;
    if known.is_none() {
        return Err(StoreError::UnknownApp(app.clone()));
    }
    if let Some(rollout) = active_id(&mut tx, app).await? {
        return Err(StoreError::RolloutInProgress {
            app: app.clone(),
            rollout,
        });
    }
    let inserted = sqlx::query_scalar(
        "INSERT INTO rollouts (app, version, phase, active, state_json, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, $5, $6) RETURNING id",
    )
    .bind(app.as_str())
    .bind(version.as_str())
    .bind(phase)
    .bind(state)
    .bind(millis(at))
    .bind(millis(at))
    .fetch_one(&mut *tx)
    .await;
    let id: RolloutId = match inserted {
        Ok(id) => id,
        Err(e) => {
            return Err(conflict_or_backend(tx, &store.pool, app, e, "insert a rollout").await);
        }
    };
    events::append(&mut tx, events, events::Owner::rollout(app, id)).await?;
    tx.commit().await.map_err(backend("commit a new rollout"))?;
    Ok(id)
}

pub(super) async fn update(store: &Store, update: &RolloutUpdate) -> Result<(), StoreError> {
    let state = encode(&update.state, "encode rollout state")?;
    let stable = update
        .stable
        .as_ref()
        .map(|r| encode(r, "encode a release"))
        .transpose()?;
    let mut tx = begin_write(store).await?;
    let app: Option<String> = sqlx::query_scalar("SELECT app FROM rollouts WHERE id = $1")
        .bind(update.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend("look up a rollout"))?;
    let Some(app) = app else {
        return Err(StoreError::UnknownRollout(update.id));
    };
    let app: AppName = decode_text(app, || format!("app of rollout {}", update.id))?;
    let updated = sqlx::query(
        "UPDATE rollouts SET phase = $1, active = $2, state_json = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(update.phase.as_str())
    .bind(i64::from(update.active))
    .bind(state)
    .bind(millis(update.at))
    .bind(update.id)
    .execute(&mut *tx)
    .await;
    if let Err(e) = updated {
        return Err(conflict_or_backend(tx, &store.pool, &app, e, "update a rollout").await);
    }
    if let Some(stable) = stable {
        sqlx::query("UPDATE apps SET stable_json = $1 WHERE name = $2")
            .bind(stable)
            .bind(app.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend("set a stable release"))?;
    }
    events::append(
        &mut tx,
        &update.events,
        events::Owner::rollout(&app, update.id),
    )
    .await?;
    tx.commit()
        .await
        .map_err(backend("commit a rollout update"))
}

async fn active_id(conn: &mut Conn, app: &AppName) -> Result<Option<RolloutId>, StoreError> {
    sqlx::query_scalar("SELECT id FROM rollouts WHERE app = $1 AND active = 1")
        .bind(app.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend("look up the active rollout"))
}

/// The unique index on active rollouts is the backstop behind the check in `create`, and the
/// only guard when an update re-activates a rollout; its violation is reported as the conflict
/// it is. The failed transaction is rolled back first: PostgreSQL answers nothing more inside
/// it, and the rollout that holds the index is read on a connection of the pool.
async fn conflict_or_backend(
    tx: Transaction<'static, Db>,
    pool: &Pool,
    app: &AppName,
    error: sqlx::Error,
    operation: &'static str,
) -> StoreError {
    let unique = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation());
    drop(tx.rollback().await);
    if unique {
        if let Ok(mut conn) = pool.acquire().await {
            if let Ok(Some(rollout)) = active_id(&mut conn, app).await {
                return StoreError::RolloutInProgress {
                    app: app.clone(),
                    rollout,
                };
            }
        }
    }
    backend(operation)(error)
}

type RolloutRow = (i64, String, String, String, i64, String, i64, i64);

pub(super) async fn by_id(pool: &Pool, id: RolloutId) -> Result<Option<RolloutRecord>, StoreError> {
    let row: Option<RolloutRow> = sqlx::query_as(
        "SELECT id, app, version, phase, active, state_json, created_at, updated_at \
         FROM rollouts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(backend("read a rollout"))?;
    row.map(decode_rollout).transpose()
}

/// The largest id is the latest: ids are never reused (AUTOINCREMENT), while two rollouts may
/// share a creation millisecond.
pub(super) async fn latest(
    pool: &Pool,
    app: &AppName,
) -> Result<Option<RolloutRecord>, StoreError> {
    let row: Option<RolloutRow> = sqlx::query_as(
        "SELECT id, app, version, phase, active, state_json, created_at, updated_at \
         FROM rollouts WHERE app = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(app.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend("read the latest rollout"))?;
    row.map(decode_rollout).transpose()
}

pub(super) async fn latest_of_every_app(pool: &Pool) -> Result<Vec<RolloutRecord>, StoreError> {
    let rows: Vec<RolloutRow> = sqlx::query_as(
        "SELECT id, app, version, phase, active, state_json, created_at, updated_at \
         FROM rollouts WHERE id IN (SELECT MAX(id) FROM rollouts GROUP BY app) ORDER BY app ASC",
    )
    .fetch_all(pool)
    .await
    .map_err(backend("read the latest rollouts"))?;
    rows.into_iter().map(decode_rollout).collect()
}

pub(super) async fn active(pool: &Pool) -> Result<Vec<RolloutRecord>, StoreError> {
    let rows: Vec<RolloutRow> = sqlx::query_as(
        "SELECT id, app, version, phase, active, state_json, created_at, updated_at \
         FROM rollouts WHERE active = 1 ORDER BY id ASC",
    )
    .fetch_all(pool)
    .await
    .map_err(backend("read active rollouts"))?;
    rows.into_iter().map(decode_rollout).collect()
}

/// Every rollout (without its state) and every first release (a `promoted` event outside any
/// rollout), oldest first.
pub(super) async fn deployments(pool: &Pool) -> Result<Vec<DeploymentRecord>, StoreError> {
    let rollouts: Vec<(i64, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, app, phase, active, created_at, updated_at FROM rollouts ORDER BY id ASC",
    )
    .fetch_all(pool)
    .await
    .map_err(backend("read the rollouts"))?;
    let firsts: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT id, app, at FROM events WHERE kind = $1 AND rollout IS NULL AND app IS NOT NULL \
         ORDER BY id ASC",
    )
    .bind(EventKind::Promoted.as_str())
    .fetch_all(pool)
    .await
    .map_err(backend("read the first releases"))?;
    let mut out = Vec::with_capacity(rollouts.len() + firsts.len());
    for (id, app, phase, active, created_at, updated_at) in rollouts {
        let what = |field: &'static str| move || format!("{field} of rollout {id}");
        let active = active != 0;
        out.push(DeploymentRecord {
            app: decode_text(app, what("app"))?,
            rollout: Some(id),
            phase: Some(phase),
            active,
            started_at: timestamp(created_at, what("creation time"))?,
            ended_at: if active {
                None
            } else {
                Some(timestamp(updated_at, what("update time"))?)
            },
        });
    }
    for (id, app, at) in firsts {
        let what = |field: &'static str| move || format!("{field} of event {id}");
        out.push(DeploymentRecord {
            app: decode_text(app.unwrap_or_default(), what("app"))?,
            rollout: None,
            phase: None,
            active: false,
            started_at: timestamp(at, what("time"))?,
            ended_at: None,
        });
    }
    out.sort_by_key(|d| d.started_at);
    Ok(out)
}

fn decode_rollout(
    (id, app, version, phase, active, state, created_at, updated_at): RolloutRow,
) -> Result<RolloutRecord, StoreError> {
    let what = |field: &'static str| move || format!("{field} of rollout {id}");
    Ok(RolloutRecord {
        id,
        app: decode_text(app, what("app"))?,
        version: decode_text(version, what("version"))?,
        phase,
        active: active != 0,
        state: decode(&state, what("state"))?,
        created_at: timestamp(created_at, what("creation time"))?,
        updated_at: timestamp(updated_at, what("update time"))?,
    })
}
