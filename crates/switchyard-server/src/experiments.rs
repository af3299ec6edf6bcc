//! Experiments served from the daemon: event ingestion (`POST /api/v1/events`), results, the
//! HTML report, stops, the flags of flag experiments (evaluated over OFREP beside the other
//! flags, recording an exposure per unit), and the guardrail check the daemon runs.
//!
//! - [`service`]: [`ExperimentService`], the live compiled experiments and every operation.
//! - [`exposure`]: exposures recorded on evaluation, written to the store in batches.
//! - [`handlers`]: the `/api/v1/events` and `/api/v1/experiments` endpoints.

pub mod exposure;
pub mod handlers;
pub mod service;

use axum::Router;
use axum::routing::{get, post};

pub use exposure::Exposure;
pub use service::{ExperimentService, ExperimentServiceError, LiveExperiments};

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
