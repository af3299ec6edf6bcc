//! [`AppProxy`]: one listener serving one app.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;

use crate::app::AppState;
use crate::body::RequestBody;
use crate::config::ProxyConfig;
use crate::error::ProxyError;
use crate::exposure::{ExperimentTap, ExposureSink};
use crate::failure::ProxyFailure;
use crate::server::{Dispatch, ListenSource, Listener};
use crate::table::RoutingTable;
use crate::telemetry::Telemetry;
use crate::tls::Termination;
use crate::upstream::Upstream;

/// A table and the experiment it serves, set together.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    pub table: RoutingTable,
    pub experiment: Option<ExperimentTap>,
}

/// A listener for one app. Serves 503 until the first [`AppProxy::set_routes`].
#[derive(Debug)]
pub struct AppProxy {
    state: Arc<AppState>,
    listener: Listener,
}

#[derive(Debug)]
struct SingleApp(Arc<AppState>);

impl Dispatch for SingleApp {
    fn app_for(&self, _req: &Request<RequestBody>) -> Result<Arc<AppState>, ProxyFailure> {
        Ok(self.0.clone())
    }

    fn apps(&self) -> Vec<Arc<AppState>> {
        vec![self.0.clone()]
    }
}

impl AppProxy {
    /// Listens on `listen` (port 0 picks a free port) for `app`.
    ///
    /// # Errors
    /// [`ProxyError::Bind`] naming the address when it cannot be bound (e.g. in use).
    pub async fn bind(
        app: &str,
        listen: SocketAddr,
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
    ) -> Result<AppProxy, ProxyError> {
        let routes = Routes {
            table: RoutingTable::default(),
            experiment: None,
        };
        Self::serve(app, ListenSource::Bind(listen), config, telemetry, routes).await
    }

    /// Serves `app` on `source` with `routes` in force before the first connection is accepted.
    ///
    /// # Errors
    /// [`ProxyError::Bind`] naming the address when it cannot be bound (e.g. in use).
    pub async fn serve(
        app: &str,
        source: ListenSource,
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
        routes: Routes,
    ) -> Result<AppProxy, ProxyError> {
        let upstream = Upstream::new(&config);
        Self::serve_tls(app, source, config, telemetry, routes, None, upstream).await
    }

    /// [`AppProxy::serve`] terminating TLS with `tls` and speaking to the instances through
    /// `upstream`, both from the first connection on.
    ///
    /// # Errors
    /// [`ProxyError::Bind`] naming the address when it cannot be bound (e.g. in use).
    pub async fn serve_tls(
        app: &str,
        source: ListenSource,
        config: ProxyConfig,
        telemetry: Arc<Telemetry>,
        routes: Routes,
        tls: Option<Arc<Termination>>,
        upstream: Upstream,
    ) -> Result<AppProxy, ProxyError> {
        let state = AppState::new(app, config, telemetry, Arc::default());
        state.upstream.store(Arc::new(upstream));
        state.set_routes(routes.table, routes.experiment);
        let dispatch = Arc::new(SingleApp(state.clone()));
        let listener = Listener::serve(source, &state.config, dispatch, tls).await?;
        tracing::info!(app, addr = %listener.local_addr(), "proxy listening");
        Ok(AppProxy { state, listener })
    }

    /// The TLS termination of new connections, if any.
    pub fn tls(&self) -> Option<Arc<Termination>> {
        self.listener.tls()
    }

    /// Terminates TLS on new connections with `tls` (`None`: plain HTTP); open connections
    /// keep what they have.
    pub fn set_tls(&self, tls: Option<Arc<Termination>>) {
        self.listener.set_tls(tls);
    }

    /// Speaks to the instances through `upstream` from now on (TLS or not); requests already
    /// sent finish on the connections they have.
    pub fn set_upstream(&self, upstream: Upstream) {
        self.state.upstream.store(Arc::new(upstream));
    }

    /// Another handle of the listening socket, to hand the listener over to another process.
    ///
    /// # Errors
    /// The socket cannot be duplicated.
    pub fn socket(&self) -> std::io::Result<std::net::TcpListener> {
        self.listener.socket()
    }

    /// Endpoints removed from the routes whose in-flight requests are still finishing.
    pub fn draining(&self) -> Vec<SocketAddr> {
        self.state.draining()
    }

    /// Endpoints of the routes that requests currently avoid (failed checks or ejected).
    pub fn unhealthy(&self) -> Vec<SocketAddr> {
        self.state.unhealthy()
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// The app this listener serves.
    pub fn app(&self) -> &str {
        &self.state.app
    }

    /// Swaps the routing table atomically. Requests already routed finish on the table they
    /// started with; instances no longer listed drain (see [`ProxyConfig::drain_timeout`]).
    pub fn set_routes(&self, table: RoutingTable) {
        self.state.set_routes(table, None);
    }

    /// [`AppProxy::set_routes`] for a table that assigns the units of a traffic experiment:
    /// table and experiment are swapped in together, and while they are in force every request
    /// placed by its stickiness key is reported to the [`ExposureSink`] (see
    /// [`AppProxy::set_exposure_sink`]). `None` is the same as [`AppProxy::set_routes`]. Check
    /// the pair with [`RoutingTable::validate_with_experiment`]: without stickiness there are no
    /// exposures.
    pub fn set_routes_with_experiment(
        &self,
        table: RoutingTable,
        experiment: Option<ExperimentTap>,
    ) {
        self.state.set_routes(table, experiment);
    }

    /// The experiment in force, if any.
    pub fn experiment(&self) -> Option<ExperimentTap> {
        self.state.active.load().experiment.clone()
    }

    /// Sets (or replaces) where exposures go. Until it is called, experiments record nothing.
    pub fn set_exposure_sink(&self, sink: Arc<dyn ExposureSink>) {
        self.state.exposures.set(sink);
    }

    /// The routing table in force.
    pub fn routes(&self) -> RoutingTable {
        self.state.active.load().router.table().clone()
    }

    /// Resolves once `endpoint`, removed by an earlier [`AppProxy::set_routes`], has finished its
    /// in-flight requests or had them cut at the drain deadline. Immediate for instances that
    /// are not draining. Use it before stopping an old instance.
    pub async fn drained(&self, endpoint: SocketAddr) {
        self.state.drained(endpoint).await;
    }

    /// [`AppProxy::drained`] as a future that owns what it needs, for callers that cannot keep
    /// the proxy borrowed while they wait.
    pub fn drained_owned(
        &self,
        endpoint: SocketAddr,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        async move { state.drained(endpoint).await }
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`, then forces the rest
    /// closed.
    pub async fn shutdown(self, grace: Duration) {
        self.listener.shutdown(grace, &[self.state]).await;
    }
}
