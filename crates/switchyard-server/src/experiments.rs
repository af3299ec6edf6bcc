//! Experiments over HTTP: event ingestion (`POST /api/v1/events`), results, the HTML report and
//! stops. The experiments themselves are [`switchyard_control::experiments`].
//!
//! - [`handlers`]: the `/api/v1/events` and `/api/v1/experiments` endpoints.

pub mod handlers;

use axum::Router;
use axum::routing::{get, post};

pub use switchyard_control::experiments::{ExperimentService, ExperimentServiceError};

use crate::router::ServerContext;

/// The experiment routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/events", post(handlers::ingest))
        .route("/api/v1/experiments", get(handlers::list))
        .route("/api/v1/experiments/{key}", get(handlers::get))
        .route("/api/v1/experiments/{key}/results", get(handlers::results))
        .route("/api/v1/experiments/{key}/report", get(handlers::report))
        .route("/api/v1/experiments/{key}/stop", post(handlers::stop))
}
