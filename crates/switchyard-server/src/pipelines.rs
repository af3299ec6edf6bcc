//! `/api/v1/releases` and `/api/v1/pipelines`: releasing a pipeline or one app, the runs and
//! their status, approvals, window overrides and cancellations; and the deployment-window
//! gate of direct deploys.

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use switchyard_control::auth::{Action, Scope};
use switchyard_control::pipelines::{PipelineError, RunSnapshot, Subject};
use switchyard_core::{AppName, Version};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

/// The pipeline routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/releases", post(release))
        .route("/api/v1/pipelines/runs", get(runs))
        .route("/api/v1/pipelines/{name}", get(status))
        .route("/api/v1/pipelines/{name}/approve", post(approve))
        .route(
            "/api/v1/pipelines/{name}/override-window",
            post(override_window),
        )
        .route("/api/v1/pipelines/{name}/cancel", post(cancel))
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        use PipelineError as E;
        let e = match e {
            E::Store(e) => return e.into(),
            e => e,
        };
        let (status, code) = match &e {
            E::Unknown(_) => (StatusCode::NOT_FOUND, "pipeline_not_found"),
            E::InProgress { .. } => (StatusCode::CONFLICT, "run_in_progress"),
            E::NoRun(_) => (StatusCode::NOT_FOUND, "no_run"),
            E::NothingToApprove { .. } | E::NothingToOverride(_) => {
                (StatusCode::CONFLICT, "nothing_to_do")
            }
            E::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            E::NoReason => (StatusCode::UNPROCESSABLE_ENTITY, "reason_required"),
            E::Corrupt { .. } | E::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
            return ApiError::new(status, code, "internal error; see the daemon's log");
        }
        ApiError::new(status, code, e.to_string())
    }
}

/// `POST /api/v1/releases`: what `switchyard release` sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// A pipeline's name, or an app's.
    pub name: String,
    #[schema(value_type = String)]
    pub version: Version,
}

/// A reason, and for approvals the stage.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub reason: String,
    /// The stage to approve; the first that awaits an approval when absent.
    #[serde(default)]
    pub stage: Option<String>,
}

/// The apps `name`'s runs deploy: every app of the pipeline, or the app.
async fn scope_apps(ctx: &ServerContext, name: &str) -> Result<Vec<AppName>, ApiError> {
    let (subject, stages) = ctx.pipelines.subject(name).await?;
    Ok(match subject {
        Subject::App(app) => vec![app],
        Subject::Pipeline(_) => stages
            .iter()
            .flat_map(|s| s.wave_targets().into_iter().flatten())
            .collect(),
    })
}

/// The caller may `action` on every app of `name`.
async fn may_all(
    ctx: &ServerContext,
    caller: &Caller,
    name: &str,
    action: Action,
) -> Result<(), ApiError> {
    for app in scope_apps(ctx, name).await? {
        caller.may(action, Scope::App(&app))?;
    }
    Ok(())
}

/// `POST /api/v1/releases`: starts a run of a pipeline, or of one app (which waits for the
/// app's deployment windows instead of being refused).
#[utoipa::path(
    post,
    path = "/api/v1/releases",
    tag = "pipelines",
    request_body = ReleaseRequest,
    responses((status = 201, description = "the run, as it stands after its first step", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn release(
    State(ctx): State<ServerContext>,
    caller: Caller,
    payload: Result<Json<ReleaseRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<RunSnapshot>), ApiError> {
    let request = crate::body::json(payload)?;
    may_all(&ctx, &caller, &request.name, Action::Deploy).await?;
    let run = ctx
        .pipelines
        .release(&request.name, &request.version, &caller.author())
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// `GET /api/v1/pipelines/{name}`: the latest run of a pipeline or of an app's release.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/{name}",
    tag = "pipelines",
    params(("name" = String, Path, description = "a pipeline's or an app's name")),
    responses((status = 200, description = "the latest run: stages, waves, targets and their rollouts, what it waits for", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn status(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<RunSnapshot>, ApiError> {
    may_all(&ctx, &caller, &name, Action::Read).await?;
    let run = ctx.pipelines.latest(&name).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_run",
            format!("`{name}` has never been released"),
        )
    })?;
    Ok(Json(run))
}

/// Query of `GET /api/v1/pipelines/runs`.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/v1/pipelines/runs`: the most recent runs the caller may see, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/pipelines/runs",
    tag = "pipelines",
    params(("limit" = Option<u32>, Query, description = "at most this many (50 by default, at most 500)")),
    responses((status = 200, description = "runs, newest first", body = Vec<Object>), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn runs(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<RunSnapshot>>, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    let limit = query.limit.unwrap_or(50).min(500);
    let runs = ctx.pipelines.list(limit).await?;
    Ok(Json(
        runs.into_iter()
            .filter(|r| {
                r.run
                    .stages
                    .iter()
                    .flat_map(|s| s.waves.iter().flatten())
                    .all(|t| caller.principal.sees(t.app.as_str()))
            })
            .collect(),
    ))
}

/// `POST /api/v1/pipelines/{name}/approve`: approves the stage that awaits an approval; the
/// caller needs the stage's role (or above) on every app of the stage.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{name}/approve",
    tag = "pipelines",
    params(("name" = String, Path, description = "a pipeline's name")),
    request_body = DecisionRequest,
    responses((status = 200, description = "the run after the approval", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn approve(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(name): Path<String>,
    payload: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<RunSnapshot>, ApiError> {
    let request = crate::body::json(payload)?;
    may_all(&ctx, &caller, &name, Action::Read).await?;
    let run = ctx
        .pipelines
        .approve(
            &name,
            request.stage.as_deref(),
            &request.reason,
            &caller.principal,
            &caller.author(),
        )
        .await?;
    Ok(Json(run))
}

/// `POST /api/v1/pipelines/{name}/override-window`: an admin lets the stage that deployment
/// windows hold start now; audited with its reason.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{name}/override-window",
    tag = "pipelines",
    params(("name" = String, Path, description = "a pipeline's or an app's name")),
    request_body = DecisionRequest,
    responses((status = 200, description = "the run after the override", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn override_window(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(name): Path<String>,
    payload: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<RunSnapshot>, ApiError> {
    let request = crate::body::json(payload)?;
    may_all(&ctx, &caller, &name, Action::Administer).await?;
    let run = ctx
        .pipelines
        .override_windows(&name, &request.reason, &caller.author())
        .await?;
    Ok(Json(run))
}

/// `POST /api/v1/pipelines/{name}/cancel`: ends the run in progress; nothing is undone and
/// rollouts in progress go on.
#[utoipa::path(
    post,
    path = "/api/v1/pipelines/{name}/cancel",
    tag = "pipelines",
    params(("name" = String, Path, description = "a pipeline's or an app's name")),
    request_body = DecisionRequest,
    responses((status = 200, description = "the cancelled run", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(name): Path<String>,
    payload: Result<Json<DecisionRequest>, JsonRejection>,
) -> Result<Json<RunSnapshot>, ApiError> {
    let request = crate::body::json(payload)?;
    may_all(&ctx, &caller, &name, Action::Operate).await?;
    let run = ctx
        .pipelines
        .cancel(&name, &request.reason, &caller.author())
        .await?;
    Ok(Json(run))
}

/// Query of a deploy or a retry: an admin's override of the app's deployment windows.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowOverride {
    /// Why the deploy may start outside the app's deployment windows.
    #[serde(default)]
    pub override_window: Option<String>,
}

/// Refuses a deploy of `app` that its deployment windows hold now (saying until when), unless
/// an admin overrides them with a reason, which is audited.
///
/// # Errors
/// `outside_window` (409), or the override's refusal.
pub async fn window_gate(
    ctx: &ServerContext,
    caller: &Caller,
    app: &AppName,
    over: &WindowOverride,
) -> Result<(), ApiError> {
    let Some(record) = ctx.store.app(app).await? else {
        return Ok(());
    };
    let Some((closed, until)) = ctx.pipelines.deploy_hold(&record).await? else {
        return Ok(());
    };
    match over.override_window.as_deref().map(str::trim) {
        Some(reason) if !reason.is_empty() => {
            caller.may(Action::Administer, Scope::App(app))?;
            ctx.pipelines
                .record_override(app, &closed, reason, &caller.author())
                .await?;
            Ok(())
        }
        Some(_) => Err(PipelineError::NoReason.into()),
        None => {
            let why: Vec<String> = closed.iter().map(ToString::to_string).collect();
            let when = until.map_or_else(
                || "it does not open within a year".to_owned(),
                |t| format!("it opens at {t}"),
            );
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "outside_window",
                format!(
                    "`{app}` may not be deployed now: {}; {when}. `switchyard release {app} VERSION` waits for it; an admin may deploy now with `--override-window REASON`",
                    why.join("; ")
                ),
            )
            .with_details(serde_json::json!({
                "windows": closed,
                "until": until.map(|t| t.to_rfc3339()),
            })))
        }
    }
}
