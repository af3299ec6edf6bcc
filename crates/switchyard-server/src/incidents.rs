//! `/api/v1/incidents`: every automatic rollback (newest first), one with its evidence, and its
//! self-contained HTML report.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchyard_control::auth::{Action, Scope};
use switchyard_control::incidents::{self, Incident, IncidentSummary};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

/// The incident routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/incidents", get(list))
        .route("/api/v1/incidents/{id}", get(get_one))
        .route("/api/v1/incidents/{id}/report", get(report))
}

/// `GET /api/v1/incidents`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "rollouts",
    responses((status = 200, description = "every automatic rollback the caller may see, newest first", body = Vec<Object>), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<Json<Vec<IncidentSummary>>, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    Ok(Json(
        incidents::list(ctx.store.as_ref())
            .await?
            .into_iter()
            .filter(|i| caller.principal.sees(&i.app))
            .collect(),
    ))
}

/// `GET /api/v1/incidents/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "rollouts",
    params(("id" = i64, Path, description = "the incident's id: its rollout's")),
    responses((status = 200, description = "the incident: what decided, the exposure, the evidence, the traffic, the timeline, what to look at next", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Incident>, ApiError> {
    Ok(Json(crate::ui::incidents::load(&ctx, &caller, id).await?))
}

/// `GET /api/v1/incidents/{id}/report`: one self-contained HTML page.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}/report",
    tag = "rollouts",
    params(("id" = i64, Path, description = "the incident's id: its rollout's")),
    responses((status = 200, description = "a self-contained HTML page", body = String, content_type = "text/html"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn report(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let incident = crate::ui::incidents::load(&ctx, &caller, id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::ui::incidents::report(&incident),
    )
        .into_response())
}
