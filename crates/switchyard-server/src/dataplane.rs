//! `/api/v1/dataplane/*`: the table protocol between the control plane and its proxies.
//!
//! - `GET tables?generation=G&version=V&wait=S`: what a proxy serving `(G, V)` needs, as a
//!   delta or a snapshot; waits up to `S` seconds (at most 60) for a change, then answers 204.
//! - `POST reports`: a proxy's report (what it serves, acknowledgements, counters, exposures).
//!   A proxy token may only report under its own name; an older epoch of a proxy is refused.
//! - `GET proxies`: every proxy that reported, for operators.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchyard_control::auth::{Action, Role, Scope};
use switchyard_control::dataplane::ReportError;
use switchyard_core::dataplane::{ProxyReport, ProxyStatus};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

/// The longest a table request waits for a change.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/dataplane/tables", get(tables))
        .route("/api/v1/dataplane/reports", post(report))
        .route("/api/v1/dataplane/proxies", get(proxies))
}

/// Where a proxy is.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TablesQuery {
    /// The generation of the tables the proxy serves (0: none).
    #[serde(default)]
    pub generation: u64,
    /// The version it serves (0: none).
    #[serde(default)]
    pub version: u64,
    /// Seconds to wait for a change (0 to 60; default 0).
    #[serde(default)]
    pub wait: u64,
}

/// `GET /api/v1/dataplane/tables`.
#[utoipa::path(
    get,
    path = "/api/v1/dataplane/tables",
    tag = "dataplane",
    params(TablesQuery),
    responses(
        (status = 200, description = "a delta (`base` set) or a snapshot (`base` absent)", body = Object),
        (status = 204, description = "nothing changed while waiting, or the control plane is still recovering"),
        (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn tables(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(q): Query<TablesQuery>,
) -> Result<Response, ApiError> {
    caller.may(Action::ServeTraffic, Scope::Everything)?;
    let wait = Duration::from_secs(q.wait).min(MAX_WAIT);
    match ctx
        .dataplane
        .wait_update(q.generation, q.version, wait)
        .await
    {
        Some(update) => Ok(Json(update).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// `POST /api/v1/dataplane/reports`.
#[utoipa::path(
    post,
    path = "/api/v1/dataplane/reports",
    tag = "dataplane",
    request_body(content = Object, description = "the proxy's report"),
    responses(
        (status = 204, description = "taken"),
        (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(ctx): State<ServerContext>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    caller.may(Action::ServeTraffic, Scope::Everything)?;
    let report: ProxyReport = crate::body::parse(&body)?;
    let principal = &caller.principal;
    if principal.role == Role::Proxy && report.proxy != principal.name {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "proxy_id_mismatch",
            format!(
                "this token is proxy `{}`'s; it cannot report as `{}`",
                principal.name, report.proxy
            ),
        ));
    }
    if report.proxy.is_empty() || report.proxy.len() > 253 {
        return Err(ApiError::bad_request(
            "proxy: an id of 1 to 253 characters is required",
        ));
    }
    ctx.dataplane.report(report).map_err(|e| match &e {
        ReportError::StaleEpoch { current, .. } => {
            ApiError::new(StatusCode::CONFLICT, "stale_proxy_epoch", e.to_string())
                .with_details(serde_json::json!({ "current_epoch": current }))
        }
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/dataplane/proxies`.
#[utoipa::path(
    get,
    path = "/api/v1/dataplane/proxies",
    tag = "dataplane",
    responses(
        (status = 200, description = "every proxy that reported since the control plane started", body = Vec<Object>),
        (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)
    ),
    security(("bearer" = []))
)]
pub async fn proxies(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<Json<Vec<ProxyStatus>>, ApiError> {
    caller.may(Action::Read, Scope::Everything)?;
    Ok(Json(ctx.dataplane.proxies()))
}
