//! What the controller needs from the data plane and the outside: routes, webhook calls, smoke
//! tests.

use std::net::SocketAddr;

use switchyard_core::manifest::app::{RouteMatch, SmokeTest, Webhook};
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

/// The data plane as the controller sees it.
pub trait TrafficRouter: Send + Sync {
    /// Replaces the app's routes at once.
    fn route(&self, app: &AppName, plan: RoutePlan);

    /// The address of the app's preview listener, if it has one.
    fn preview_addr(&self, app: &AppName) -> Option<SocketAddr>;

    /// Resolves once no request is in flight to `endpoint` (removed from the app's routes),
    /// or its drain deadline passed.
    fn drained(
        &self,
        app: &AppName,
        endpoint: SocketAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
}

/// Calls webhooks.
#[async_trait::async_trait]
pub trait WebhookCaller: Send + Sync {
    /// POSTs `payload` to `hook` (with its timeout and retries); `Err` unless it answered 2xx.
    async fn call(&self, hook: &Webhook, payload: &serde_json::Value) -> Result<(), String>;
}

/// Runs a blue-green strategy's smoke tests.
#[async_trait::async_trait]
pub trait SmokeTester: Send + Sync {
    /// Runs every test against `target`; `Err` says which failed and how.
    async fn run(&self, target: SocketAddr, tests: &[SmokeTest]) -> Result<(), String>;
}
