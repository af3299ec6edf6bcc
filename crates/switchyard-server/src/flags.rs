//! Feature flags served from the daemon: the flag CRUD API (`/api/v1/flags`), per-environment
//! toggles, rollouts, the audit log, and the SSE stream that tells clients to refetch. OFREP
//! evaluation is in [`crate::ofrep`].
//!
//! Every change goes through [`FlagService::change`]: edit the current set, compile the whole
//! result (a bad rule is rejected before anything is stored), store the documents that changed
//! with their audit entries, then swap the compiled set in memory. Evaluations read the swapped
//! set without a lock, so a change is visible to the next request.
//!
//! - [`service`]: [`FlagService`], the live compiled set and the change pipeline.
//! - [`live`]: [`LiveFlags`], one revision compiled for every environment it names.
//! - [`edit`]: pure edits of a flag set (apply, toggle, rollout) and the diff to store.
//! - [`handlers`]: the `/api/v1/flags` endpoints; [`stream`]: the SSE endpoint.
//! - [`error`]: [`FlagServiceError`] and its HTTP mapping.

pub mod edit;
pub mod error;
pub mod handlers;
pub mod live;
pub mod service;
pub mod stream;

use axum::Router;
use axum::routing::{get, post};

pub use error::FlagServiceError;
pub use live::{DEFAULT_ENVIRONMENT, LiveFlags};
pub use service::{FlagService, Who};

use crate::router::ServerContext;

/// The flag and OFREP routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/flags", get(handlers::list).put(handlers::apply))
        .route("/api/v1/flags/audit", get(handlers::audit))
        .route("/api/v1/flags/audit/verify", get(handlers::verify))
        .route("/api/v1/flags/stream", get(stream::stream))
        .route(
            "/api/v1/flags/{key}",
            get(handlers::get)
                .put(handlers::put)
                .delete(handlers::delete),
        )
        .route(
            "/api/v1/flags/{key}/environments/{env}/{action}",
            post(handlers::toggle),
        )
        .route("/api/v1/flags/{key}/rollout", post(handlers::rollout))
        .route(
            "/ofrep/v1/evaluate/flags",
            post(crate::ofrep::evaluate_flags),
        )
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(crate::ofrep::evaluate_flag),
        )
}
