//! Runs releases for Switchyard: the [`LocalRuntime`] adapter of
//! [`switchyard_core::ports::WorkloadRuntime`].
//!
//! A `process` release becomes N child processes on free local ports, each health-checked before
//! `start` returns, restarted with backoff on the same port when it crashes, and stopped with
//! SIGTERM then SIGKILL. A `static` release is only health-checked and remembered. The optional
//! supervisor ([`supervise`]) guarantees that no workload outlives the daemon, even one killed
//! with SIGKILL.
//!
//! This crate does not route traffic, judge canaries or persist anything: it only starts, keeps
//! and stops processes. See `docs/runtime.md` for the lifecycle in prose.
//!
//! - [`config`]: what the runtime needs from the daemon (log directory, supervisor).
//! - [`local`]: the `WorkloadRuntime` implementation and its table of running releases.
//! - `process`: starting one process release; its instances, their restarts and their stop.
//! - `static_release`: health-checking and remembering addresses that run elsewhere.
//! - `health`: the HTTP health probe and polling until healthy.
//! - [`supervise`]: the body of the hidden `switchyard supervise -- CMD...` subcommand.

pub mod config;
mod health;
pub mod local;
mod process;
mod static_release;
pub mod supervise;

pub use config::{Lifelines, RuntimeConfig};
pub use local::LocalRuntime;
pub use supervise::{SuperviseError, supervise};
