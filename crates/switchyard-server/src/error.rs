//! Failures as HTTP answers with the stable body `{"error": {"code", "message", "details"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchyard_api::{ErrorBody, ErrorDetail, ManifestProblem};
use switchyard_control::{ApplyError, ControllerError};
use switchyard_core::manifest::ManifestErrors;
use switchyard_core::ports::StoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    #[must_use]
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ControllerError::from(e).into()
    }
}

impl From<ControllerError> for ApiError {
    fn from(e: ControllerError) -> Self {
        use ControllerError as E;
        let (status, code) = match &e {
            E::UnknownApp(_) => (StatusCode::NOT_FOUND, "app_not_found"),
            E::NoRollout(_) => (StatusCode::NOT_FOUND, "no_rollout"),
            E::RolloutInProgress { .. } => (StatusCode::CONFLICT, "rollout_in_progress"),
            E::AlreadyStable { .. } => (StatusCode::CONFLICT, "already_stable"),
            E::Frozen { .. } => (StatusCode::CONFLICT, "app_frozen"),
            E::NothingTo { .. } => (StatusCode::CONFLICT, "nothing_to_do"),
            E::FirstReleaseTaken { .. } => (StatusCode::CONFLICT, "first_release_taken"),
            E::ExperimentRunning { .. } => (StatusCode::CONFLICT, "experiment_running"),
            E::Stale { current, .. } => {
                let details = serde_json::json!({
                    "current": {
                        "rollout": current.id,
                        "step": current.rollout.step,
                        "phase": current.rollout.phase.name(),
                        "weight": current.rollout.weight,
                    }
                });
                return ApiError::new(StatusCode::CONFLICT, "stale_command", e.to_string())
                    .with_details(details);
            }
            E::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden_by_policy"),
            E::MissingTemplate(_) => (StatusCode::UNPROCESSABLE_ENTITY, "missing_template"),
            E::JudgeWithoutSource { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "judge_without_source")
            }
            E::Resolve(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_deploy"),
            E::Transition(_) => (StatusCode::CONFLICT, "invalid_command"),
            E::Start { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "release_failed"),
            E::RoutesNotApplied { .. } => (StatusCode::CONFLICT, "routes_not_applied"),
            // A deposed leader that has not stopped yet: a follower will forward to the new one.
            E::Store(StoreError::NotLeader { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "not_leader")
            }
            E::CorruptState { .. } | E::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
            return ApiError::new(status, code, "internal error; see the daemon's log");
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ApplyError> for ApiError {
    fn from(e: ApplyError) -> Self {
        use ApplyError as E;
        let (status, code) = match &e {
            E::Invalid(errors) => return manifest_problems(errors),
            E::Empty => (StatusCode::BAD_REQUEST, "bad_request"),
            E::Listen(_) => (StatusCode::CONFLICT, "listen_failed"),
            E::ExperimentConflict { .. } => (StatusCode::CONFLICT, "experiment_conflict"),
            E::UnknownApp { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_app"),
            E::ExperimentDoesNotFit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_experiment"),
            E::RolloutInProgress { .. } => (StatusCode::CONFLICT, "rollout_in_progress"),
            E::CountingChanged { .. } => (StatusCode::CONFLICT, "experiment_counting_changed"),
            E::Policy(problems) => {
                let details: Vec<serde_json::Value> = problems
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "kind": p.kind,
                            "name": p.name,
                            "path": p.path,
                            "message": p.violation.to_string(),
                        })
                    })
                    .collect();
                return ApiError::new(StatusCode::FORBIDDEN, "forbidden_by_policy", e.to_string())
                    .with_details(serde_json::Value::Array(details));
            }
            E::Store(_) | E::Experiments(_) => {
                tracing::error!(error = %switchyard_control::controller::chain(&e), "apply failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the daemon's log",
                );
            }
        };
        ApiError::new(status, code, switchyard_control::controller::chain(&e))
    }
}

/// Every located problem of a manifest, in `details`.
pub(crate) fn manifest_problems(errors: &ManifestErrors) -> ApiError {
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
