//! [`SharedProxy`]: one listener serving several apps, chosen by host and path prefix.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, header};

use crate::app::AppState;
use crate::body::RequestBody;
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::exposure::{ExperimentTap, ExposureSink, ExposureSlot};
use crate::failure::ProxyFailure;
use crate::route::path_has_prefix;
use crate::server::{Dispatch, Listener};
use crate::table::RoutingTable;
use crate::telemetry::Telemetry;

/// Which requests of a shared listener belong to an app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppMatch {
    /// Host names (without port, case-insensitive); `*.example.com` matches one or more labels
    /// before `.example.com`. Empty matches any host.
    pub hosts: Vec<String>,
    /// Path prefix on `/` boundaries; empty or `/` matches any path.
    pub path_prefix: String,
}

impl AppMatch {
    /// Whether a request for `host` and `path` belongs here.
    pub fn matches(&self, host: &str, path: &str) -> bool {
        let host = host
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        let host_ok = self.hosts.is_empty()
            || self.hosts.iter().any(|h| match h.strip_prefix('*') {
                Some(suffix) => {
                    host.len() > suffix.len()
                        && host
                            .to_ascii_lowercase()
                            .ends_with(&suffix.to_ascii_lowercase())
                }
                None => h.eq_ignore_ascii_case(host),
            });
        host_ok && path_has_prefix(path, &self.path_prefix)
    }

    /// More specific matches are tried first: exact hosts, then wildcards, then any host;
    /// longer path prefixes first within each.
    fn rank(&self) -> (u8, usize) {
        let host_rank = if self.hosts.is_empty() {
            2
        } else if self.hosts.iter().all(|h| !h.starts_with('*')) {
            0
        } else {
            1
        };
        (
            host_rank,
            usize::MAX - self.path_prefix.trim_end_matches('/').len(),
        )
    }
}

#[derive(Debug, Default)]
struct Apps {
    list: ArcSwap<Vec<(AppMatch, Arc<AppState>)>>,
}

impl Dispatch for Apps {
    fn app_for(&self, req: &Request<RequestBody>) -> Result<Arc<AppState>, ProxyFailure> {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        let path = req.uri().path();
        let list = self.list.load();
        list.iter()
            .find(|(m, _)| m.matches(host, path))
            .map(|(_, app)| app.clone())
            .ok_or_else(|| ProxyFailure::NoApp {
                host: host.to_owned(),
                path: path.to_owned(),
            })
    }

    fn apps(&self) -> Vec<Arc<AppState>> {
        self.list.load().iter().map(|(_, a)| a.clone()).collect()
    }
}

/// A listener shared by several apps; requests matching no app get 404.
#[derive(Debug)]
pub struct SharedProxy {
    apps: Arc<Apps>,
    // Serialises add/remove so that concurrent updates do not lose each other.
    update: Mutex<()>,
    config: ProxyConfig,
    telemetry: Arc<Telemetry>,
    exposures: Arc<ExposureSlot>,
    listener: Listener,
}

impl SharedProxy {
    /// Listens on `listen` with no app yet.
    ///
    /// # Errors
    /// [`ProxyError::Bind`] naming the address when it cannot be bound.
    pub async fn bind(
        listen: SocketAddr,
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, ProxyError> {
        let apps = Arc::new(Apps::default());
        let listener = Listener::bind(listen, &config, apps.clone()).await?;
        Ok(SharedProxy {
            apps,
            update: Mutex::new(()),
            config,
            telemetry,
            exposures: Arc::default(),
            listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// Adds `app` or updates its match and routing table.
    pub fn set_app(&self, app: &str, matcher: AppMatch, table: RoutingTable) {
        self.set_app_with_experiment(app, matcher, table, None);
    }

    /// [`SharedProxy::set_app`] for a table that assigns the units of a traffic experiment; see
    /// [`AppProxy::set_routes_with_experiment`](crate::AppProxy::set_routes_with_experiment).
    pub fn set_app_with_experiment(
        &self,
        app: &str,
        matcher: AppMatch,
        table: RoutingTable,
        experiment: Option<ExperimentTap>,
    ) {
        let _serial = self.update.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.apps.list.load();
        let state = match current.iter().find(|(_, s)| s.app == app) {
            Some((_, s)) => s.clone(),
            None => AppState::new(
                app,
                self.config.clone(),
                self.telemetry.clone(),
                self.exposures.clone(),
            ),
        };
        state.set_routes(table, experiment);
        let mut next: Vec<_> = current
            .iter()
            .filter(|(_, s)| s.app != app)
            .cloned()
            .collect();
        next.push((matcher, state));
        next.sort_by_key(|(m, _)| m.rank());
        self.apps.list.store(Arc::new(next));
    }

    /// Sets (or replaces) where the exposures of every app on this listener go.
    pub fn set_exposure_sink(&self, sink: Arc<dyn ExposureSink>) {
        self.exposures.set(sink);
    }

    /// Stops serving `app`; its in-flight requests finish, its background work stops.
    pub fn remove_app(&self, app: &str) {
        let _serial = self.update.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.apps.list.load();
        if let Some((_, s)) = current.iter().find(|(_, s)| s.app == app) {
            s.stop();
        }
        let next: Vec<_> = current
            .iter()
            .filter(|(_, s)| s.app != app)
            .cloned()
            .collect();
        self.apps.list.store(Arc::new(next));
    }

    /// Stops accepting, drains for up to `grace`, then forces the rest closed.
    pub async fn shutdown(self, grace: Duration) {
        let apps = self.apps.apps();
        self.listener.shutdown(grace, &apps).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_path_matching() {
        let m = AppMatch {
            hosts: vec!["Shop.example.com".into(), "*.shop.test".into()],
            path_prefix: "/api".into(),
        };
        assert!(m.matches("shop.example.com:8080", "/api/cart"));
        assert!(m.matches("eu.shop.test", "/api"));
        assert!(!m.matches("shop.test", "/api"));
        assert!(!m.matches("shop.example.com", "/apix"));
        assert!(AppMatch::default().matches("anything", "/"));
        let specific = AppMatch {
            hosts: vec!["a".into()],
            path_prefix: "/x".into(),
        };
        assert!(specific.rank() < AppMatch::default().rank());
    }
}
