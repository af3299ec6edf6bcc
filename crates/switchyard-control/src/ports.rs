//! What the application layer needs from the data plane and the outside: routes and listeners,
//! webhook calls, smoke tests. The store, runtime, metrics and metric-provider ports are
//! `switchyard-core`'s and `switchyard-analysis`'s.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use switchyard_core::manifest::App;
use switchyard_core::manifest::app::{RouteMatch, SmokeTest, Stickiness, Webhook};
use switchyard_core::ports::BoxError;
use switchyard_core::{AppName, Version};

/// Where a release's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    pub version: Version,
    /// Relative weight; targets of weight 0 get no traffic.
    pub weight: u32,
    pub endpoints: Vec<SocketAddr>,
}

/// Everything that decides where an app's requests go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutePlan {
    pub targets: Vec<RouteTarget>,
    /// Requests matching all of these go to this version, before weights apply.
    pub header_route: Option<(Version, Vec<RouteMatch>)>,
    /// A percentage of requests copied to this version.
    pub mirror: Option<(Version, u8)>,
    /// What the app's preview listener routes to (blue-green); nothing when `None`.
    pub preview: Option<RouteTarget>,
}

impl RoutePlan {
    /// All traffic to one release.
    pub fn single(version: Version, endpoints: Vec<SocketAddr>) -> Self {
        Self {
            targets: vec![RouteTarget {
                version,
                weight: 100,
                endpoints,
            }],
            ..Self::default()
        }
    }
}

/// An app's traffic split between the releases of a traffic experiment's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentRoutes {
    /// The experiment's key: the exposure tap's name and the salt of the units' hash.
    pub experiment: String,
    /// Where a request's unit key is read.
    pub unit: Stickiness,
    /// One target per variant, control first, weighted as the variants.
    pub targets: Vec<RouteTarget>,
}

/// Why routes were not applied.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("app `{0}` has no listener")]
    NoListener(AppName),
    #[error("the routes of app `{app}` are not valid: {source}")]
    Invalid {
        app: AppName,
        #[source]
        source: BoxError,
    },
}

/// The data plane as the application layer sees it. Only the [`crate::TrafficOwner`] calls it,
/// under the app's lock.
pub trait TrafficRouter: Send + Sync {
    /// Replaces the app's routes at once.
    fn route(&self, app: &AppName, plan: RoutePlan);

    /// Routes `app` to the variants of a traffic experiment, sticky by its unit and reporting
    /// each exposure. The routes stay until the next `route` or `route_experiment`.
    ///
    /// # Errors
    /// The app has no listener, or the routes would not be a sensible split; nothing changes
    /// then.
    fn route_experiment(&self, app: &AppName, routes: ExperimentRoutes) -> Result<(), RouteError>;

    /// The address of the app's preview listener, if it has one.
    fn preview_addr(&self, app: &AppName) -> Option<SocketAddr>;

    /// Resolves once every live proxy serves the app's routes as last changed, `true`; or,
    /// after a bounded wait, `false` (a proxy is slow or cut off).
    fn applied(&self, app: &AppName) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

    /// Resolves once no request is in flight to `endpoint` (removed from the app's routes),
    /// or its drain deadline passed.
    fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

    /// What changed the app's routes outside Switchyard since it last wrote them (someone
    /// edited a cluster's route by hand), until the next [`TrafficRouter::route`]. Routers
    /// nobody else writes have none.
    fn drift(&self, _app: &AppName) -> Option<String> {
        None
    }

    /// Why the app's routes as last changed are not in force yet, while the router keeps
    /// trying (a cluster's API server refuses or cannot be reached). The data plane's proxies
    /// apply what they can reach and have none.
    fn not_applied(&self, _app: &AppName) -> Option<String> {
        None
    }

    /// Where the app's routes are written and how they stand, for a router other than the
    /// data plane's proxies (`None` for those: their acknowledgements say it).
    fn describe(&self, _app: &AppName) -> Option<String> {
        None
    }
}

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
#[derive(Debug, thiserror::Error)]
#[error("app `{app}` cannot listen on {address}")]
pub struct ListenerError {
    pub app: AppName,
    pub address: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Why a webhook did not open its gate.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook `{hook}` answered {status}")]
    Refused { hook: String, status: u16 },
    #[error("webhook `{hook}` could not be called")]
    Unreachable {
        hook: String,
        #[source]
        source: BoxError,
    },
    #[error("webhook `{hook}` may not call {url}: {reason}")]
    Forbidden {
        hook: String,
        url: String,
        reason: String,
    },
}

/// Calls webhooks.
#[async_trait::async_trait]
pub trait WebhookCaller: Send + Sync {
    /// POSTs `payload` to `hook` (with its timeout and retries).
    ///
    /// # Errors
    /// Unless it answered 2xx: the last answer or transport failure.
    async fn call(&self, hook: &Webhook, payload: &serde_json::Value) -> Result<(), WebhookError>;
}

/// Why a smoke test failed.
#[derive(Debug, thiserror::Error)]
pub enum SmokeTestError {
    #[error("GET {url} failed")]
    Unreachable {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("GET {url} answered {status}, expected {expected}")]
    Status {
        url: String,
        status: u16,
        expected: u16,
    },
    #[error("GET {url}: the body does not contain `{want}` (it starts with `{start}`)")]
    Body {
        url: String,
        want: String,
        start: String,
    },
    #[error("{release} has no instance to test")]
    NoTarget { release: String },
}

/// Runs a blue-green strategy's smoke tests.
#[async_trait::async_trait]
pub trait SmokeTester: Send + Sync {
    /// Runs every test against `target`.
    ///
    /// # Errors
    /// The first test that failed, and how.
    async fn run(&self, target: SocketAddr, tests: &[SmokeTest]) -> Result<(), SmokeTestError>;
}
