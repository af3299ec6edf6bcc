//! App-level operations beyond a single rollout: retry, undo, emergency stop, and the table of
//! analysis measurements.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use switchyard_api::{AnalysisList, CommandRequest, DeployResponse, FreezeView, MeasurementView};
use switchyard_core::AppName;
use switchyard_core::ports::{EventKind, EventQuery};

use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::app_name;
use crate::router::ServerContext;

/// `POST /api/v1/apps/{app}/retry`: the last failed, aborted or rolled-back rollout again.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/retry",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name"), ("overrideWindow" = Option<String>, Query, description = "an admin's reason to start outside the app's deployment windows (audited)")),
    request_body = CommandRequest,
    responses((status = 200, description = "the new rollout", body = DeployResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn retry(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    axum::extract::Query(over): axum::extract::Query<crate::pipelines::WindowOverride>,
    payload: Bytes,
) -> Result<Json<DeployResponse>, ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Deploy, Scope::App(&app))?;
    let _: CommandRequest = crate::body::parse_optional(&payload)?;
    crate::pipelines::window_gate(&ctx, &caller, &app, &over).await?;
    let snapshot = ctx.controller.retry(&app, &caller.author()).await?;
    Ok(Json(deploy_response(&ctx, &app, snapshot)))
}

/// `POST /api/v1/apps/{app}/undo`: back to the release the last rollout replaced.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/undo",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name")),
    request_body = CommandRequest,
    responses((status = 200, description = "the rollout back", body = DeployResponse), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn undo(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    payload: Bytes,
) -> Result<Json<DeployResponse>, ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Deploy, Scope::App(&app))?;
    let _: CommandRequest = crate::body::parse_optional(&payload)?;
    let snapshot = ctx.controller.undo(&app, &caller.author()).await?;
    Ok(Json(deploy_response(&ctx, &app, snapshot)))
}

fn deploy_response(
    ctx: &ServerContext,
    app: &AppName,
    snapshot: Option<switchyard_control::RolloutSnapshot>,
) -> DeployResponse {
    let version = snapshot
        .as_ref()
        .map(|s| s.rollout.canary.version.to_string())
        .unwrap_or_default();
    DeployResponse {
        app: app.to_string(),
        version,
        kind: "rollout".into(),
        rollout: snapshot.map(|s| crate::view::rollout_view_in(ctx, &s)),
    }
}

/// `POST /api/v1/apps/{app}/emergency-stop`: abort and freeze.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/emergency-stop",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name")),
    request_body = CommandRequest,
    responses((status = 200, description = "aborted and frozen", body = FreezeView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn emergency_stop(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    payload: Bytes,
) -> Result<Json<FreezeView>, ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Operate, Scope::App(&app))?;
    let request: CommandRequest = crate::body::parse_optional(&payload)?;
    let reason = request
        .reason
        .clone()
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("an emergency stop needs a `reason`"))?;
    let snapshot = ctx
        .controller
        .emergency_stop(&app, &reason, &caller.author())
        .await?;
    let reason = ctx.controller.frozen(&app).await?;
    Ok(Json(FreezeView {
        app: app.to_string(),
        frozen: reason.is_some(),
        reason,
        rollout: snapshot.map(|s| crate::view::rollout_view_in(&ctx, &s)),
    }))
}

/// `POST /api/v1/apps/{app}/unfreeze`.
#[utoipa::path(
    post,
    path = "/api/v1/apps/{app}/unfreeze",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name")),
    request_body = CommandRequest,
    responses((status = 200, description = "deploys allowed again", body = FreezeView), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn unfreeze(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    payload: Bytes,
) -> Result<Json<FreezeView>, ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Deploy, Scope::App(&app))?;
    let _: CommandRequest = crate::body::parse_optional(&payload)?;
    ctx.controller.unfreeze(&app, &caller.author()).await?;
    Ok(Json(FreezeView {
        app: app.to_string(),
        frozen: false,
        reason: None,
        rollout: None,
    }))
}

/// `GET /api/v1/apps/{app}/analysis`: every measurement of the latest rollout, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/apps/{app}/analysis",
    tag = "rollouts",
    params(("app" = String, Path, description = "the app's name")),
    responses((status = 200, description = "every measurement of the latest rollout", body = AnalysisList), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn analysis(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<AnalysisList>, ApiError> {
    let app = app_name(&app)?;
    caller.may(Action::Read, Scope::App(&app))?;
    let Some(latest) = ctx.controller.latest(&app).await? else {
        return Ok(Json(AnalysisList {
            rollout: None,
            measurements: Vec::new(),
        }));
    };
    let query = EventQuery {
        app: Some(app),
        rollout: Some(latest.id),
        kinds: vec![EventKind::Measurement],
        ..EventQuery::default()
    };
    let measurements = ctx
        .store
        .events(&query)
        .await?
        .into_iter()
        .filter_map(|e| {
            serde_json::from_value::<switchyard_analysis::Measurement>(e.event.data).ok()
        })
        .map(|m| MeasurementView {
            at: m.at.to_rfc3339(),
            template: m.template,
            metric: m.metric,
            phase: serde_json::to_value(m.phase)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            value: m.value,
            baseline: m.baseline,
            samples: m.samples,
            message: m.message,
            dry_run: m.dry_run,
            evidence: m.evidence,
        })
        .collect();
    Ok(Json(AnalysisList {
        rollout: Some(latest.id),
        measurements,
    }))
}
