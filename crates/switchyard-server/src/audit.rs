//! `/api/v1/audit`: the whole event log — every mutation with who, from where and why — with
//! filters, and the check of its hash chain (and of the flag audit log's).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use switchyard_api::{AuditVerification, EventList};
use switchyard_control::auth::{Action, Scope};
use switchyard_core::ports::{EventKind, EventQuery};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::app_name;
use crate::router::ServerContext;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    app: Option<String>,
    actor: Option<String>,
    /// Comma-separated event kinds (`deploy`-style names as in `history`).
    kind: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/audit?app=&actor=&kind=&after=&limit=`: oldest first; the newest `limit`
/// (default 1000) when more match.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(("app" = Option<String>, Query), ("actor" = Option<String>, Query), ("kind" = Option<String>, Query, description = "comma-separated event kinds"), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "matching events, oldest first", body = EventList), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let app = params.app.as_deref().map(app_name).transpose()?;
    match &app {
        Some(app) => caller.may(Action::Read, Scope::App(app))?,
        None => caller.may(Action::Read, Scope::Everything)?,
    }
    let kinds = params
        .kind
        .iter()
        .flat_map(|k| k.split(','))
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            EventKind::parse(k.trim())
                .map_err(|k| ApiError::bad_request(format!("unknown event kind `{k}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let query = EventQuery {
        app,
        actor: params.actor,
        kinds,
        after: params.after,
        limit: Some(params.limit.unwrap_or(1000).min(10_000)),
        ..EventQuery::default()
    };
    Ok(Json(EventList {
        events: ctx.store.events(&query).await?,
    }))
}

/// `GET /api/v1/audit/verify`.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    tag = "audit",
    responses((status = 200, description = "both hash chains checked", body = AuditVerification), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn verify(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    caller.may(Action::Read, Scope::Everything)?;
    let events = ctx.store.verify_events().await?;
    let flags = ctx
        .flags
        .store()
        .verify_flag_audit()
        .await
        .map_err(ApiError::from)?;
    Ok(Json(AuditVerification {
        ok: events.ok && flags.ok,
        events,
        flags,
    }))
}
