//! One function per endpoint.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use switchyard_api::*;
use switchyard_control::{Expected, ManifestText, Manifests};
use switchyard_core::AppName;
use switchyard_core::manifest::app::RuntimeSpec;
use switchyard_core::ports::EventQuery;
use switchyard_rollout::machine::Command;

use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// An app name from a URL path, or a 400 naming what is wrong with it.
pub(crate) fn app_name(text: &str) -> Result<AppName, ApiError> {
    AppName::new(text).map_err(|e| ApiError::bad_request(format!("app name `{text}` {e}")))
}

#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "the daemon answers", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody))
)]
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses((status = 200, description = "releases, rollouts and experiments are restored, and every live proxy serves the current tables", body = Object), (status = 503, description = "not yet; the message says what is missing", body = switchyard_api::ErrorBody))
)]
pub async fn ready(State(ctx): State<ServerContext>) -> Result<impl IntoResponse, ApiError> {
    ctx.dataplane
        .ready()
        .map_err(|why| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why))?;
    Ok(Json(serde_json::json!({"status": "ok"})))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn metrics(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<impl IntoResponse, ApiError> {
    caller.may(Action::Read, Scope::Everything)?;
    let mut text = (ctx.prometheus)();
    let mut environments = std::collections::BTreeMap::new();
    match ctx.store.apps().await {
        Ok(apps) => {
            for app in apps {
                if let Some(env) = app.manifest.metadata.environment() {
                    environments.insert(app.manifest.metadata.name.to_string(), env.to_owned());
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "environments left out of this scrape"),
    }
    let latest: Vec<_> = match ctx.controller.latest_of_every_app().await {
        Ok(latest) => latest.into_values().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "rollout metrics left out of this scrape");
            Vec::new()
        }
    };
    let deployments = match ctx.store.deployments().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "deployment metrics left out of this scrape");
            Vec::new()
        }
    };
    let outbox = match ctx.notifications.counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "notification metrics left out of this scrape");
            Vec::new()
        }
    };
    // The proxy's text is OpenMetrics and ends with `# EOF`; ours goes before that line.
    let eof = text.ends_with("# EOF\n");
    if eof {
        text.truncate(text.len() - "# EOF\n".len());
    }
    text.push_str(&crate::rollout_metrics::encode(&latest));
    text.push_str(&crate::deployment_metrics::encode(&deployments, &|app| {
        environments.get(app).cloned().unwrap_or_default()
    }));
    text.push_str(&crate::notifications::encode(&outbox));
    if eof {
        text.push_str("# EOF\n");
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// `POST /api/v1/apply`: all files or nothing.
#[utoipa::path(
    post,
    path = "/api/v1/apply",
    tag = "apps",
    request_body = ApplyRequest,
    responses((status = 200, description = "applied (or checked, with dry_run)", body = ApplyResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn apply(
    State(ctx): State<ServerContext>,
    caller: Caller,
    payload: Result<Json<ApplyRequest>, JsonRejection>,
) -> ApiResult<ApplyResponse> {
    // A caller that may apply nothing learns nothing of how its manifests would parse.
    caller.may(Action::Deploy, Scope::Any)?;
    let request = crate::body::json(payload)?;
    let files: Vec<ManifestText<'_>> = request
        .files
        .iter()
        .map(|f| ManifestText {
            name: &f.name,
            content: &f.content,
        })
        .collect();
    let set = Manifests::parse(&files)?;
    for app in &set.apps {
        caller.may(Action::Deploy, Scope::App(&app.metadata.name))?;
    }
    for experiment in &set.experiments {
        match Manifests::traffic_app(experiment) {
            Some(app) => caller.may(Action::Deploy, Scope::App(app))?,
            None => caller.may(Action::Deploy, Scope::Everything)?,
        }
    }
    if !set.templates.is_empty() {
        caller.may(Action::Deploy, Scope::Everything)?;
    }
    let results = ctx
        .manifests
        .apply(&set, request.dry_run, &caller.author())
        .await?
        .into_iter()
        .map(|(kind, name, result)| ApplyResult { kind, name, result })
        .collect();
    Ok(Json(ApplyResponse {
        dry_run: request.dry_run,
        results,
    }))
}

/// `GET /api/v1/apps`.
#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "apps",
    responses((status = 200, description = "every app the token may see", body = Vec<AppSummary>), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn apps(State(ctx): State<ServerContext>, caller: Caller) -> ApiResult<Vec<AppSummary>> {
    caller.may(Action::Read, Scope::Any)?;
    let mut out = Vec::new();
    let mut latest = ctx.controller.latest_of_every_app().await?;
    for record in ctx.store.apps().await? {
        let name = record.manifest.metadata.name.clone();
        if !caller.principal.sees(name.as_str()) {
            continue;
        }
        let rollout = latest.remove(&name).map(|s| RolloutBrief {
            id: s.id,
            version: s.rollout.canary.version.to_string(),
            phase: s.rollout.phase.name().to_string(),
            weight: s.rollout.weight,
            step: s.rollout.step,
            steps: s.rollout.steps.len(),
            started_at: s.created_at.to_rfc3339(),
        });
        out.push(AppSummary {
            name: name.to_string(),
            listen: match (&record.manifest.spec.listen, &record.manifest.spec.runtime) {
                (Some(listen), _) => listen.to_string(),
                (None, RuntimeSpec::Kubernetes(k)) => format!("kubernetes/{}", k.namespace),
                (None, _) => String::new(),
            },
            generation: record.generation,
            stable: record.stable.map(|s| s.version.to_string()),
            rollout,
        });
    }
    Ok(Json(out))
}

/// `POST /api/v1/apps/{app}/deploy`.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/deploy",
    tag = "apps",
    params(("app" = String, Path, description = "the app's name"), ("overrideWindow" = Option<String>, Query, description = "an admin's reason to deploy outside the app's deployment windows (audited)")),
    request_body = DeployRequest,
    responses((status = 201, description = "the first release, or the rollout that started", body = DeployResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn deploy(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    axum::extract::Query(over): axum::extract::Query<crate::pipelines::WindowOverride>,
    payload: Result<Json<DeployRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<DeployResponse>), ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Deploy, Scope::App(&app))?;
    let request = crate::body::json(payload)?;
    crate::pipelines::window_gate(&ctx, &caller, &app, &over).await?;
    let version = request
        .version
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let snapshot = ctx
        .controller
        .deploy(&app, &request, &caller.author())
        .await?;
    let kind = if snapshot.is_some() {
        "rollout"
    } else {
        "initial"
    };
    let rollout = snapshot.map(|s| crate::view::rollout_view_in(&ctx, &s));
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
#[utoipa::path(
    get,
    path = "/api/v1/apps/{app}/rollout",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name")),
    responses((status = 200, description = "the app's latest rollout", body = RolloutView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn rollout(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
) -> ApiResult<RolloutView> {
    let app = app_name(&app)?;
    caller.may(Action::Read, Scope::App(&app))?;
    let snapshot = ctx.controller.latest(&app).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_rollout",
            format!("app `{app}` has never had a rollout"),
        )
    })?;
    Ok(Json(crate::view::rollout_view_in(&ctx, &snapshot)))
}

/// `POST /api/v1/apps/{app}/rollout/{promote|abort|pause|resume|approve}`.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/rollout/{command}",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name"), ("command" = String, Path, description = "promote, abort, pause, resume or approve")),
    request_body = CommandRequest,
    responses((status = 200, description = "the rollout after the command", body = RolloutView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn command(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path((app, command)): Path<(String, String)>,
    payload: Bytes,
) -> ApiResult<RolloutView> {
    let app = app_name(&app)?;
    caller.may(Action::Operate, Scope::App(&app))?;
    let request: CommandRequest = crate::body::parse_optional(&payload)?;
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
    let expected = request.expect.map(|e| Expected {
        rollout: e.rollout,
        step: e.step,
    });
    let snapshot = ctx
        .controller
        .command(&app, command, expected, &caller.author())
        .await?;
    Ok(Json(crate::view::rollout_view_in(&ctx, &snapshot)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/apps/{app}/events`.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{app}/events",
    tag = "apps",
    params(("app" = String, Path, description = "the app's name"), ("after" = Option<i64>, Query, description = "only events with a larger id"), ("limit" = Option<u32>, Query, description = "at most this many, the newest")),
    responses((status = 200, description = "the app's events, oldest first", body = EventList), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn events(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    params: Result<Query<EventParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<EventList> {
    let app = app_name(&app)?;
    caller.may(Action::Read, Scope::App(&app))?;
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
