//! Applied manifests: `apply` with its created / configured / unchanged outcome, reading apps
//! and templates back, and setting an app's stable release.

use std::collections::BTreeSet;

use super::{Conn, Pool};
use serde_json::json;
use switchyard_core::manifest::{
    AnalysisTemplate, DeploymentWindow, ManifestSet, Notifier, Pipeline,
};
use switchyard_core::ports::{AppRecord, ApplyOutcome, Author, EventKind, NewEvent, StoreError};
use switchyard_core::{AppName, ObjectName, Release, Timestamp};

use super::{Store, begin_write, events, notify};
use crate::Topic;
use crate::codec::{backend, decode, encode, from_sql_int, millis, timestamp, to_sql_int};

/// The kinds of stored manifest. Table names cannot be bound, so each kind has its own
/// statements, all of one shape.
#[derive(Debug, Clone, Copy)]
enum Kind {
    App,
    Template,
    Experiment,
    Pipeline,
    Window,
    Notifier,
}

impl Kind {
    /// The manifest `kind`, as users write it.
    fn label(self) -> &'static str {
        match self {
            Kind::App => "App",
            Kind::Template => "AnalysisTemplate",
            Kind::Experiment => "Experiment",
            Kind::Pipeline => "Pipeline",
            Kind::Window => "DeploymentWindow",
            Kind::Notifier => "Notifier",
        }
    }

    fn select(self) -> &'static str {
        match self {
            Kind::App => "SELECT manifest_json, generation FROM apps WHERE name = $1",
            Kind::Template => "SELECT manifest_json, generation FROM templates WHERE name = $1",
            Kind::Experiment => "SELECT manifest_json, generation FROM experiments WHERE name = $1",
            Kind::Pipeline => "SELECT manifest_json, generation FROM pipelines WHERE name = $1",
            Kind::Window => {
                "SELECT manifest_json, generation FROM deployment_windows WHERE name = $1"
            }
            Kind::Notifier => "SELECT manifest_json, generation FROM notifiers WHERE name = $1",
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Kind::App => {
                "INSERT INTO apps (name, manifest_json, generation, stable_json, updated_at) \
                 VALUES ($1, $2, $3, NULL, $4)"
            }
            Kind::Template => {
                "INSERT INTO templates (name, manifest_json, generation, updated_at) \
                 VALUES ($1, $2, $3, $4)"
            }
            // An experiment starts when it is first applied.
            Kind::Experiment => {
                "INSERT INTO experiments \
                 (name, manifest_json, generation, updated_at, started_at, stopped_json) \
                 VALUES ($1, $2, $3, $4, $4, NULL)"
            }
            Kind::Pipeline => {
                "INSERT INTO pipelines (name, manifest_json, generation, updated_at) \
                 VALUES ($1, $2, $3, $4)"
            }
            Kind::Window => {
                "INSERT INTO deployment_windows (name, manifest_json, generation, updated_at) \
                 VALUES ($1, $2, $3, $4)"
            }
            Kind::Notifier => {
                "INSERT INTO notifiers (name, manifest_json, generation, updated_at) \
                 VALUES ($1, $2, $3, $4)"
            }
        }
    }

    fn update(self) -> &'static str {
        match self {
            Kind::App => {
                "UPDATE apps SET manifest_json = $1, generation = $2, updated_at = $3 WHERE name = $4"
            }
            Kind::Template => {
                "UPDATE templates SET manifest_json = $1, generation = $2, updated_at = $3 \
                 WHERE name = $4"
            }
            Kind::Experiment => {
                "UPDATE experiments SET manifest_json = $1, generation = $2, updated_at = $3 \
                 WHERE name = $4"
            }
            Kind::Pipeline => {
                "UPDATE pipelines SET manifest_json = $1, generation = $2, updated_at = $3 \
                 WHERE name = $4"
            }
            Kind::Window => {
                "UPDATE deployment_windows SET manifest_json = $1, generation = $2, \
                 updated_at = $3 WHERE name = $4"
            }
            Kind::Notifier => {
                "UPDATE notifiers SET manifest_json = $1, generation = $2, updated_at = $3 \
                 WHERE name = $4"
            }
        }
    }
}

/// What applying one document did, with the generation it now has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created(u64),
    Configured(u64),
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Created(_) => "created",
            Change::Configured(_) => "configured",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One document of a set, ready to store.
struct Document<'a> {
    kind: Kind,
    name: &'a str,
    /// The app it concerns, for its event.
    app: Option<&'a AppName>,
    json: String,
}

pub(super) async fn apply(
    store: &Store,
    set: &ManifestSet,
    by: &Author,
    at: Timestamp,
) -> Result<ApplyOutcome, StoreError> {
    let mut documents =
        Vec::with_capacity(set.apps.len() + set.templates.len() + set.experiments.len());
    for app in &set.apps {
        documents.push(Document {
            kind: Kind::App,
            name: app.metadata.name.as_str(),
            app: Some(&app.metadata.name),
            json: encode(app, "encode an app manifest")?,
        });
    }
    for template in &set.templates {
        documents.push(Document {
            kind: Kind::Template,
            name: template.metadata.name.as_str(),
            app: None,
            json: encode(template, "encode an analysis template")?,
        });
    }
    for experiment in &set.experiments {
        documents.push(Document {
            kind: Kind::Experiment,
            name: experiment.key(),
            app: None,
            json: encode(experiment, "encode an experiment manifest")?,
        });
    }
    for pipeline in &set.pipelines {
        documents.push(Document {
            kind: Kind::Pipeline,
            name: pipeline.metadata.name.as_str(),
            app: None,
            json: encode(pipeline, "encode a pipeline manifest")?,
        });
    }
    for window in &set.windows {
        documents.push(Document {
            kind: Kind::Window,
            name: window.metadata.name.as_str(),
            app: None,
            json: encode(window, "encode a deployment window manifest")?,
        });
    }
    for notifier in &set.notifiers {
        documents.push(Document {
            kind: Kind::Notifier,
            name: notifier.metadata.name.as_str(),
            app: None,
            json: encode(notifier, "encode a notifier manifest")?,
        });
    }
    let mut tx = begin_write(store).await?;
    let mut outcome = ApplyOutcome::default();
    let mut applied = Vec::new();
    for document in &documents {
        let change = upsert(&mut tx, document, at).await?;
        outcome.results.push((
            document.kind.label().to_string(),
            document.name.to_string(),
            change.as_str().to_string(),
        ));
        applied.extend(applied_event(document, change, by, at));
    }
    events::append(&mut tx, &applied, events::Owner::NONE).await?;
    // Dropping `tx` on any early return above rolls everything back.
    notify(&mut tx, Topic::Manifests).await?;
    tx.commit().await.map_err(backend("commit an apply"))?;
    Ok(outcome)
}

/// Inserts or replaces one document, unless it is stored with the same content.
async fn upsert(
    conn: &mut Conn,
    document: &Document<'_>,
    at: Timestamp,
) -> Result<Change, StoreError> {
    let (kind, name, json) = (document.kind, document.name, document.json.as_str());
    let stored: Option<(String, i64)> = sqlx::query_as(kind.select())
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend("read a stored manifest"))?;
    let Some((stored_json, generation)) = stored else {
        sqlx::query(kind.insert())
            .bind(name)
            .bind(json)
            .bind(1_i64)
            .bind(millis(at))
            .execute(&mut *conn)
            .await
            .map_err(backend("insert a manifest"))?;
        return Ok(Change::Created(1));
    };
    if same_content(&stored_json, json) {
        return Ok(Change::Unchanged);
    }
    let generation = from_sql_int(generation, || {
        format!("generation of {} `{name}`", kind.label())
    })?
    .saturating_add(1);
    sqlx::query(kind.update())
        .bind(json)
        .bind(to_sql_int(generation))
        .bind(millis(at))
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(backend("update a manifest"))?;
    Ok(Change::Configured(generation))
}

/// Compares as JSON values, not text, so that field order or formatting of what was stored by
/// an earlier build does not count as a change.
fn same_content(stored: &str, new: &str) -> bool {
    let parse = |text| serde_json::from_str::<serde_json::Value>(text);
    match (parse(stored), parse(new)) {
        (Ok(a), Ok(b)) => a == b,
        (Err(e), _) => {
            // Applying is how an unreadable row gets repaired, so it is replaced, not refused.
            tracing::warn!(error = %e, "stored manifest is not JSON; replacing it");
            false
        }
        (_, Err(_)) => false,
    }
}

/// The `ManifestApplied` event of a document that changed.
fn applied_event(
    document: &Document<'_>,
    change: Change,
    by: &Author,
    at: Timestamp,
) -> Option<NewEvent> {
    let (Change::Created(generation) | Change::Configured(generation)) = change else {
        return None;
    };
    let (kind, name, result) = (document.kind.label(), document.name, change.as_str());
    Some(NewEvent {
        at,
        app: document.app.cloned(),
        rollout: None,
        kind: EventKind::ManifestApplied,
        actor: by.actor.clone(),
        source: by.source.clone(),
        reason: format!("{kind} {name} {result}"),
        data: json!({
            "kind": kind,
            "name": name,
            "generation": generation,
            "result": result,
        }),
    })
}

type AppRow = (String, String, i64, Option<String>, i64);

pub(super) async fn app(pool: &Pool, name: &AppName) -> Result<Option<AppRecord>, StoreError> {
    let row: Option<AppRow> = sqlx::query_as(
        "SELECT name, manifest_json, generation, stable_json, updated_at FROM apps WHERE name = $1",
    )
    .bind(name.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend("read an app"))?;
    row.map(decode_app).transpose()
}

pub(super) async fn apps(pool: &Pool) -> Result<Vec<AppRecord>, StoreError> {
    let rows: Vec<AppRow> = sqlx::query_as(
        "SELECT name, manifest_json, generation, stable_json, updated_at FROM apps ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .map_err(backend("read apps"))?;
    rows.into_iter().map(decode_app).collect()
}

fn decode_app(
    (name, manifest, generation, stable, updated_at): AppRow,
) -> Result<AppRecord, StoreError> {
    Ok(AppRecord {
        manifest: decode(&manifest, || format!("manifest of app `{name}`"))?,
        generation: from_sql_int(generation, || format!("generation of app `{name}`"))?,
        stable: stable
            .map(|s| decode(&s, || format!("stable release of app `{name}`")))
            .transpose()?,
        updated_at: timestamp(updated_at, || format!("update time of app `{name}`"))?,
    })
}

pub(super) async fn template(
    pool: &Pool,
    name: &ObjectName,
) -> Result<Option<AnalysisTemplate>, StoreError> {
    let json: Option<String> =
        sqlx::query_scalar("SELECT manifest_json FROM templates WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(pool)
            .await
            .map_err(backend("read an analysis template"))?;
    json.map(|j| decode(&j, || format!("analysis template `{name}`")))
        .transpose()
}

pub(super) async fn template_names(pool: &Pool) -> Result<BTreeSet<String>, StoreError> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM templates")
        .fetch_all(pool)
        .await
        .map_err(backend("list analysis templates"))?;
    Ok(names.into_iter().collect())
}

/// `apps.updated_at` is left alone: it tells when the manifest last changed, and a stable
/// release is not part of the manifest.
pub(super) async fn set_stable(
    store: &Store,
    app: &AppName,
    release: &Release,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    let json = encode(release, "encode a release")?;
    let mut tx = begin_write(store).await?;
    let updated = sqlx::query("UPDATE apps SET stable_json = $1 WHERE name = $2")
        .bind(json)
        .bind(app.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend("set a stable release"))?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::UnknownApp(app.clone()));
    }
    events::append(&mut tx, events, events::Owner::app(app)).await?;
    tx.commit()
        .await
        .map_err(backend("commit a stable release"))
}

pub(super) async fn pipelines(pool: &Pool) -> Result<Vec<Pipeline>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, manifest_json FROM pipelines ORDER BY name")
            .fetch_all(pool)
            .await
            .map_err(backend("read pipelines"))?;
    rows.iter()
        .map(|(name, json)| decode(json, || format!("pipeline `{name}`")))
        .collect()
}

pub(super) async fn windows(pool: &Pool) -> Result<Vec<DeploymentWindow>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, manifest_json FROM deployment_windows ORDER BY name")
            .fetch_all(pool)
            .await
            .map_err(backend("read deployment windows"))?;
    rows.iter()
        .map(|(name, json)| decode(json, || format!("deployment window `{name}`")))
        .collect()
}

pub(super) async fn notifiers(pool: &Pool) -> Result<Vec<Notifier>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, manifest_json FROM notifiers ORDER BY name")
            .fetch_all(pool)
            .await
            .map_err(backend("read notifiers"))?;
    rows.iter()
        .map(|(name, json)| decode(json, || format!("notifier `{name}`")))
        .collect()
}
