//! Routes and the state they share.

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use switchyard_control::{Controller, ExperimentService, FlagService, Manifests};
use switchyard_core::ports::StateStore;
use switchyard_core::{Clock, ReleaseMetrics};

use crate::{handlers, operations};

/// What the handlers work with.
#[derive(Clone)]
pub struct ServerContext {
    pub controller: Arc<Controller>,
    /// Releases through pipelines and of single apps, approvals, deployment windows.
    pub pipelines: Arc<switchyard_control::pipelines::Pipelines>,
    /// The notification outbox: what was sent, what waits, what failed.
    pub notifications: Arc<switchyard_control::notifications::Notifications>,
    pub store: Arc<dyn StateStore>,
    pub manifests: Arc<Manifests>,
    pub metrics: Arc<dyn ReleaseMetrics>,
    /// The data plane's metrics in Prometheus text format.
    pub prometheus: Arc<dyn Fn() -> String + Send + Sync>,
    /// The routing tables proxies follow, and what they report.
    pub dataplane: switchyard_control::dataplane::DataPlane,
    pub clock: Arc<dyn Clock>,
    /// Feature flags: the live compiled set, its store and change notifications.
    pub flags: Arc<FlagService>,
    /// Experiments: events, results, reports and the flags of flag experiments.
    pub experiments: Arc<ExperimentService>,
    /// Authentication, the host allowlist and CORS.
    pub security: Arc<crate::auth::Security>,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}

/// What the routes that serve flags to SDKs (OFREP, the flag stream, Unleash's APIs) work with:
/// enough to answer them on a replica that does not lead.
#[derive(Clone)]
pub struct FlagContext {
    pub flags: Arc<FlagService>,
    pub experiments: Arc<ExperimentService>,
    pub clock: Arc<dyn Clock>,
    pub security: Arc<crate::auth::Security>,
}

impl FromRef<ServerContext> for FlagContext {
    fn from_ref(context: &ServerContext) -> Self {
        FlagContext {
            flags: Arc::clone(&context.flags),
            experiments: Arc::clone(&context.experiments),
            clock: Arc::clone(&context.clock),
            security: Arc::clone(&context.security),
        }
    }
}

impl std::fmt::Debug for FlagContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagContext").finish_non_exhaustive()
    }
}

/// The routes that serve flags to SDKs alone, with the same authentication, host and CORS
/// checks and error bodies as the whole API: what a follower replica answers itself.
pub fn sdk_router(context: FlagContext) -> Router {
    crate::flags::sdk_routes()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context.security),
            crate::auth::guard,
        ))
        .layer(axum::middleware::from_fn(
            crate::stable_errors::stable_errors,
        ))
        .with_state(context)
}

/// The API's routes.
pub fn router(context: ServerContext) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/api/v1/apply", post(handlers::apply))
        .route("/api/v1/apps", get(handlers::apps))
        .route("/api/v1/apps/{app}/deploy", post(handlers::deploy))
        .route("/api/v1/apps/{app}/rollout", get(handlers::rollout))
        .route(
            "/api/v1/apps/{app}/rollout/{command}",
            post(handlers::command),
        )
        .route("/api/v1/apps/{app}/events", get(handlers::events))
        .route("/api/v1/apps/{app}/analysis", get(operations::analysis))
        .route("/api/v1/apps/{app}/retry", post(operations::retry))
        .route("/api/v1/apps/{app}/undo", post(operations::undo))
        .route(
            "/api/v1/apps/{app}/emergency-stop",
            post(operations::emergency_stop),
        )
        .route("/api/v1/apps/{app}/unfreeze", post(operations::unfreeze))
        .route("/api/v1/audit", get(crate::audit::list))
        .route("/api/v1/audit/verify", get(crate::audit::verify))
        .merge(crate::flags::routes())
        .merge(crate::experiments::routes())
        .merge(crate::tokens::routes())
        .merge(crate::dataplane::routes())
        .merge(crate::incidents::routes())
        .merge(crate::pipelines::routes())
        .merge(crate::notifications::routes())
        .merge(crate::ui::routes())
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context.security),
            crate::auth::guard,
        ))
        .layer(axum::middleware::from_fn(
            crate::stable_errors::stable_errors,
        ))
        .with_state(context)
}
