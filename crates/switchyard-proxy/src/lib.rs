//! Switchyard's data plane: an HTTP proxy that splits one app's traffic between releases.
//!
//! It does: HTTP/1.1 and HTTP/2 (h2c, or ALPN `h2` over TLS) on one listener, TLS termination
//! with SNI and certificate reload ([`tls`]), TLS to upstreams, streaming bodies, upgrades; routing by
//! header/cookie/path match, weighted split and sticky buckets; mirroring; load balancing over
//! instances with health checks and ejection; per-release telemetry (windowed histograms for the
//! analysis engine, Prometheus text for everyone else); exposures of traffic experiments to a
//! sink ([`exposure`]); limits against bad clients.
//! It does not: decide weights (the rollout controller does), or start instances.
//!
//! Route matching ([`route`], [`bucket`]) is pure and tested without sockets; everything that
//! touches a socket sits in [`server`], [`forward`], [`upstream`] and [`tunnel`].

mod app;
mod balancer;
mod body;
pub mod bucket;
pub mod config;
mod endpoint;
mod error;
pub mod exposure;
mod failure;
mod forward;
mod gate;
mod h1;
mod headers;
mod health;
pub mod host;
mod idle;
mod mirror;
mod proxy;
pub mod route;
mod server;
mod shared;
pub mod table;
mod tee;
pub mod telemetry;
pub mod tls;
mod tunnel;
mod upstream;
pub mod workers;

pub use config::{HealthCheck, ProxyConfig};
pub use error::ProxyError;
pub use exposure::{ExperimentTap, Exposure, ExposureSink};
pub use proxy::{AppProxy, Routes};
pub use route::{RouteDecision, RouteError, RouteReason, Router};
pub use shared::{AppMatch, SharedProxy};
pub use table::{
    AffinityCookie, Backend, HeaderRoute, Mirror, RequestMatch, RoutingTable, Stickiness,
    StickinessKey, TableError, ValueMatch,
};
pub use telemetry::Telemetry;
pub use upstream::{ConnectError, Upstream, UpstreamBody, UpstreamError};
pub use workers::{WorkerPool, Workers};
