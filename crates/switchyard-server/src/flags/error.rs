//! How a failed flag operation is answered.

use std::error::Error as _;

use axum::http::StatusCode;
use switchyard_api::flags::FlagProblem;
use switchyard_control::flags::FlagServiceError;

use crate::error::ApiError;

fn problem(e: &FlagServiceError) -> FlagProblem {
    let (flag, path) = e.location();
    FlagProblem {
        flag,
        path,
        message: e.to_string(),
    }
}

impl From<FlagServiceError> for ApiError {
    fn from(e: FlagServiceError) -> Self {
        use FlagServiceError as E;
        match &e {
            E::UnknownFlag(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "flag_not_found", e.to_string())
            }
            E::Invalid(_)
            | E::Import(_)
            | E::InvalidDocument(_)
            | E::ReservedKey(_)
            | E::InvalidKey { .. } => {
                let details = serde_json::to_value([problem(&e)]).unwrap_or_default();
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_flags",
                    e.to_string(),
                )
                .with_details(details)
            }
            E::KeyMismatch { .. } | E::InvalidEnvironment(_) => {
                ApiError::bad_request(e.to_string())
            }
            E::UnknownAction(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::Corrupt(_) | E::Store(_) => {
                let cause = e.source().map(ToString::to_string).unwrap_or_default();
                tracing::error!(error = %e, cause, "flag request failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the daemon's log",
                )
            }
        }
    }
}
