//! Daemon settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_policy::Policy;

/// What `switchyard serve` (or the demo) starts the daemon with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Holds `switchyard.db` and the instance logs (`logs/`).
    pub data_dir: PathBuf,
    /// A PostgreSQL database for the state instead of `switchyard.db` (`--database-url`).
    pub database_url: Option<DatabaseUrl>,
    /// With PostgreSQL: how long the leader lease lasts unless renewed (`--lease-ttl`).
    pub lease_ttl: Duration,
    /// With PostgreSQL: the API address other replicas forward to (`--advertise-url`);
    /// `http://<api_listen>` when `None`.
    pub advertise_url: Option<String>,
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
    /// Who may call the API, and from where.
    pub api: ApiAccess,
    /// The operator's policy: what may run, what may be set, what may be called.
    pub policy: Arc<Policy>,
    /// How long supervised instances keep serving after the daemon went away without stopping
    /// them (SIGTERM, SIGKILL, a crash), waiting for a restarted daemon to adopt them.
    pub adopt_within: Duration,
    /// The executable to run the local proxy with (`<exe> proxy ...`); `None` runs the control
    /// plane alone (`--no-proxy`), and proxies join it from elsewhere.
    pub local_proxy: Option<PathBuf>,
    /// The local proxy's threads (`switchyard proxy --workers`); its default when `None`.
    pub local_proxy_workers: Option<usize>,
    /// The kubeconfig of the cluster `kubernetes` apps run in (`--kubeconfig`); when `None`,
    /// found as kubectl does (`$KUBECONFIG`, `~/.kube/config`, the pod's service account).
    /// Read when the first such app needs it.
    pub kubeconfig: Option<PathBuf>,
}

/// A database URL, which may hold a password: its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(..)")
    }
}

/// Who may call the API, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiAccess {
    /// Require a bearer token on every request but `/health` and `/ready`. Without it, every
    /// caller acts as `local` with every right, which the daemon allows on a loopback address
    /// only.
    pub authenticate: bool,
    /// Host names the `Host` header may name besides `localhost` and IP addresses (DNS
    /// rebinding needs a name, so names must be listed).
    pub allowed_hosts: Vec<String>,
    /// Origins whose browser pages may call the API.
    pub cors_origins: Vec<String>,
    /// Origins whose browser pages may call OFREP and the flag stream.
    pub ofrep_cors_origins: Vec<String>,
}

impl Default for ApiAccess {
    fn default() -> Self {
        Self {
            authenticate: true,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            ofrep_cors_origins: Vec::new(),
        }
    }
}

impl DaemonConfig {
    /// Defaults for a data directory: API on 127.0.0.1:7070 with token authentication, 250 ms
    /// ticks, 5 s grace, experiments checked every 2 s, raw events not kept.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            lease_ttl: crate::replica::DEFAULT_LEASE_TTL,
            advertise_url: None,
            api_listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            supervisor: None,
            tick: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(5),
            experiment_check: Duration::from_secs(2),
            keep_raw_events: false,
            api: ApiAccess::default(),
            policy: Arc::new(Policy::default()),
            local_proxy: None,
            local_proxy_workers: None,
            kubeconfig: None,
            adopt_within: switchyard_runtime::supervise::DEFAULT_ADOPT_WITHIN,
        }
    }
}
