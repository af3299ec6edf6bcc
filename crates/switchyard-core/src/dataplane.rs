//! The table protocol between the control plane and its proxies, as plain data.
//!
//! The control plane keeps one [`AppTable`] per app — where it listens and where its requests
//! go — and a version that grows with every change. A proxy follows the versions: it asks for
//! what changed since the version it has ([`TableUpdate`]: a delta on top of `base`, or a whole
//! snapshot when `base` is `None`), applies it, keeps the last one on disk, and reports back
//! ([`ProxyReport`]): the version it serves, what it could bind, what is still draining, and
//! monotonic per-release counters that the control plane sums across proxies.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::manifest::app::{
    HealthCheck, ListenerTls, MatchSource, MatchValue, RouteMatch, Stickiness, UpstreamTls,
    is_header_name,
};
use crate::name::{AppName, Version};
use crate::telemetry::ReleaseTotals;

/// Where one release's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTarget {
    pub release: Version,
    /// Relative weight; 0 takes no traffic.
    pub weight: u32,
    pub endpoints: Vec<SocketAddr>,
}

/// Requests matching every one of `matches` go to `release`, before weights apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableHeaderRoute {
    pub release: Version,
    pub matches: Vec<RouteMatch>,
}

/// A share of requests copied to `release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMirror {
    pub release: Version,
    pub percent: u8,
}

/// How requests are kept on a release: the key, and the salt of its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStickiness {
    pub key: Stickiness,
    pub salt: String,
}

/// Everything a proxy needs to serve one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppTable {
    /// The app's listener (port 0: any free port, reported back).
    pub listen: SocketAddr,
    /// A blue-green app's preview listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_listen: Option<SocketAddr>,
    pub targets: Vec<TableTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_routes: Vec<TableHeaderRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<TableMirror>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<TableStickiness>,
    pub health_check: HealthCheck,
    /// What the preview listener routes to; nothing when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<TableTarget>,
    /// The traffic experiment whose exposures the sticky requests report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// TLS termination on the listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// TLS to the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<UpstreamTls>,
}

/// What changed since `base`, or everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableUpdate {
    /// Chosen when the control plane starts: versions of different generations are not
    /// comparable, and a proxy whose generation differs gets a snapshot.
    pub generation: u64,
    /// The version this update brings the proxy to.
    pub version: u64,
    /// The version the update applies to; `None`: a snapshot that replaces everything.
    pub base: Option<u64>,
    /// The apps that changed (a snapshot: every app); `None` removes the app.
    pub apps: BTreeMap<AppName, Option<AppTable>>,
}

/// How one app's listener is doing on a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerState {
    /// Serving on this address (the real port when `listen` said 0).
    Bound(SocketAddr),
    /// Could not bind; the message says why (an address in use, a permission).
    Failed(String),
}

/// A proxy's report: what it serves, and its traffic since it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyReport {
    /// The proxy's id: the name of the token it authenticates with.
    pub proxy: String,
    /// Chosen at process start: counters restart with it.
    pub epoch: u64,
    /// Increases with every report of an epoch; a report not newer than the last one seen is
    /// a retry and is ignored.
    pub seq: u64,
    /// The generation and version of the table the proxy serves (0 and 0: none yet).
    pub generation: u64,
    pub version: u64,
    /// The table it refused, if the last one did not validate: `(version, why)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<(u64, String)>,
    /// Per app: the main listener and, for blue-green apps, the preview listener.
    pub listeners: BTreeMap<AppName, AppListeners>,
    /// Endpoints removed from an app's table whose requests are still finishing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub draining: Vec<(AppName, SocketAddr)>,
    /// Endpoints of an app's table the proxy does not send requests to: their health checks
    /// fail or passive checks ejected them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unhealthy: Vec<(AppName, SocketAddr)>,
    /// Everything each release answered since its counters began.
    pub totals: BTreeMap<AppName, BTreeMap<Version, ReleaseCounters>>,
    /// Exposures of traffic experiments since the previous report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposures: Vec<ReportedExposure>,
    /// Exposures the proxy had to drop since its epoch began (its queue was full).
    #[serde(default)]
    pub exposures_dropped: u64,
}

/// A release's counters on one proxy: monotonic while `incarnation` stays the same (a proxy
/// that forgot a release and sees it again starts a new incarnation from zero).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseCounters {
    pub incarnation: u64,
    pub totals: ReleaseTotals,
}

/// The listeners of one app on a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppListeners {
    pub main: ListenerState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<ListenerState>,
    /// Why the TLS configuration in force is not the one asked for (files that did not load;
    /// the previous certificates serve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_problem: Option<String>,
}

/// One request of a unit of a traffic experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedExposure {
    pub experiment: String,
    pub unit: String,
    pub release: String,
    pub status: u16,
    pub latency_ms: f64,
}

/// One proxy as the control plane sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyStatus {
    pub id: String,
    pub epoch: u64,
    /// It reported within a few seconds; only live proxies are waited for.
    pub live: bool,
    /// Milliseconds since its last report.
    pub last_report_ms: u64,
    /// The table version it serves, when it is of this control plane's generation.
    pub version: Option<u64>,
    /// It serves the current version.
    pub current: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<(u64, String)>,
    pub listeners: BTreeMap<AppName, AppListeners>,
    pub draining: usize,
}

/// Why a table cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableProblem {
    #[error("release `{0}` has more than one target")]
    DuplicateRelease(Version),
    #[error("the targets' weights sum to zero")]
    ZeroTotalWeight,
    #[error("the header route points at `{0}`, which has no target")]
    UnknownRouteRelease(Version),
    #[error("the mirror points at `{0}`, which has no target")]
    UnknownMirrorRelease(Version),
    #[error("mirror percent {0} is above 100")]
    MirrorPercent(u8),
    #[error("experiment `{0}` needs stickiness: its units are the values of the stickiness key")]
    ExperimentWithoutStickiness(String),
    #[error("`{0}` is not a header name")]
    HeaderName(String),
    #[error("regular expression `{0}` does not parse")]
    Regex(String),
}

impl AppTable {
    /// Whether a proxy can serve this table. The control plane checks before it publishes and
    /// the proxy again before it serves: one refused table would hold back every app's update.
    ///
    /// # Errors
    /// The first problem found. No target at all is not one: the app answers 503 until it
    /// has a release.
    pub fn check(&self) -> Result<(), TableProblem> {
        let has = |release: &Version| self.targets.iter().any(|t| &t.release == release);
        for (i, t) in self.targets.iter().enumerate() {
            if self.targets[..i].iter().any(|o| o.release == t.release) {
                return Err(TableProblem::DuplicateRelease(t.release.clone()));
            }
        }
        if !self.targets.is_empty() && self.targets.iter().all(|t| t.weight == 0) {
            return Err(TableProblem::ZeroTotalWeight);
        }
        for route in &self.header_routes {
            if !has(&route.release) {
                return Err(TableProblem::UnknownRouteRelease(route.release.clone()));
            }
            for m in &route.matches {
                check_match(m)?;
            }
        }
        if let Some(m) = &self.mirror {
            if !has(&m.release) {
                return Err(TableProblem::UnknownMirrorRelease(m.release.clone()));
            }
            if m.percent > 100 {
                return Err(TableProblem::MirrorPercent(m.percent));
            }
        }
        if let Some(s) = &self.stickiness {
            if let Stickiness::Header(h) = &s.key {
                if !is_header_name(h) {
                    return Err(TableProblem::HeaderName(h.clone()));
                }
            }
        }
        match &self.experiment {
            Some(e) if self.stickiness.is_none() => {
                Err(TableProblem::ExperimentWithoutStickiness(e.clone()))
            }
            _ => Ok(()),
        }
    }
}

fn check_match(m: &RouteMatch) -> Result<(), TableProblem> {
    if let MatchSource::Header(h) = &m.source {
        if !is_header_name(h) {
            return Err(TableProblem::HeaderName(h.clone()));
        }
    }
    if let MatchValue::Regex(r) = &m.value {
        if regex::Regex::new(r).is_err() {
            return Err(TableProblem::Regex(r.clone()));
        }
    }
    Ok(())
}
