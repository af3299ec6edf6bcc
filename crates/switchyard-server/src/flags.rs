//! Feature flags over HTTP: the flag CRUD API (`/api/v1/flags`), per-environment toggles,
//! rollouts, the audit log, and the SSE stream that tells clients to refetch. The flags
//! themselves are [`switchyard_control::flags`]; OFREP evaluation is in [`crate::ofrep`].
//!
//! - [`handlers`]: the `/api/v1/flags` endpoints; [`stream`]: the SSE endpoint.
//! - [`error`]: how a [`FlagServiceError`] is answered.

pub mod error;
pub mod handlers;
pub mod stream;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

pub use switchyard_control::flags::{FlagService, FlagServiceError, Who};

use crate::router::{FlagContext, ServerContext};

/// The flag and OFREP routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new()
        .route("/api/v1/flags", get(handlers::list).put(handlers::apply))
        .route("/api/v1/flags/audit", get(handlers::audit))
        .route("/api/v1/flags/audit/verify", get(handlers::verify))
        .route("/api/v1/flags/clients", get(crate::unleash::clients))
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
        .merge(sdk_routes())
}

/// The routes SDKs call: OFREP, the flag stream, Unleash's frontend and client APIs; in any
/// router whose state gives a [`FlagContext`] (the whole API's, or a follower replica's).
pub fn sdk_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    FlagContext: FromRef<S>,
{
    Router::new()
        .route("/api/v1/flags/stream", get(stream::stream))
        .route(
            "/ofrep/v1/evaluate/flags",
            post(crate::ofrep::evaluate_flags),
        )
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(crate::ofrep::evaluate_flag),
        )
        .route(
            "/api/frontend",
            get(crate::unleash::frontend_get).post(crate::unleash::frontend_post),
        )
        .route(
            "/api/frontend/client/metrics",
            post(crate::unleash::client_metrics),
        )
        .route("/api/client/features", get(crate::unleash::client_features))
        .route(
            "/api/client/register",
            post(crate::unleash::client_register),
        )
        .route("/api/client/metrics", post(crate::unleash::client_metrics))
}
