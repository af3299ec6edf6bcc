//! Experiments: their status, units, per-variant aggregates, idempotency keys and snapshots.
//!
//! A batch of events is one transaction. Each event's idempotency key is looked up first (a
//! stored key makes the event a duplicate that changes nothing), then the unit's values change
//! and the variant's moments follow by an exact delta, so results never scan raw events.

use std::collections::{BTreeMap, HashMap};

use super::{Conn, Pool};
use serde_json::json;
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::Experiment;
use switchyard_core::ports::{Author, EventKind, NewEvent, StoreError};
use switchyard_experiments::data::ExposedUnits;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus, Ingested};
use switchyard_experiments::{
    CompiledExperiment, EventKind as Recorded, ExperimentData, Moments, Snapshot, StoredValue,
    UnitValue, ValidEvent, VariantData,
};

use super::{CONCAT_VALUES, Store, begin_write, events, notify};
use crate::Topic;
use crate::codec::{backend, decode, encode, from_sql_int, millis, timestamp, to_sql_int};

type ExperimentRow = (String, String, i64, i64, Option<String>);

pub(super) async fn experiments(pool: &Pool) -> Result<Vec<ExperimentRecord>, StoreError> {
    let rows: Vec<ExperimentRow> = sqlx::query_as(
        "SELECT name, manifest_json, generation, started_at, stopped_json \
         FROM experiments ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(backend("read experiments"))?;
    rows.into_iter().map(record).collect()
}

pub(super) async fn experiment(
    pool: &Pool,
    key: &str,
) -> Result<Option<ExperimentRecord>, StoreError> {
    let row: Option<ExperimentRow> = sqlx::query_as(
        "SELECT name, manifest_json, generation, started_at, stopped_json \
         FROM experiments WHERE name = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
    .map_err(backend("read an experiment"))?;
    row.map(record).transpose()
}

fn record(row: ExperimentRow) -> Result<ExperimentRecord, StoreError> {
    let (name, manifest, generation, started_at, stopped) = row;
    let manifest: Experiment = decode(&manifest, || format!("manifest of experiment `{name}`"))?;
    let status = match stopped {
        None => ExperimentStatus::Running,
        Some(text) => decode(&text, || format!("status of experiment `{name}`"))?,
    };
    Ok(ExperimentRecord {
        manifest,
        generation: from_sql_int(generation, || format!("generation of experiment `{name}`"))?,
        started_at: timestamp(started_at, || format!("start of experiment `{name}`"))?,
        status,
    })
}

/// A unit as stored, and whether the batch changed it.
#[derive(Debug, Clone)]
struct Unit {
    variant: Option<String>,
    exposed_at: Option<Timestamp>,
    values: BTreeMap<String, StoredValue>,
    stored: bool,
    dirty: bool,
}

/// A variant's row as stored, and whether the batch changed it.
#[derive(Debug, Clone, Default)]
struct Variant {
    data: VariantData,
    stored: bool,
    dirty: bool,
}

/// The rows a batch touched, read once and written once.
#[derive(Default)]
struct Batch {
    units: HashMap<(String, String), Unit>,
    variants: HashMap<(String, String), Variant>,
    /// Experiments whose running status was read, by key.
    running: HashMap<String, bool>,
}

pub(super) async fn ingest(
    store: &Store,
    experiments: &BTreeMap<String, CompiledExperiment>,
    batch: &[ValidEvent],
    keep_raw: bool,
    received_at: Timestamp,
) -> Result<Vec<Ingested>, StoreError> {
    let mut tx = begin_write(store).await?;
    let mut rows = Batch::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    for event in batch {
        let outcome = match experiments.get(&event.experiment) {
            None => Ingested::Rejected {
                message: format!("unknown experiment `{}`", event.experiment),
            },
            Some(experiment) => {
                ingest_one(&mut tx, &mut rows, experiment, event, keep_raw, received_at).await?
            }
        };
        outcomes.push(outcome);
    }
    write_back(&mut tx, rows).await?;
    tx.commit()
        .await
        .map_err(backend("commit a batch of events"))?;
    Ok(outcomes)
}

async fn ingest_one(
    conn: &mut Conn,
    rows: &mut Batch,
    experiment: &CompiledExperiment,
    event: &ValidEvent,
    keep_raw: bool,
    received_at: Timestamp,
) -> Result<Ingested, StoreError> {
    let key = experiment.key();
    let seen: Option<(String,)> =
        sqlx::query_as("SELECT id FROM experiment_event_ids WHERE experiment = $1 AND id = $2")
            .bind(key)
            .bind(&event.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend("look up an idempotency key"))?;
    if seen.is_some() {
        return Ok(Ingested::Duplicate);
    }
    let running = running(conn, rows, key).await?;
    let unit_key = (key.to_owned(), event.unit.clone());
    let mut unit = match rows.units.remove(&unit_key) {
        Some(unit) => unit,
        None => load_unit(conn, key, &event.unit).await?,
    };
    let outcome = match &event.kind {
        Recorded::Exposure { variant } => match &unit.variant {
            Some(assigned) if assigned == variant => Ok(()),
            Some(assigned) => Err(format!(
                "unit `{}` is assigned to variant `{assigned}`, not `{variant}`",
                event.unit
            )),
            None if !running => Err(format!(
                "experiment `{key}` is stopped: it exposes no new unit"
            )),
            None => {
                unit.variant = Some(variant.clone());
                unit.exposed_at = Some(event.at);
                let v = variant_row(conn, rows, key, variant).await?;
                v.data.units += 1;
                for metric in experiment.metrics() {
                    let value = match unit.values.get_mut(&metric.name) {
                        Some(stored) => {
                            metric.expose(stored, event.at);
                            stored.value
                        }
                        None => UnitValue::default(),
                    };
                    v.data
                        .metrics
                        .entry(metric.name.clone())
                        .or_default()
                        .add(metric.counted(value));
                }
                v.dirty = true;
                unit.dirty = true;
                Ok(())
            }
        },
        Recorded::Metric { variant, .. } => match (variant, &unit.variant) {
            (Some(sent), Some(assigned)) if sent != assigned => Err(format!(
                "unit `{}` is assigned to variant `{assigned}`, not `{sent}`",
                event.unit
            )),
            _ => {
                apply_metric_event(conn, rows, experiment, event, &mut unit).await?;
                Ok(())
            }
        },
    };
    rows.units.insert(unit_key, unit);
    if let Err(message) = outcome {
        return Ok(Ingested::Rejected { message });
    }
    let raw = if keep_raw {
        Some(encode(event, "encode an event")?)
    } else {
        None
    };
    sqlx::query(
        "INSERT INTO experiment_event_ids (experiment, id, received_at, event_json) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(key)
    .bind(&event.id)
    .bind(millis(received_at))
    .bind(raw)
    .execute(&mut *conn)
    .await
    .map_err(backend("store an idempotency key"))?;
    Ok(Ingested::Counted)
}

/// A metric event changes the unit's values of every metric that reads it, and (once the unit
/// is exposed) its variant's moments by the same delta.
async fn apply_metric_event(
    conn: &mut Conn,
    rows: &mut Batch,
    experiment: &CompiledExperiment,
    event: &ValidEvent,
    unit: &mut Unit,
) -> Result<(), StoreError> {
    let Some(unit_event) = event.unit_event() else {
        return Ok(());
    };
    for metric in experiment.metrics_reading(unit_event.name) {
        let mut stored = unit.values.get(&metric.name).cloned().unwrap_or_default();
        let old = stored.value;
        if !metric.record(&mut stored, &unit_event, unit.exposed_at) {
            continue;
        }
        let new = stored.value;
        unit.values.insert(metric.name.clone(), stored);
        unit.dirty = true;
        if new == old {
            continue;
        }
        if let Some(variant) = unit.variant.clone() {
            let v = variant_row(conn, rows, experiment.key(), &variant).await?;
            v.data
                .metrics
                .entry(metric.name.clone())
                .or_default()
                .replace(metric.counted(old), metric.counted(new));
            v.dirty = true;
        }
    }
    Ok(())
}

async fn running(conn: &mut Conn, rows: &mut Batch, key: &str) -> Result<bool, StoreError> {
    if let Some(running) = rows.running.get(key) {
        return Ok(*running);
    }
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT stopped_json FROM experiments WHERE name = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend("read an experiment's status"))?;
    let running = matches!(row, Some((None,)));
    rows.running.insert(key.to_owned(), running);
    Ok(running)
}

async fn load_unit(conn: &mut Conn, key: &str, unit: &str) -> Result<Unit, StoreError> {
    let row: Option<(Option<String>, Option<i64>, String)> = sqlx::query_as(
        "SELECT variant, exposed_at, values_json FROM experiment_units \
         WHERE experiment = $1 AND unit = $2",
    )
    .bind(key)
    .bind(unit)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend("read a unit"))?;
    let Some((variant, exposed_at, values)) = row else {
        return Ok(Unit {
            variant: None,
            exposed_at: None,
            values: BTreeMap::new(),
            stored: false,
            dirty: false,
        });
    };
    let what = || format!("unit `{unit}` of experiment `{key}`");
    Ok(Unit {
        variant,
        exposed_at: exposed_at.map(|t| timestamp(t, what)).transpose()?,
        values: decode(&values, what)?,
        stored: true,
        dirty: false,
    })
}

async fn variant_row<'a>(
    conn: &mut Conn,
    rows: &'a mut Batch,
    key: &str,
    variant: &str,
) -> Result<&'a mut Variant, StoreError> {
    let id = (key.to_owned(), variant.to_owned());
    if !rows.variants.contains_key(&id) {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT units, metrics_json FROM experiment_variants \
             WHERE experiment = $1 AND variant = $2",
        )
        .bind(key)
        .bind(variant)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend("read a variant's aggregates"))?;
        let loaded = match row {
            None => Variant::default(),
            Some((units, metrics)) => {
                let what = || format!("aggregates of `{variant}` in experiment `{key}`");
                Variant {
                    data: VariantData {
                        units: from_sql_int(units, what)?,
                        metrics: decode::<BTreeMap<String, Moments>>(&metrics, what)?,
                    },
                    stored: true,
                    dirty: false,
                }
            }
        };
        rows.variants.insert(id.clone(), loaded);
    }
    // Inserted just above when it was missing.
    rows.variants
        .get_mut(&id)
        .ok_or_else(|| StoreError::Backend {
            operation: "cache a variant's aggregates",
            source: "variant row vanished from the batch cache".into(),
        })
}

async fn write_back(conn: &mut Conn, rows: Batch) -> Result<(), StoreError> {
    for ((key, unit), u) in rows.units {
        if !u.dirty {
            continue;
        }
        let values = encode(&u.values, "encode a unit's values")?;
        let statement = if u.stored {
            "UPDATE experiment_units SET variant = $3, exposed_at = $4, values_json = $5 \
             WHERE experiment = $1 AND unit = $2"
        } else {
            "INSERT INTO experiment_units (experiment, unit, variant, exposed_at, values_json) \
             VALUES ($1, $2, $3, $4, $5)"
        };
        sqlx::query(statement)
            .bind(&key)
            .bind(&unit)
            .bind(&u.variant)
            .bind(u.exposed_at.map(millis))
            .bind(values)
            .execute(&mut *conn)
            .await
            .map_err(backend("store a unit"))?;
    }
    for ((key, variant), v) in rows.variants {
        if !v.dirty {
            continue;
        }
        let metrics = encode(&v.data.metrics, "encode a variant's aggregates")?;
        let statement = if v.stored {
            "UPDATE experiment_variants SET units = $3, metrics_json = $4 \
             WHERE experiment = $1 AND variant = $2"
        } else {
            "INSERT INTO experiment_variants (experiment, variant, units, metrics_json) \
             VALUES ($1, $2, $3, $4)"
        };
        sqlx::query(statement)
            .bind(&key)
            .bind(&variant)
            .bind(to_sql_int(v.data.units))
            .bind(metrics)
            .execute(&mut *conn)
            .await
            .map_err(backend("store a variant's aggregates"))?;
    }
    Ok(())
}

pub(super) async fn data(pool: &Pool, key: &str) -> Result<Option<ExperimentData>, StoreError> {
    let Some(record) = experiment(pool, key).await? else {
        return Ok(None);
    };
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT variant, units, metrics_json FROM experiment_variants WHERE experiment = $1",
    )
    .bind(key)
    .fetch_all(pool)
    .await
    .map_err(backend("read an experiment's aggregates"))?;
    let mut variants = BTreeMap::new();
    for (variant, units, metrics) in rows {
        let what = || format!("aggregates of `{variant}` in experiment `{key}`");
        let data = VariantData {
            units: from_sql_int(units, what)?,
            metrics: decode(&metrics, what)?,
        };
        variants.insert(variant, data);
    }
    Ok(Some(ExperimentData {
        started_at: record.started_at,
        caps: Default::default(),
        variants,
    }))
}

/// The exposed units per variant and, per metric in `metrics`, their values; one query, so
/// one consistent read, and one row per variant (the units' values concatenated), since a row
/// per unit costs more to hand over than to decode.
pub(super) async fn exposed_units(
    pool: &Pool,
    key: &str,
    metrics: &[String],
) -> Result<ExposedUnits, StoreError> {
    let mut out = ExposedUnits {
        units: BTreeMap::new(),
        values: metrics.iter().map(|m| (m.clone(), Vec::new())).collect(),
    };
    // A constant of the backend's dialect, no input: safe to format in.
    let rows: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT variant, COUNT(*), {CONCAT_VALUES} FROM experiment_units \
         WHERE experiment = $1 AND variant IS NOT NULL GROUP BY variant"
    )))
    .bind(key)
    .fetch_all(pool)
    .await
    .map_err(backend("read an experiment's units"))?;
    for (variant, count, concatenated) in rows {
        let what = || format!("units of `{variant}` in experiment `{key}`");
        out.units
            .insert(variant.clone(), from_sql_int(count, what)?);
        if metrics.is_empty() {
            continue;
        }
        for values in concatenated.split('\u{1e}') {
            // Metric names need no JSON escapes, so the keys borrow from the text.
            let mut values: BTreeMap<&str, StoredValue> = decode(values, what)?;
            for (metric, list) in &mut out.values {
                if let Some(stored) = values.remove(metric.as_str()) {
                    list.push((variant.clone(), stored.value));
                }
            }
        }
    }
    Ok(out)
}

pub(super) async fn counted_events(pool: &Pool, key: &str) -> Result<u64, StoreError> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM experiment_event_ids WHERE experiment = $1")
            .bind(key)
            .fetch_one(pool)
            .await
            .map_err(backend("count an experiment's events"))?;
    from_sql_int(count, || format!("events of experiment `{key}`"))
}

pub(super) async fn stop(
    store: &Store,
    key: &str,
    reason: &str,
    by: &Author,
    at: Timestamp,
) -> Result<bool, StoreError> {
    let status = ExperimentStatus::Stopped {
        reason: reason.to_owned(),
        actor: by.actor.clone(),
        at,
    };
    let mut tx = begin_write(store).await?;
    let changed = sqlx::query(
        "UPDATE experiments SET stopped_json = $1 WHERE name = $2 AND stopped_json IS NULL",
    )
    .bind(encode(&status, "encode an experiment's status")?)
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(backend("stop an experiment"))?
    .rows_affected()
        > 0;
    if changed {
        let event = NewEvent {
            at,
            app: None,
            rollout: None,
            kind: EventKind::ExperimentStopped,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason: format!("experiment {key} stopped: {reason}"),
            data: json!({"experiment": key}),
        };
        events::append(&mut tx, &[event], events::Owner::NONE).await?;
    }
    notify(&mut tx, Topic::Manifests).await?;
    tx.commit().await.map_err(backend("commit a stop"))?;
    Ok(changed)
}

pub(super) async fn add_snapshot(
    store: &Store,
    key: &str,
    snapshot: &Snapshot,
) -> Result<(), StoreError> {
    let snapshot_json = encode(snapshot, "encode a snapshot")?;
    let mut tx = begin_write(store).await?;
    sqlx::query(
        "INSERT INTO experiment_snapshots (experiment, at, snapshot_json) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment, at) DO UPDATE SET snapshot_json = excluded.snapshot_json",
    )
    .bind(key)
    .bind(millis(snapshot.at))
    .bind(snapshot_json)
    .execute(&mut *tx)
    .await
    .map_err(backend("store a snapshot"))?;
    tx.commit().await.map_err(backend("commit a snapshot"))
}

pub(super) async fn snapshots(pool: &Pool, key: &str) -> Result<Vec<Snapshot>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT snapshot_json FROM experiment_snapshots WHERE experiment = $1 ORDER BY at",
    )
    .bind(key)
    .fetch_all(pool)
    .await
    .map_err(backend("read snapshots"))?;
    rows.iter()
        .map(|(text,)| decode(text, || format!("a snapshot of experiment `{key}`")))
        .collect()
}
