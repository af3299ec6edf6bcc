//! [`ProxyHost`]: every app a proxy process serves, kept in line with the control plane's
//! tables ([`AppTable`]): listeners bound (routes in force before the first connection is
//! accepted), moved and closed, routes swapped, and what each listener and endpoint is doing,
//! for the reports.
//!
//! An update is all or nothing: every table is converted and validated first, and a table that
//! does not validate refuses the whole update while the previous tables keep serving. A listener
//! that cannot be bound is reported per app; the other apps are served.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use switchyard_core::AppName;
use switchyard_core::dataplane::{AppListeners, AppTable, ListenerState, TableTarget};
use switchyard_core::manifest::app::{
    HealthCheck as ManifestHealthCheck, MatchSource, MatchValue, RouteMatch, Stickiness as Key,
};
use tokio::sync::Mutex;

use crate::config::{HealthCheck, ProxyConfig};
use crate::exposure::{ExperimentTap, ExposureSink};
use crate::proxy::{AppProxy, Routes};
use crate::server::ListenSource;
use crate::table::{
    Backend, HeaderRoute, Mirror, RequestMatch, RoutingTable, Stickiness, StickinessKey,
    TableError, ValueMatch,
};
use crate::telemetry::Telemetry;
use crate::tls::Termination;
use crate::upstream::Upstream;

/// Bodies larger than this are not mirrored: a copy is held while the real request streams.
pub const MIRROR_MAX_BODY_BYTES: u64 = 64 * 1024;

/// A listening socket of one app, handed from one proxy process to the next.
#[derive(Debug)]
pub struct HandedSocket {
    pub app: AppName,
    /// The blue-green preview listener rather than the main one.
    pub preview: bool,
    pub socket: std::net::TcpListener,
}

/// Why an update was refused (nothing of it applied).
#[derive(Debug, thiserror::Error)]
#[error("the table of app `{app}` is not valid: {problem}")]
pub struct InvalidTable {
    pub app: AppName,
    pub problem: String,
}

/// One listener: serving, serving where it was because it could not move, or the reason it
/// does not serve.
#[derive(Debug)]
enum Served {
    Bound(AppProxy),
    Stuck(AppProxy, String),
    Failed(String),
}

impl Served {
    fn state(&self) -> ListenerState {
        match self {
            Served::Bound(p) => ListenerState::Bound(p.local_addr()),
            Served::Stuck(_, why) | Served::Failed(why) => ListenerState::Failed(why.clone()),
        }
    }

    fn proxy(&self) -> Option<&AppProxy> {
        match self {
            Served::Bound(p) | Served::Stuck(p, _) => Some(p),
            Served::Failed(_) => None,
        }
    }

    fn into_proxy(self) -> Option<AppProxy> {
        match self {
            Served::Bound(p) | Served::Stuck(p, _) => Some(p),
            Served::Failed(_) => None,
        }
    }
}

/// Whether a listener bound at `at` serves the configured `want` (port 0 takes any port).
fn same_address(at: SocketAddr, want: SocketAddr) -> bool {
    at == want || (want.port() == 0 && at.ip() == want.ip())
}

#[derive(Debug)]
struct Hosted {
    table: AppTable,
    main: Served,
    preview: Option<Served>,
    /// Why the serving listeners keep their previous TLS settings (new ones did not load).
    problem: Option<String>,
}

impl Hosted {
    fn tls_problem(&self) -> Option<String> {
        self.problem.clone().or_else(|| {
            let tls = self.main.proxy().and_then(AppProxy::tls)?;
            tls.problem()
        })
    }
}

/// The TLS of an app's listeners and its client to the instances, as a table asks: `Err` when
/// files do not load (a new listener fails; a serving one keeps what it has).
struct Security {
    tls: Option<Arc<Termination>>,
    /// `None`: the serving listeners' client stays (its settings did not change).
    upstream: Option<Upstream>,
}

/// A table converted for the data plane.
struct Converted {
    main: Routes,
    preview: Option<Routes>,
}

/// The apps of one proxy process.
pub struct ProxyHost {
    config: ProxyConfig,
    telemetry: Arc<Telemetry>,
    exposures: Option<Arc<dyn ExposureSink>>,
    apps: Mutex<BTreeMap<AppName, Hosted>>,
    /// Sockets handed over by the process this one replaces, used instead of binding.
    inherited: std::sync::Mutex<Vec<HandedSocket>>,
    /// How long a closed listener's requests may finish.
    grace: Duration,
}

impl std::fmt::Debug for ProxyHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHost").finish_non_exhaustive()
    }
}

impl ProxyHost {
    pub fn new(
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
        exposures: Option<Arc<dyn ExposureSink>>,
        grace: Duration,
    ) -> Self {
        Self {
            config,
            telemetry,
            exposures,
            apps: Mutex::default(),
            inherited: std::sync::Mutex::default(),
            grace,
        }
    }

    /// Sockets to use instead of binding their addresses (a handover).
    pub fn inherit(&self, sockets: Vec<HandedSocket>) {
        let mut inherited = self
            .inherited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inherited.extend(sockets);
    }

    /// Serves exactly `tables`: new apps are bound with their routes in force, moved ones are
    /// bound anew (the old listener drains), removed ones are closed (their requests finish
    /// for the grace period), and every other app gets its new routes.
    ///
    /// # Errors
    /// [`InvalidTable`] when a table does not validate; nothing changed then.
    pub async fn sync(&self, tables: &BTreeMap<AppName, AppTable>) -> Result<(), InvalidTable> {
        let mut apps = self.apps.lock().await;
        let mut converted = BTreeMap::new();
        for (app, table) in tables {
            let current = apps.get(app);
            // A table that did not change keeps its listener, routes and health state as
            // they are (unless its listener failed: then binding is tried again).
            if current.is_some_and(|h| &h.table == table && matches!(h.main, Served::Bound(_))) {
                continue;
            }
            let c = convert(table).map_err(|problem| InvalidTable {
                app: app.clone(),
                problem,
            })?;
            converted.insert(app, c);
        }
        let mut retired = Vec::new();
        for (app, table) in tables {
            let Some(c) = converted.remove(app) else {
                continue;
            };
            let hosted = apps.remove(app);
            let hosted = self.place(app, table, c, hosted, &mut retired).await;
            apps.insert(app.clone(), hosted);
        }
        let gone: Vec<AppName> = apps
            .keys()
            .filter(|a| !tables.contains_key(*a))
            .cloned()
            .collect();
        for app in gone {
            if let Some(h) = apps.remove(&app) {
                retired.push(h.main);
                retired.extend(h.preview);
            }
        }
        drop(apps);
        for p in retired.into_iter().filter_map(Served::into_proxy) {
            let grace = self.grace;
            tokio::spawn(async move { p.shutdown(grace).await });
        }
        Ok(())
    }

    /// The listeners of `app` after `table`: the old ones with new routes where the address is
    /// the same, new ones (routes first) where it is not; what they replace goes to `retired`.
    async fn place(
        &self,
        app: &AppName,
        table: &AppTable,
        c: Converted,
        hosted: Option<Hosted>,
        retired: &mut Vec<Served>,
    ) -> Hosted {
        let (old_main, old_preview, old_table) = match hosted {
            Some(h) => (Some(h.main), h.preview, Some(h.table)),
            None => (None, None, None),
        };
        let security = self.security(table, old_table.as_ref(), old_main.as_ref());
        let problem = security.as_ref().err().cloned();
        let main = self
            .listener(
                app,
                false,
                table.listen,
                c.main,
                old_main,
                &security,
                retired,
            )
            .await;
        let preview = match (table.preview_listen, c.preview) {
            (Some(at), routes) => Some(
                self.listener(
                    app,
                    true,
                    at,
                    routes.unwrap_or_default(),
                    old_preview,
                    &security,
                    retired,
                )
                .await,
            ),
            (None, _) => {
                retired.extend(old_preview);
                None
            }
        };
        Hosted {
            table: table.clone(),
            main,
            preview,
            problem,
        }
    }

    fn security(
        &self,
        table: &AppTable,
        old_table: Option<&AppTable>,
        old: Option<&Served>,
    ) -> Result<Security, String> {
        let serving = old.and_then(Served::proxy);
        let tls = match (&table.tls, serving.and_then(AppProxy::tls)) {
            (None, _) => None,
            // A reload that fails keeps the certificates in use and says so (`problem`).
            (Some(files), Some(t)) => {
                let _ = t.replace(files);
                Some(t)
            }
            (Some(files), None) => Some(
                Termination::load(files, self.config.tls_reload_interval)
                    .map_err(|e| format!("TLS: {e}"))?,
            ),
        };
        let unchanged =
            serving.is_some() && old_table.is_some_and(|o| o.upstream_tls == table.upstream_tls);
        let upstream = if unchanged {
            None
        } else {
            Some(
                Upstream::with_tls(&self.config, table.upstream_tls.as_ref())
                    .map_err(|e| format!("upstream TLS: {e}"))?,
            )
        };
        Ok(Security { tls, upstream })
    }

    #[allow(clippy::too_many_arguments)]
    async fn listener(
        &self,
        app: &AppName,
        preview: bool,
        at: SocketAddr,
        routes: Routes,
        old: Option<Served>,
        security: &Result<Security, String>,
        retired: &mut Vec<Served>,
    ) -> Served {
        match old.map(Served::into_proxy) {
            Some(Some(p)) if same_address(p.local_addr(), at) => {
                p.set_routes_with_experiment(routes.table, routes.experiment);
                secure(&p, security);
                Served::Bound(p)
            }
            Some(Some(p)) => match self.bind(app, preview, at, routes.clone(), security).await {
                // The new address cannot be bound: the old listener keeps serving.
                Served::Failed(why) => {
                    tracing::warn!(%app, address = %at, reason = %why, "app cannot move; it stays where it is");
                    p.set_routes_with_experiment(routes.table, routes.experiment);
                    secure(&p, security);
                    let why = format!("cannot move from {} to {at}: {why}", p.local_addr());
                    Served::Stuck(p, why)
                }
                bound => {
                    retired.push(Served::Bound(p));
                    bound
                }
            },
            Some(None) | None => self.bind(app, preview, at, routes, security).await,
        }
    }

    async fn bind(
        &self,
        app: &AppName,
        preview: bool,
        at: SocketAddr,
        routes: Routes,
        security: &Result<Security, String>,
    ) -> Served {
        let security = match security {
            Ok(s) => s,
            Err(why) => {
                tracing::error!(%app, address = %at, reason = %why, "app cannot listen");
                return Served::Failed(why.clone());
            }
        };
        let upstream = match &security.upstream {
            Some(u) => u.clone(),
            None => Upstream::new(&self.config),
        };
        let source = match self.take_inherited(app, preview, at) {
            Some(socket) => ListenSource::Inherited(socket),
            None => ListenSource::Bind(at),
        };
        let telemetry = Arc::clone(&self.telemetry);
        let tls = security.tls.clone();
        let config = self.config.clone();
        let name = app.as_str();
        match AppProxy::serve_tls(name, source, config, telemetry, routes, tls, upstream).await {
            Ok(p) => {
                if let Some(sink) = &self.exposures {
                    p.set_exposure_sink(Arc::clone(sink));
                }
                Served::Bound(p)
            }
            Err(e) => {
                let why = chain(&e);
                tracing::error!(%app, address = %at, reason = %why, "app cannot listen");
                Served::Failed(why)
            }
        }
    }

    fn take_inherited(
        &self,
        app: &AppName,
        preview: bool,
        at: SocketAddr,
    ) -> Option<std::net::TcpListener> {
        let mut inherited = self
            .inherited
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = inherited.iter().position(|h| {
            &h.app == app
                && h.preview == preview
                && h.socket.local_addr().is_ok_and(|a| same_address(a, at))
        })?;
        Some(inherited.swap_remove(i).socket)
    }

    /// Drops handed-over sockets no table claimed (their apps were removed meanwhile).
    pub fn release_unclaimed(&self) {
        let left = std::mem::take(
            &mut *self
                .inherited
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for h in left {
            tracing::info!(app = %h.app, "a handed-over listener is not in the table; closing it");
        }
    }

    /// Every app's listeners.
    pub async fn listeners(&self) -> BTreeMap<AppName, AppListeners> {
        let apps = self.apps.lock().await;
        apps.iter()
            .map(|(app, h)| {
                let listeners = AppListeners {
                    main: h.main.state(),
                    preview: h.preview.as_ref().map(Served::state),
                    tls_problem: h.tls_problem(),
                };
                (app.clone(), listeners)
            })
            .collect()
    }

    /// Endpoints removed from an app's routes whose requests are still finishing.
    pub async fn draining(&self) -> Vec<(AppName, SocketAddr)> {
        self.per_endpoint(AppProxy::draining).await
    }

    /// Endpoints of an app's routes that requests currently avoid (failed checks or ejected).
    pub async fn unhealthy(&self) -> Vec<(AppName, SocketAddr)> {
        let mut out = self.per_endpoint(AppProxy::unhealthy).await;
        out.sort_unstable();
        out.dedup();
        out
    }

    async fn per_endpoint(
        &self,
        list: impl Fn(&AppProxy) -> Vec<SocketAddr>,
    ) -> Vec<(AppName, SocketAddr)> {
        let apps = self.apps.lock().await;
        let mut out = Vec::new();
        for (app, h) in apps.iter() {
            for p in std::iter::once(&h.main)
                .chain(h.preview.as_ref())
                .filter_map(Served::proxy)
            {
                out.extend(list(p).into_iter().map(|e| (app.clone(), e)));
            }
        }
        out
    }

    /// A second handle of every bound listening socket, to hand over to a successor process.
    pub async fn sockets(&self) -> Vec<HandedSocket> {
        let apps = self.apps.lock().await;
        let mut out = Vec::new();
        for (app, h) in apps.iter() {
            let listeners = [(false, Some(&h.main)), (true, h.preview.as_ref())];
            for (preview, served) in listeners {
                let Some(p) = served.and_then(Served::proxy) else {
                    continue;
                };
                match p.socket() {
                    Ok(socket) => out.push(HandedSocket {
                        app: app.clone(),
                        preview,
                        socket,
                    }),
                    Err(e) => {
                        tracing::error!(%app, error = %e, "a listening socket cannot be handed over");
                    }
                }
            }
        }
        out
    }

    /// Stops accepting everywhere and lets requests finish for up to `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let apps = std::mem::take(&mut *self.apps.lock().await);
        let mut closing = Vec::new();
        for h in apps.into_values() {
            for p in std::iter::once(h.main)
                .chain(h.preview)
                .filter_map(Served::into_proxy)
            {
                closing.push(tokio::spawn(async move { p.shutdown(grace).await }));
            }
        }
        for c in closing {
            let _ = c.await;
        }
    }
}

/// Applies the TLS settings of a table to a serving listener, unless they did not load.
fn secure(p: &AppProxy, security: &Result<Security, String>) {
    if let Ok(s) = security {
        p.set_tls(s.tls.clone());
        if let Some(u) = &s.upstream {
            p.set_upstream(u.clone());
        }
    }
}

/// An app's table as the data plane's routes, checked.
fn convert(table: &AppTable) -> Result<Converted, String> {
    table.check().map_err(|e| e.to_string())?;
    let stickiness = table
        .stickiness
        .as_ref()
        .map(|s| stickiness(&s.key, &s.salt))
        .transpose()?;
    let header_routes = table
        .header_routes
        .iter()
        .map(|r| {
            let matches = r
                .matches
                .iter()
                .map(request_match)
                .collect::<Result<_, _>>()?;
            Ok(HeaderRoute {
                matches,
                release: r.release.to_string(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let main = RoutingTable {
        backends: table.targets.iter().map(backend).collect(),
        header_routes,
        mirror: table.mirror.as_ref().map(|m| Mirror {
            release: m.release.to_string(),
            percent: f64::from(m.percent),
            max_body_bytes: MIRROR_MAX_BODY_BYTES,
        }),
        stickiness,
        health_check: Some(health_check(&table.health_check)),
    };
    let experiment = table.experiment.as_deref().map(ExperimentTap::new);
    // An app without a release yet serves 503 `no_weight`: an empty table is not a mistake.
    if !main.backends.is_empty() {
        main.validate_with_experiment(experiment.as_ref())
            .map_err(|e: TableError| e.to_string())?;
    }
    let preview = table.preview.as_ref().map(|t| Routes {
        table: RoutingTable {
            backends: vec![backend(t)],
            health_check: Some(health_check(&table.health_check)),
            ..RoutingTable::default()
        },
        experiment: None,
    });
    Ok(Converted {
        main: Routes {
            table: main,
            experiment,
        },
        preview,
    })
}

fn backend(t: &TableTarget) -> Backend {
    Backend::new(t.release.as_str(), t.weight, t.endpoints.clone())
}

fn request_match(m: &RouteMatch) -> Result<RequestMatch, String> {
    let value = match &m.value {
        MatchValue::Exact(v) => ValueMatch::Exact(v.clone()),
        MatchValue::Prefix(v) => ValueMatch::Prefix(v.clone()),
        MatchValue::Regex(v) => ValueMatch::Regex(
            regex::Regex::new(v).map_err(|e| format!("regex `{v}` does not parse: {e}"))?,
        ),
    };
    Ok(match &m.source {
        MatchSource::Header(name) => RequestMatch::Header {
            name: HeaderName::try_from(name.as_str())
                .map_err(|_| format!("`{name}` is not a header name"))?,
            value,
        },
        MatchSource::Cookie(name) => RequestMatch::Cookie {
            name: name.clone(),
            value,
        },
    })
}

fn stickiness(key: &Key, salt: &str) -> Result<Stickiness, String> {
    let key = match key {
        Key::Header(h) => StickinessKey::Header(
            HeaderName::try_from(h.as_str()).map_err(|_| format!("`{h}` is not a header name"))?,
        ),
        Key::Cookie(c) => StickinessKey::Cookie(c.clone()),
        Key::Query(q) => StickinessKey::Query(q.clone()),
    };
    Ok(Stickiness {
        key,
        salt: salt.to_owned(),
        affinity_cookie: None,
    })
}

fn health_check(h: &ManifestHealthCheck) -> HealthCheck {
    HealthCheck {
        path: h.path.as_str().to_string(),
        interval: h.interval,
        timeout: h.timeout,
        healthy_threshold: h.healthy_threshold.max(1),
        unhealthy_threshold: h.unhealthy_threshold.max(1),
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
