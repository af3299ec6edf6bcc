//! Starting and stopping releases.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::name::{AppName, Version};
use crate::release::Release;

/// Runs releases: starts their instances, waits until they are healthy, keeps them running and
/// stops them.
#[async_trait::async_trait]
pub trait WorkloadRuntime: Send + Sync + 'static {
    /// Starts every instance of `release` and returns their addresses once all of them pass the
    /// health check. On error nothing of the release is left running.
    ///
    /// # Errors
    /// The program cannot be spawned, an instance exits before it is healthy, or it does not
    /// become healthy within the start timeout.
    async fn start(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError>;

    /// Stops every instance of a release: SIGTERM, then SIGKILL after the stop timeout.
    /// Stopping a release that does not run succeeds.
    ///
    /// # Errors
    /// The operating system refused to signal or reap a process.
    async fn stop(&self, app: &AppName, version: &Version) -> Result<(), RuntimeError>;

    /// Brings the release to `release`'s instance count: starts the missing instances (and
    /// returns once they are healthy), or stops the ones numbered from the count on, the last
    /// addresses of [`WorkloadRuntime::endpoints`]. Starts the release when it does not run.
    /// Returns the addresses after the change.
    ///
    /// # Errors
    /// As [`WorkloadRuntime::start`] for new instances (which then do not run; the others keep
    /// running); [`RuntimeError::NotScalable`] for a release whose instances are fixed.
    async fn scale(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError>;

    /// Addresses of the release's instances (empty when it does not run).
    fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr>;

    /// Stops everything this runtime started (daemon shutdown).
    async fn shutdown(&self);
}

/// Why a release could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The operator's policy does not let this release run (its program or a variable).
    #[error("{release} may not run")]
    Forbidden {
        release: String,
        #[source]
        source: super::BoxError,
    },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("instance {instance} exited with {status} before it became healthy (log: {})", log.display())]
    ExitedEarly {
        instance: u32,
        status: String,
        log: PathBuf,
    },
    #[error("instance {instance} at {address} did not become healthy within {}: {last_error}", crate::duration::format(*timeout))]
    NeverHealthy {
        instance: u32,
        address: SocketAddr,
        timeout: Duration,
        last_error: String,
    },
    #[error("no free port for instance {instance}: {source}")]
    NoFreePort {
        instance: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "static release `{version}` has no addresses: list them in the manifest or pass --address"
    )]
    NoAddresses { version: Version },
    #[error("cannot create log directory {}: {source}", path.display())]
    LogDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("static release `{version}` has a fixed set of addresses and cannot be scaled")]
    NotScalable { version: Version },
    /// A Kubernetes cluster refused a call or cannot be reached.
    #[error(transparent)]
    Cluster(super::BoxError),
    #[error("{release}: {ready} of {wanted} pods Ready after {}: {why}", crate::duration::format(*timeout))]
    NeverReady {
        release: String,
        ready: u32,
        wanted: u32,
        timeout: Duration,
        why: String,
    },
    #[error("cannot stop instance {instance}: {source}")]
    Stop {
        instance: u32,
        #[source]
        source: std::io::Error,
    },
}
