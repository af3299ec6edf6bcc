//! One proxy listener per app: bound when its manifest is applied, fed routing tables by the
//! controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_core::AppName;
use switchyard_core::manifest::app::{
    CanaryStrategy, HealthCheck, MatchSource, MatchValue, RouteMatch, Stickiness,
};
use switchyard_core::manifest::{App, Strategy};
use switchyard_proxy::{
    AppProxy, Backend, HeaderRoute, Mirror, ProxyConfig, RequestMatch, RoutingTable, StickinessKey,
    Telemetry, ValueMatch,
};
use switchyard_rollout::{RoutePlan, TrafficRouter};
use switchyard_server::{ListenerError, ListenerRegistry};

struct Entry {
    proxy: AppProxy,
    health: HealthCheck,
    stickiness: Option<Stickiness>,
}

/// The proxies of every app.
pub struct Listeners {
    telemetry: Arc<Telemetry>,
    config: ProxyConfig,
    apps: Mutex<HashMap<AppName, Entry>>,
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
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AppName, Entry>> {
        // A panic while holding this lock leaves a consistent map (every insert is one call).
        self.apps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The address an app's proxy listens on.
    pub fn local_addr(&self, app: &AppName) -> Option<std::net::SocketAddr> {
        self.lock().get(app).map(|e| e.proxy.local_addr())
    }

    /// Closes every listener, letting requests finish for up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let entries: Vec<Entry> = self.lock().drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.proxy.shutdown(grace).await;
        }
    }
}

fn stickiness_of(app: &App) -> Option<Stickiness> {
    let Strategy::Canary(CanaryStrategy { stickiness, .. }) = &app.spec.strategy;
    stickiness.clone()
}

#[async_trait::async_trait]
impl ListenerRegistry for Listeners {
    async fn ensure(&self, apps: &[App]) -> Result<Vec<AppName>, ListenerError> {
        let mut bound: Vec<(AppName, AppProxy, Option<AppProxy>)> = Vec::new();
        for app in apps {
            let name = &app.metadata.name;
            let listen = app.spec.listen;
            let current = self.lock().get(name).map(|e| e.proxy.local_addr());
            if current.is_some_and(|addr| {
                addr == listen || (listen.port() == 0 && addr.ip() == listen.ip())
            }) {
                let mut map = self.lock();
                if let Some(e) = map.get_mut(name) {
                    e.health = app.spec.health_check.clone();
                    e.stickiness = stickiness_of(app);
                }
                continue;
            }
            match AppProxy::bind(
                name.as_str(),
                listen,
                self.config.clone(),
                Arc::clone(&self.telemetry),
            )
            .await
            {
                Ok(proxy) => bound.push((name.clone(), proxy, None)),
                Err(e) => {
                    for (_, proxy, _) in bound {
                        proxy.shutdown(Duration::ZERO).await;
                    }
                    return Err(ListenerError {
                        app: name.to_string(),
                        address: listen.to_string(),
                        message: e.to_string(),
                    });
                }
            }
        }
        let mut names = Vec::new();
        let mut replaced = Vec::new();
        {
            let mut map = self.lock();
            for (name, proxy, _) in bound {
                let app = apps.iter().find(|a| a.metadata.name == name);
                let (health, stickiness) = app
                    .map(|a| (a.spec.health_check.clone(), stickiness_of(a)))
                    .unwrap_or_default();
                let entry = Entry {
                    proxy,
                    health,
                    stickiness,
                };
                if let Some(old) = map.insert(name.clone(), entry) {
                    // The app moved to another address: keep serving its routes there.
                    let table = old.proxy.routes();
                    if let Some(e) = map.get(&name) {
                        e.proxy.set_routes(table);
                    }
                    replaced.push(old);
                }
                names.push(name);
            }
        }
        for old in replaced {
            old.proxy.shutdown(Duration::from_secs(5)).await;
        }
        Ok(names)
    }

    async fn release(&self, apps: &[AppName]) {
        let entries: Vec<Entry> = {
            let mut map = self.lock();
            apps.iter().filter_map(|a| map.remove(a)).collect()
        };
        for entry in entries {
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

impl TrafficRouter for Listeners {
    fn route(&self, app: &AppName, plan: RoutePlan) {
        let map = self.lock();
        let Some(entry) = map.get(app) else {
            tracing::warn!(%app, "no listener for app; routes not applied");
            return;
        };
        let h = &entry.health;
        let stickiness = entry.stickiness.as_ref().and_then(|s| {
            let key = match s {
                Stickiness::Header(h) => {
                    StickinessKey::Header(http::HeaderName::try_from(h.as_str()).ok()?)
                }
                Stickiness::Cookie(c) => StickinessKey::Cookie(c.clone()),
                Stickiness::Query(q) => StickinessKey::Query(q.clone()),
            };
            Some(switchyard_proxy::Stickiness {
                key,
                salt: app.to_string(),
                affinity_cookie: None,
            })
        });
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
            health_check: Some(switchyard_proxy::HealthCheck {
                path: h.path.as_str().to_string(),
                interval: h.interval,
                timeout: h.timeout,
                healthy_threshold: h.healthy_threshold.max(1),
                unhealthy_threshold: h.unhealthy_threshold.max(1),
            }),
        };
        entry.proxy.set_routes(table);
    }
}
