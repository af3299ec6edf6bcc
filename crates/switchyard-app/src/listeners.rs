//! One proxy listener per app: bound when its manifest is applied, fed routing tables by the
//! controller, or by the traffic experiment that splits the app
//! ([`Listeners::route_experiment`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_control::traffic_experiments::{ExposureRelay, RequestExposure};
use switchyard_control::{
    ExperimentRoutes, ListenerError, ListenerRegistry, RouteError, RoutePlan, TrafficRouter,
};
use switchyard_core::AppName;
use switchyard_core::manifest::app::{
    HealthCheck, MatchSource, MatchValue, RouteMatch, Stickiness,
};
use switchyard_core::manifest::{App, Strategy};
use switchyard_proxy::{
    AppProxy, Backend, ExperimentTap, ExposureSink, HeaderRoute, Mirror, ProxyConfig, ProxyError,
    RequestMatch, RoutingTable, StickinessKey, Telemetry, ValueMatch,
};

struct Entry {
    proxy: AppProxy,
    /// The blue-green preview listener, when the strategy has one.
    preview: Option<AppProxy>,
    health: HealthCheck,
    stickiness: Option<Stickiness>,
}

/// The proxies of every app.
pub struct Listeners {
    telemetry: Arc<Telemetry>,
    config: ProxyConfig,
    apps: Mutex<HashMap<AppName, Entry>>,
    /// Where every app proxy reports the exposures of traffic experiments.
    exposures: Mutex<Option<Arc<dyn ExposureSink>>>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").finish_non_exhaustive()
    }
}

impl Listeners {
    pub fn new(telemetry: Arc<Telemetry>, config: ProxyConfig) -> Self {
        Self {
            telemetry,
            config,
            apps: Mutex::new(HashMap::new()),
            exposures: Mutex::new(None),
        }
    }

    /// Sends the exposures of every app's traffic experiment to `relay`, from now on and for
    /// listeners bound later.
    pub fn relay_exposures(&self, relay: Arc<ExposureRelay>) {
        self.set_exposure_sink(Arc::new(RelaySink(relay)));
    }

    fn set_exposure_sink(&self, sink: Arc<dyn ExposureSink>) {
        *self
            .exposures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&sink));
        for entry in self.lock().values() {
            entry.proxy.set_exposure_sink(Arc::clone(&sink));
        }
    }

    /// The routing table in force for `app` and the experiment it serves, if any.
    pub fn routes(&self, app: &AppName) -> Option<(RoutingTable, Option<ExperimentTap>)> {
        self.lock()
            .get(app)
            .map(|e| (e.proxy.routes(), e.proxy.experiment()))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AppName, Entry>> {
        // A panic while holding this lock leaves a consistent map (every insert is one call).
        self.apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The address an app's proxy listens on.
    pub fn local_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.lock().get(app).map(|e| e.proxy.local_addr())
    }

    /// Closes every listener, letting requests finish for up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let entries: Vec<Entry> = self.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            if let Some(preview) = entry.preview {
                preview.shutdown(grace).await;
            }
            entry.proxy.shutdown(grace).await;
        }
    }

    async fn bind(&self, app: &AppName, listen: SocketAddr) -> Result<AppProxy, ListenerError> {
        let proxy = AppProxy::bind(
            app.as_str(),
            listen,
            self.config.clone(),
            Arc::clone(&self.telemetry),
        )
        .await
        .map_err(|e| ListenerError {
            app: app.clone(),
            address: listen,
            source: match e {
                ProxyError::Bind { source, .. } | ProxyError::LocalAddr { source, .. } => source,
            },
        })?;
        let sink = self
            .exposures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(sink) = sink {
            proxy.set_exposure_sink(sink);
        }
        Ok(proxy)
    }
}

fn preview_listen(app: &App) -> Option<SocketAddr> {
    match &app.spec.strategy {
        Strategy::BlueGreen(b) => b.preview_listen,
        Strategy::Canary(_) | Strategy::Rolling(_) => None,
    }
}

/// Whether a listener bound at `bound` serves the configured `want` (port 0 takes any port).
fn same_address(bound: SocketAddr, want: SocketAddr) -> bool {
    bound == want || (want.port() == 0 && bound.ip() == want.ip())
}

/// What `ensure` bound for one app before installing it.
struct Bound {
    app: AppName,
    main: Option<AppProxy>,
    preview: Option<AppProxy>,
}

#[async_trait::async_trait]
impl ListenerRegistry for Listeners {
    async fn ensure(&self, apps: &[App]) -> Result<Vec<AppName>, ListenerError> {
        // Bind everything new first; one failure closes what this call bound and changes nothing.
        let mut bound: Vec<Bound> = Vec::new();
        for app in apps {
            let name = &app.metadata.name;
            let (main_addr, preview_addr) = {
                let map = self.lock();
                let e = map.get(name);
                (
                    e.map(|e| e.proxy.local_addr()),
                    e.and_then(|e| e.preview.as_ref().map(AppProxy::local_addr)),
                )
            };
            let mut b = Bound {
                app: name.clone(),
                main: None,
                preview: None,
            };
            let mut result = Ok(());
            if !main_addr.is_some_and(|a| same_address(a, app.spec.listen)) {
                match self.bind(name, app.spec.listen).await {
                    Ok(p) => b.main = Some(p),
                    Err(e) => result = Err(e),
                }
            }
            if let (Ok(()), Some(want)) = (&result, preview_listen(app)) {
                if !preview_addr.is_some_and(|a| same_address(a, want)) {
                    match self.bind(name, want).await {
                        Ok(p) => b.preview = Some(p),
                        Err(e) => result = Err(e),
                    }
                }
            }
            bound.push(b);
            if let Err(e) = result {
                for b in bound {
                    for proxy in b.main.into_iter().chain(b.preview) {
                        proxy.shutdown(Duration::ZERO).await;
                    }
                }
                return Err(e);
            }
        }
        let mut names = Vec::new();
        let mut retired = Vec::new();
        {
            let mut map = self.lock();
            for (app, b) in apps.iter().zip(bound) {
                let health = app.spec.health_check.clone();
                let stickiness = app.spec.strategy.stickiness().cloned();
                let newly = b.main.is_some();
                let entry = match (map.remove(&b.app), b.main) {
                    (Some(mut old), None) => {
                        old.health = health;
                        old.stickiness = stickiness;
                        old
                    }
                    (old, Some(proxy)) => {
                        let mut entry = Entry {
                            proxy,
                            preview: None,
                            health,
                            stickiness,
                        };
                        if let Some(old) = old {
                            // The app moved to another address: keep serving its routes (and
                            // the experiment they split) there.
                            entry.proxy.set_routes_with_experiment(
                                old.proxy.routes(),
                                old.proxy.experiment(),
                            );
                            entry.preview = old.preview;
                            retired.push(old.proxy);
                        }
                        entry
                    }
                    (None, None) => continue,
                };
                let mut entry = entry;
                if let Some(preview) = b.preview {
                    if let Some(old) = entry.preview.replace(preview) {
                        retired.push(old);
                    }
                } else if preview_listen(app).is_none() {
                    retired.extend(entry.preview.take());
                }
                if newly {
                    names.push(b.app.clone());
                }
                map.insert(b.app, entry);
            }
        }
        for old in retired {
            old.shutdown(Duration::from_secs(5)).await;
        }
        Ok(names)
    }

    async fn release(&self, apps: &[AppName]) {
        let entries: Vec<Entry> = {
            let mut map = self.lock();
            apps.iter().filter_map(|a| map.remove(a)).collect()
        };
        for entry in entries {
            if let Some(preview) = entry.preview {
                preview.shutdown(Duration::ZERO).await;
            }
            entry.proxy.shutdown(Duration::ZERO).await;
        }
    }
}

/// Bodies larger than this are not mirrored: a copy is held while the real request streams.
const MIRROR_MAX_BODY_BYTES: u64 = 64 * 1024;

/// A manifest match as the data plane's; `None` for what cannot be one (the manifest checked
/// header names and regular expressions already, so this does not happen in practice).
fn request_match(m: &RouteMatch) -> Option<RequestMatch> {
    let value = match &m.value {
        MatchValue::Exact(v) => ValueMatch::Exact(v.clone()),
        MatchValue::Prefix(v) => ValueMatch::Prefix(v.clone()),
        MatchValue::Regex(v) => ValueMatch::Regex(regex::Regex::new(v).ok()?),
    };
    Some(match &m.source {
        MatchSource::Header(name) => RequestMatch::Header {
            name: http::HeaderName::try_from(name.as_str()).ok()?,
            value,
        },
        MatchSource::Cookie(name) => RequestMatch::Cookie {
            name: name.clone(),
            value,
        },
    })
}

/// A manifest's stickiness as the data plane's, hashed with `salt`; `None` for a header name
/// that is not one (the manifest checked it already, so this does not happen in practice).
fn proxy_stickiness(s: &Stickiness, salt: &str) -> Option<switchyard_proxy::Stickiness> {
    let key = match s {
        Stickiness::Header(h) => {
            StickinessKey::Header(http::HeaderName::try_from(h.as_str()).ok()?)
        }
        Stickiness::Cookie(c) => StickinessKey::Cookie(c.clone()),
        Stickiness::Query(q) => StickinessKey::Query(q.clone()),
    };
    Some(switchyard_proxy::Stickiness {
        key,
        salt: salt.to_owned(),
        affinity_cookie: None,
    })
}

fn health_check(h: &HealthCheck) -> switchyard_proxy::HealthCheck {
    switchyard_proxy::HealthCheck {
        path: h.path.as_str().to_string(),
        interval: h.interval,
        timeout: h.timeout,
        healthy_threshold: h.healthy_threshold.max(1),
        unhealthy_threshold: h.unhealthy_threshold.max(1),
    }
}

impl TrafficRouter for Listeners {
    fn route(&self, app: &AppName, plan: RoutePlan) {
        let map = self.lock();
        let Some(entry) = map.get(app) else {
            tracing::warn!(%app, "no listener for app; routes not applied");
            return;
        };
        let stickiness = entry
            .stickiness
            .as_ref()
            .and_then(|s| proxy_stickiness(s, app.as_str()));
        let header_routes = plan
            .header_route
            .iter()
            .map(|(version, matches)| HeaderRoute {
                matches: matches.iter().filter_map(request_match).collect(),
                release: version.to_string(),
            });
        let mirror = plan.mirror.map(|(version, percent)| Mirror {
            release: version.to_string(),
            percent: f64::from(percent),
            max_body_bytes: MIRROR_MAX_BODY_BYTES,
        });
        let table = RoutingTable {
            backends: plan
                .targets
                .into_iter()
                .map(|t| Backend::new(t.version.as_str(), t.weight, t.endpoints))
                .collect(),
            header_routes: header_routes.collect(),
            mirror,
            stickiness,
            health_check: Some(health_check(&entry.health)),
        };
        entry.proxy.set_routes(table);
        if let Some(preview) = &entry.preview {
            let table = match plan.preview {
                Some(t) => RoutingTable::single(t.version.as_str(), t.endpoints),
                None => RoutingTable::default(),
            };
            preview.set_routes(table);
        }
    }

    fn route_experiment(&self, app: &AppName, routes: ExperimentRoutes) -> Result<(), RouteError> {
        let map = self.lock();
        let entry = map
            .get(app)
            .ok_or_else(|| RouteError::NoListener(app.clone()))?;
        let invalid = |source: Box<dyn std::error::Error + Send + Sync>| RouteError::Invalid {
            app: app.clone(),
            source,
        };
        let stickiness = proxy_stickiness(&routes.unit, &routes.experiment).ok_or_else(|| {
            invalid(
                format!(
                    "the unit of experiment `{}` is not a valid header name",
                    routes.experiment
                )
                .into(),
            )
        })?;
        let table = RoutingTable {
            backends: routes
                .targets
                .into_iter()
                .map(|t| Backend::new(t.version.as_str(), t.weight, t.endpoints))
                .collect(),
            stickiness: Some(stickiness),
            health_check: Some(health_check(&entry.health)),
            ..RoutingTable::default()
        };
        let tap = ExperimentTap::new(routes.experiment.as_str());
        table
            .validate_with_experiment(Some(&tap))
            .map_err(|e| invalid(e.into()))?;
        entry.proxy.set_routes_with_experiment(table, Some(tap));
        Ok(())
    }

    fn preview_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.lock()
            .get(app)
            .and_then(|e| e.preview.as_ref().map(AppProxy::local_addr))
    }

    fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
        match self.lock().get(app) {
            Some(entry) => Box::pin(entry.proxy.drained_owned(endpoint)),
            None => Box::pin(std::future::ready(())),
        }
    }
}

/// The in-process proxies' exposures, passed on to the experiments' relay.
struct RelaySink(Arc<ExposureRelay>);

impl ExposureSink for RelaySink {
    fn record(&self, exposure: switchyard_proxy::Exposure) {
        self.0.record(RequestExposure {
            experiment: exposure.experiment,
            unit: exposure.unit,
            release: exposure.release,
            status: exposure.status,
            latency: exposure.latency,
        });
    }
}

#[cfg(test)]
mod tests;
