//! Routes and the state they share.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use switchyard_core::manifest::App;
use switchyard_core::ports::StateStore;
use switchyard_core::{AppName, Clock, ReleaseMetrics};
use switchyard_rollout::Controller;

use crate::{handlers, operations};

/// Binds app listeners when manifests are applied.
#[async_trait::async_trait]
pub trait ListenerRegistry: Send + Sync {
    /// Makes sure every app listens on its `spec.listen`, binding what is new or moved. Returns
    /// the apps whose listener was bound by this call.
    ///
    /// # Errors
    /// An address cannot be bound; nothing bound by this call stays bound then.
    async fn ensure(&self, apps: &[App]) -> Result<Vec<AppName>, ListenerError>;

    /// Closes the listeners of `apps` that [`ListenerRegistry::ensure`] bound (undo).
    async fn release(&self, apps: &[AppName]);
}

/// An app's listen address cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app `{app}` cannot listen on {address}: {message}")]
pub struct ListenerError {
    pub app: String,
    pub address: String,
    pub message: String,
}

/// What the handlers work with.
#[derive(Clone)]
pub struct ServerContext {
    pub controller: Arc<Controller>,
    pub store: Arc<dyn StateStore>,
    pub listeners: Arc<dyn ListenerRegistry>,
    pub metrics: Arc<dyn ReleaseMetrics>,
    /// The proxy's metrics in Prometheus text format.
    pub prometheus: Arc<dyn Fn() -> String + Send + Sync>,
    pub clock: Arc<dyn Clock>,
    /// Feature flags: the live compiled set, its store and change notifications.
    pub flags: Arc<crate::flags::FlagService>,
    /// Experiments: events, results, reports and the flags of flag experiments.
    pub experiments: Arc<crate::experiments::ExperimentService>,
}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContext").finish_non_exhaustive()
    }
}

/// The API's routes.
pub fn router(context: ServerContext) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
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
        .merge(crate::flags::routes())
        .merge(crate::experiments::routes())
        .fallback(handlers::not_found)
        .with_state(context)
}
