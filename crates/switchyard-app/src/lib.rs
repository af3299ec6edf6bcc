//! The composition root: turns a [`DaemonConfig`] into a running daemon — SQLite store, local
//! runtime, one proxy listener per app, the rollout controller and its tick loop, the REST API,
//! and the experiments' checks and traffic splits — and shuts all of it down from one
//! cancellation token.
//!
//! - [`config`]: what the daemon is started with.
//! - [`daemon`]: start, run and stop.
//! - [`listeners`]: the proxies of all apps, as the listener registry and the traffic router of
//!   `switchyard-control` (and the blue-green preview listeners).
//! - [`smoke`]: blue-green smoke tests over HTTP.
//! - [`webhooks`]: Flagger-style webhook gates over HTTP.

pub mod config;
pub mod daemon;
pub mod listeners;
pub mod smoke;
pub mod webhooks;

pub use config::{ApiAccess, DaemonConfig};
pub use daemon::Daemon;
