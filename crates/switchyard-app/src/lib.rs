//! The composition roots: [`Daemon`] turns a [`DaemonConfig`] into a running control plane —
//! SQLite or PostgreSQL store, local runtime, the routing tables proxies follow, the rollout controller and
//! its tick loop, the REST API, the experiments' checks and traffic splits — with a local proxy
//! process beside it; [`proxy_process::run`] is the proxy process itself.
//!
//! - [`config`]: what the daemon is started with.
//! - [`daemon`]: start, run and stop.
//! - [`local_proxy`]: the proxy process `serve` starts, adopts or replaces beside itself.
//! - [`proxy_process`]: `switchyard proxy`, the data-plane process: it follows the control
//!   plane's tables, serves the apps' listeners, caches the last table, reports its traffic,
//!   and hands its sockets to a successor.
//! - [`replica`]: several daemons on one PostgreSQL database: the leader lease, followers that
//!   forward the API to the leader and take over when its lease runs out.
//! - [`smoke`]: blue-green smoke tests over HTTP.
//! - [`webhooks`]: Flagger-style webhook gates over HTTP.

pub mod config;
pub mod daemon;
pub mod local_proxy;
pub mod notify;
pub mod proxy_process;
pub mod replica;
pub mod smoke;
pub mod webhooks;
pub mod workloads;

pub use config::{ApiAccess, DaemonConfig, DatabaseUrl};
pub use daemon::Daemon;
