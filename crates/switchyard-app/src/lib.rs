//! The composition root: turns a [`DaemonConfig`] into a running daemon — SQLite store, local
//! runtime, one proxy listener per app, the rollout controller and its tick loop, the REST API,
//! and the experiments' checks and traffic splits — and shuts all of it down from one
//! cancellation token.
//!
//! - [`config`]: what the daemon is started with.
//! - [`daemon`]: start, run and stop.
//! - [`listeners`]: the proxies of all apps, as the API's listener registry and the
//!   controller's traffic router (and the blue-green preview listeners).
//! - [`smoke`]: blue-green smoke tests over HTTP.
//! - [`webhooks`]: Flagger-style webhook gates over HTTP.
//! - [`traffic_experiments`]: running traffic experiments split their app's proxy between the
//!   variants' releases; stopped ones go back to the stable release.

pub mod config;
pub mod daemon;
pub mod listeners;
pub mod smoke;
pub mod traffic_experiments;
pub mod webhooks;

pub use config::DaemonConfig;
pub use daemon::Daemon;
