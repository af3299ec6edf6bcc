//! Daemon settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `switchyard serve` (or the demo) starts the daemon with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Holds `switchyard.db` and the instance logs (`logs/`).
    pub data_dir: PathBuf,
    /// Address of the REST API (port 0 picks one).
    pub api_listen: SocketAddr,
    /// Argv prefix that runs workloads under the orphan-proof supervisor.
    pub supervisor: Option<Vec<String>>,
    /// How often the controller checks deadlines, measurements and policies.
    pub tick: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How often running experiments are analysed (snapshots, guardrails, maximum duration).
    pub experiment_check: Duration,
    /// Keep every ingested experiment event beside its idempotency key.
    pub keep_raw_events: bool,
}

impl DaemonConfig {
    /// Defaults for a data directory: API on 127.0.0.1:7070, 250 ms ticks, 5 s grace,
    /// experiments checked every 2 s, raw events not kept.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            supervisor: None,
            tick: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(5),
            experiment_check: Duration::from_secs(2),
            keep_raw_events: false,
        }
    }
}
