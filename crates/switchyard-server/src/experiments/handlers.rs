//! The `/api/v1/events` and `/api/v1/experiments` endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchyard_experiments::port::{ExperimentRecord, ExperimentStatus};

use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;
use switchyard_control::experiments::ExperimentServiceError;

impl From<ExperimentServiceError> for ApiError {
    fn from(e: ExperimentServiceError) -> Self {
        use ExperimentServiceError as E;
        match &e {
            E::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "experiment_not_found", e.to_string())
            }
            E::NotJson(_) => ApiError::bad_request(e.to_string()),
            E::Batch { error } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_batch", e.to_string())
                    .with_details(json!({"pointer": error.pointer()}))
            }
            E::Analysis { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "analysis_failed",
                e.to_string(),
            ),
            E::Store(_) | E::Invalid { .. } | E::Flags(_) => {
                tracing::error!(error = %e, "experiment request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the daemon's log",
                )
            }
        }
    }
}

/// One experiment as listed.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentSummary {
    pub key: String,
    /// `flag` or `traffic`.
    pub split: &'static str,
    pub variants: Vec<String>,
    pub started_at: String,
    #[serde(flatten)]
    pub status: ExperimentStatus,
}

fn summary(record: &ExperimentRecord) -> ExperimentSummary {
    use switchyard_core::manifest::experiment::SplitSpec;
    ExperimentSummary {
        key: record.manifest.key().to_owned(),
        split: match record.manifest.spec.split {
            SplitSpec::Flag(_) => "flag",
            SplitSpec::Traffic(_) => "traffic",
        },
        variants: record
            .manifest
            .spec
            .variants
            .iter()
            .map(|v| v.name.to_string())
            .collect(),
        started_at: record.started_at.to_rfc3339(),
        status: record.status.clone(),
    }
}

/// `POST /api/v1/events`: 200 when every event was stored (or was a duplicate), 422 when some
/// were refused (the others are stored; each error has a JSON pointer), 400 when the body is
/// not a batch (nothing is stored).
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "experiments",
    request_body = Object,
    responses((status = 200, description = "every event stored", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn ingest(
    State(ctx): State<ServerContext>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.may(Action::Ingest, Scope::Any)?;
    let report = ctx.experiments.ingest(&body).await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)).into_response())
}

/// `GET /api/v1/experiments`.
#[utoipa::path(
    get,
    path = "/api/v1/experiments",
    tag = "experiments",
    responses((status = 200, description = "every experiment", body = Vec<Object>), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
) -> Result<Json<Vec<ExperimentSummary>>, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    Ok(Json(
        ctx.experiments
            .live()
            .records
            .values()
            .map(summary)
            .collect(),
    ))
}

/// `GET /api/v1/experiments/{key}`: the summary and the manifest.
#[utoipa::path(
    get,
    path = "/api/v1/experiments/{key}",
    tag = "experiments",
    params(("key" = String, Path, description = "the experiment's key")),
    responses((status = 200, description = "its summary and manifest", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    let record = ctx.experiments.record(&key)?;
    Ok(Json(json!({
        "summary": summary(&record),
        "manifest": record.manifest,
    })))
}

#[derive(Debug, Default, Deserialize)]
pub struct ResultsParams {
    /// `json` (default) or `text` (the table the CLI prints).
    #[serde(default)]
    pub format: Option<String>,
}

/// `GET /api/v1/experiments/{key}/results[?format=text]`.
#[utoipa::path(
    get,
    path = "/api/v1/experiments/{key}/results",
    tag = "experiments",
    params(("key" = String, Path, description = "the experiment's key"), ("format" = Option<String>, Query, description = "json or text")),
    responses((status = 200, description = "the analysis", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn results(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<ResultsParams>,
) -> Result<Response, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    let results = ctx.experiments.results(&key).await?;
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(results).into_response()),
        Some("text") => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            results.to_table(),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown format `{other}`: expected `json` or `text`"
        ))),
    }
}

/// `GET /api/v1/experiments/{key}/report`: a self-contained HTML page.
#[utoipa::path(
    get,
    path = "/api/v1/experiments/{key}/report",
    tag = "experiments",
    params(("key" = String, Path, description = "the experiment's key")),
    responses((status = 200, description = "a self-contained HTML page", body = String, content_type = "text/html"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn report(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Read, Scope::Any)?;
    let html = ctx.experiments.report(&key).await?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    pub reason: Option<String>,
}

/// `POST /api/v1/experiments/{key}/stop`: everyone gets control from now on.
#[utoipa::path(
    post,
    path = "/api/v1/experiments/{key}/stop",
    tag = "experiments",
    params(("key" = String, Path, description = "the experiment's key")),
    request_body = Object,
    responses((status = 200, description = "the summary", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn stop(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let record = ctx.experiments.record(&key)?;
    match switchyard_control::Manifests::traffic_app(&record.manifest) {
        Some(app) => caller.may(Action::StopExperiments, Scope::App(app))?,
        None => caller.may(Action::StopExperiments, Scope::Any)?,
    }
    let request: StopRequest = crate::body::parse_optional(&body)?;
    let by = caller.author();
    let actor = &by.actor;
    let reason = request
        .reason
        .unwrap_or_else(|| format!("stopped by {actor}"));
    let stopped = ctx.experiments.stop(&key, &reason, &by).await?;
    if !stopped {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "experiment_stopped",
            format!("experiment `{key}` has already stopped"),
        ));
    }
    let record = ctx.experiments.record(&key)?;
    Ok(Json(json!(summary(&record))))
}
