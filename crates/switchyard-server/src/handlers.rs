//! One function per endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path as FsPath;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use switchyard_api::*;
use switchyard_core::AppName;
use switchyard_core::manifest::app::Stickiness;
use switchyard_core::manifest::experiment::{SplitSpec, TrafficSplit};
use switchyard_core::manifest::{App, Experiment, ManifestErrors, ManifestSet, Strategy, load_str};
use switchyard_core::ports::EventQuery;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus};
use switchyard_rollout::machine::Command;

use crate::error::ApiError;
use crate::router::ServerContext;
use crate::view::rollout_view;

type ApiResult<T> = Result<Json<T>, ApiError>;

fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload
        .map(|Json(v)| v)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {}", e.body_text())))
}

/// An app name from a URL path, or a 400 naming what is wrong with it.
pub(crate) fn app_name(text: &str) -> Result<AppName, ApiError> {
    AppName::new(text).map_err(|e| ApiError::bad_request(format!("app name `{text}` {e}")))
}

pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn metrics(State(ctx): State<ServerContext>) -> impl IntoResponse {
    let mut text = (ctx.prometheus)();
    let mut latest = Vec::new();
    match ctx.store.apps().await {
        Ok(apps) => {
            for app in apps {
                if let Ok(Some(s)) = ctx.controller.latest(&app.manifest.metadata.name).await {
                    latest.push(s);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "rollout metrics left out of this scrape"),
    }
    // The proxy's text is OpenMetrics and ends with `# EOF`; ours goes before that line.
    let eof = text.ends_with("# EOF\n");
    if eof {
        text.truncate(text.len() - "# EOF\n".len());
    }
    text.push_str(&crate::rollout_metrics::encode(&latest));
    if eof {
        text.push_str("# EOF\n");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

fn manifest_problems(errors: ManifestErrors) -> ApiError {
    let problems: Vec<ManifestProblem> = errors
        .0
        .iter()
        .map(|e| ManifestProblem {
            file: e.file.display().to_string(),
            line: e.line,
            column: e.column,
            path: e.path.clone(),
            message: e.kind.to_string(),
        })
        .collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_manifest",
        errors.to_string(),
    )
    .with_details(serde_json::to_value(problems).unwrap_or_default())
}

/// `POST /api/v1/apply`: all files or nothing.
pub async fn apply(
    State(ctx): State<ServerContext>,
    payload: Result<Json<ApplyRequest>, JsonRejection>,
) -> ApiResult<ApplyResponse> {
    let request = body(payload)?;
    let mut set = ManifestSet::default();
    let mut errors = Vec::new();
    for file in &request.files {
        let name = FsPath::new(&file.name);
        // A document defined in an earlier file is an error located in this one.
        if let Err(e) = load_str(&file.content, name).and_then(|s| set.merge(s, name)) {
            errors.extend(e.0);
        }
    }
    if !errors.is_empty() {
        return Err(manifest_problems(ManifestErrors(errors)));
    }
    if set.is_empty() {
        return Err(ApiError::bad_request(
            "no manifest documents in the request",
        ));
    }
    let applied: BTreeSet<String> = ctx.store.template_names().await?;
    set.check_references(&applied).map_err(manifest_problems)?;
    check_traffic_experiments(&ctx, &set).await?;
    if request.dry_run {
        let results = set
            .manifests()
            .iter()
            .map(|m| ApplyResult {
                kind: m.kind().into(),
                name: m.name().into(),
                result: "valid".into(),
            })
            .collect();
        return Ok(Json(ApplyResponse {
            dry_run: true,
            results,
        }));
    }
    let bound = ctx
        .listeners
        .ensure(&set.apps)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "listen_failed", e.to_string()))?;
    match ctx.store.apply(&set, "user:cli", ctx.clock.now()).await {
        Ok(outcome) => {
            if !set.experiments.is_empty() {
                ctx.experiments.refresh().await?;
            }
            let results = outcome
                .results
                .into_iter()
                .map(|(kind, name, result)| ApplyResult { kind, name, result })
                .collect();
            Ok(Json(ApplyResponse {
                dry_run: false,
                results,
            }))
        }
        Err(e) => {
            ctx.listeners.release(&bound).await;
            Err(e.into())
        }
    }
}

/// `GET /api/v1/apps`.
pub async fn apps(State(ctx): State<ServerContext>) -> ApiResult<Vec<AppSummary>> {
    let mut out = Vec::new();
    for record in ctx.store.apps().await? {
        let name = record.manifest.metadata.name.clone();
        let rollout = ctx.controller.latest(&name).await?.map(|s| RolloutBrief {
            id: s.id,
            version: s.rollout.canary.version.to_string(),
            phase: s.rollout.phase.name().to_string(),
            weight: s.rollout.weight,
        });
        out.push(AppSummary {
            name: name.to_string(),
            listen: record.manifest.spec.listen.to_string(),
            generation: record.generation,
            stable: record.stable.map(|s| s.version.to_string()),
            rollout,
        });
    }
    Ok(Json(out))
}

/// `POST /api/v1/apps/{app}/deploy`.
pub async fn deploy(
    State(ctx): State<ServerContext>,
    Path(app): Path<String>,
    payload: Result<Json<DeployRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<DeployResponse>), ApiError> {
    let app = app_name(&app)?;
    let request = body(payload)?;
    refuse_during_traffic_experiment(&ctx, &app, "deploy")?;
    let version = request
        .version
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let snapshot = ctx.controller.deploy(&app, &request, "user:cli").await?;
    let kind = if snapshot.is_some() {
        "rollout"
    } else {
        "initial"
    };
    let rollout = snapshot.map(|s| rollout_view(&s, ctx.metrics.as_ref()));
    Ok((
        StatusCode::CREATED,
        Json(DeployResponse {
            app: app.to_string(),
            version,
            kind: kind.into(),
            rollout,
        }),
    ))
}

/// `GET /api/v1/apps/{app}/rollout`: the latest rollout.
pub async fn rollout(
    State(ctx): State<ServerContext>,
    Path(app): Path<String>,
) -> ApiResult<RolloutView> {
    let app = app_name(&app)?;
    let snapshot = ctx.controller.latest(&app).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_rollout",
            format!("app `{app}` has never had a rollout"),
        )
    })?;
    Ok(Json(rollout_view(&snapshot, ctx.metrics.as_ref())))
}

/// `POST /api/v1/apps/{app}/rollout/{promote|abort|pause|resume|approve}`.
pub async fn command(
    State(ctx): State<ServerContext>,
    Path((app, command)): Path<(String, String)>,
    payload: Option<Json<CommandRequest>>,
) -> ApiResult<RolloutView> {
    let app = app_name(&app)?;
    let request = payload.map(|Json(r)| r).unwrap_or_default();
    let duration = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| {
                switchyard_core::duration::parse(t)
                    .map_err(|e| ApiError::bad_request(format!("`{field}`: {e}")))
            })
            .transpose()
    };
    let command = match command.as_str() {
        "promote" => Command::Promote { full: request.full },
        "abort" => Command::Abort {
            reason: request.reason.clone(),
        },
        "pause" => Command::Pause {
            duration: duration("duration", &request.duration)?,
        },
        "resume" => Command::Resume {
            weight: request.weight,
            interval: duration("interval", &request.interval)?,
        },
        "approve" => Command::Approve {
            reason: request.reason.clone(),
        },
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown command `{other}`; use promote, abort, pause, resume or approve"),
            ));
        }
    };
    let actor = request.actor.unwrap_or_else(|| "user:cli".into());
    let snapshot = ctx.controller.command(&app, command, &actor).await?;
    Ok(Json(rollout_view(&snapshot, ctx.metrics.as_ref())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/apps/{app}/events`.
pub async fn events(
    State(ctx): State<ServerContext>,
    Path(app): Path<String>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<EventList> {
    let app = app_name(&app)?;
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if ctx.store.app(&app).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "app_not_found",
            format!("app `{app}` does not exist; apply its manifest first"),
        ));
    }
    let query = EventQuery {
        app: Some(app),
        after: params.after,
        limit: params.limit.or(Some(1000)),
        ..EventQuery::default()
    };
    Ok(Json(EventList {
        events: ctx.store.events(&query).await?,
    }))
}

/// The app a traffic experiment splits, or `None` for a flag experiment.
fn traffic_split(experiment: &Experiment) -> Option<&TrafficSplit> {
    match &experiment.spec.split {
        SplitSpec::Traffic(t) => Some(t),
        SplitSpec::Flag(_) => None,
    }
}

/// 409 `experiment_running` when a traffic experiment splits `app`: a rollout (`what`: deploy,
/// retry, undo) would take over its routes.
pub(crate) fn refuse_during_traffic_experiment(
    ctx: &ServerContext,
    app: &AppName,
    what: &str,
) -> Result<(), ApiError> {
    let live = ctx.experiments.live();
    let Some(experiment) = running_traffic_experiment(&live.records, app) else {
        return Ok(());
    };
    let key = experiment.manifest.key();
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "experiment_running",
        format!(
            "app `{app}` is split between releases by traffic experiment `{key}`, and a \
             rollout would take over its routes; stop the experiment first \
             (`switchyard experiment stop {key}`), then {what}"
        ),
    ))
}

/// The running traffic experiment that splits `app`'s traffic, if any.
fn running_traffic_experiment<'a>(
    records: &'a BTreeMap<String, ExperimentRecord>,
    app: &AppName,
) -> Option<&'a ExperimentRecord> {
    records.values().find(|r| {
        r.status == ExperimentStatus::Running
            && traffic_split(&r.manifest).is_some_and(|t| &t.app == app)
    })
}

/// The traffic experiments that run once `set` is applied, by app, each marked `true` when the
/// apply brings it. Applying a stopped experiment again leaves it stopped.
fn traffic_after_apply<'a>(
    records: &'a BTreeMap<String, ExperimentRecord>,
    set: &'a ManifestSet,
) -> BTreeMap<&'a AppName, Vec<(&'a Experiment, bool)>> {
    let applied: BTreeSet<&str> = set.experiments.iter().map(Experiment::key).collect();
    let running = |r: &ExperimentRecord| r.status == ExperimentStatus::Running;
    let kept = records
        .values()
        .filter(|r| running(r) && !applied.contains(r.manifest.key()))
        .map(|r| (&r.manifest, false));
    let brought = set
        .experiments
        .iter()
        .filter(|e| records.get(e.key()).is_none_or(running))
        .map(|e| (e, true));
    let mut by_app: BTreeMap<&AppName, Vec<(&Experiment, bool)>> = BTreeMap::new();
    for (experiment, new) in kept.chain(brought) {
        if let Some(t) = traffic_split(experiment) {
            by_app.entry(&t.app).or_default().push((experiment, new));
        }
    }
    by_app
}

/// Refuses an apply after which a traffic experiment would run but could not: its app does not
/// exist, does not use the canary strategy, is sticky by another key, cannot resolve a
/// variant's version, has a rollout in progress, or is split by another running experiment.
/// Checked are the apps of the traffic experiments the apply brings, and the apps it changes
/// that a running traffic experiment splits.
async fn check_traffic_experiments(ctx: &ServerContext, set: &ManifestSet) -> Result<(), ApiError> {
    let live = ctx.experiments.live();
    for (app, experiments) in traffic_after_apply(&live.records, set) {
        let in_set = set.apps.iter().find(|a| &a.metadata.name == app);
        if in_set.is_none() && !experiments.iter().any(|(_, new)| *new) {
            continue;
        }
        let key = experiments[0].0.key();
        if let Some((other, _)) = experiments.get(1) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "experiment_conflict",
                format!(
                    "app `{app}` can be split by one traffic experiment at a time, but `{key}` \
                     and `{}` would both run; stop one first",
                    other.key()
                ),
            ));
        }
        let stored = ctx.store.app(app).await?;
        let Some(manifest) = in_set.or(stored.as_ref().map(|r| &r.manifest)) else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_app",
                format!(
                    "experiment `{key}` splits the traffic of app `{app}`, which does not \
                     exist; apply its manifest first (or in the same apply)"
                ),
            ));
        };
        traffic_experiment_fits(experiments[0].0, manifest).map_err(|message| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_experiment",
                message,
            )
        })?;
        if let Some(rollout) = ctx.store.latest_rollout(app).await?.filter(|r| r.active) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "rollout_in_progress",
                format!(
                    "experiment `{key}` cannot split app `{app}`: rollout {} (to {}) is in \
                     progress; promote or abort it first",
                    rollout.id, rollout.version
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `app` can serve the traffic experiment: a canary strategy whose stickiness, if any,
/// is the experiment's unit, and a release for every variant's version.
fn traffic_experiment_fits(experiment: &Experiment, app: &App) -> Result<(), String> {
    let key = experiment.key();
    let name = &app.metadata.name;
    let Some(split) = traffic_split(experiment) else {
        return Ok(());
    };
    let sticky = match &app.spec.strategy {
        Strategy::Canary(c) => c.stickiness.as_ref(),
        Strategy::BlueGreen(_) | Strategy::Rolling(_) => {
            let strategy = match app.spec.strategy {
                Strategy::BlueGreen(_) => "blueGreen",
                _ => "rolling",
            };
            return Err(format!(
                "experiment `{key}`: app `{name}` uses the {strategy} strategy; a traffic \
                 experiment splits the routes of an app with the canary strategy"
            ));
        }
    };
    if let Some(sticky) = sticky.filter(|s| *s != &split.unit) {
        return Err(format!(
            "experiment `{key}` identifies units by {} but app `{name}`'s canary is sticky by \
             {}; use the same key for both",
            describe(&split.unit),
            describe(sticky)
        ));
    }
    for variant in &experiment.spec.variants {
        let request = switchyard_rollout::DeployRequest {
            version: variant.version.clone(),
            ..Default::default()
        };
        if let Err(e) = switchyard_rollout::resolve::resolve(app, &request) {
            return Err(format!(
                "experiment `{key}`: variant `{}` cannot run as a release of app `{name}`: {e}",
                variant.name
            ));
        }
    }
    Ok(())
}

fn describe(unit: &Stickiness) -> String {
    match unit {
        Stickiness::Header(h) => format!("header `{h}`"),
        Stickiness::Cookie(c) => format!("cookie `{c}`"),
        Stickiness::Query(q) => format!("query parameter `{q}`"),
    }
}
