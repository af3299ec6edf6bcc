//! `switchyard proxy`: the data-plane process.
//!
//! It serves every app's listener from the tables of the control plane ([`ProxyHost`]),
//! following them over the table protocol (long polls of `/api/v1/dataplane/tables`, resumed
//! from the version it serves), and reports back every second and after every change
//! (`/api/v1/dataplane/reports`): the version it serves, its listeners, what still drains, its
//! counters and its experiments' exposures.
//!
//! It depends on the control plane for changes only. The last table it applied is on disk
//! ([`cache`]), so it serves through a control plane that is down or restarting, and a
//! restarted proxy serves at once; only a proxy with neither a cached table nor a reachable
//! control plane refuses to start. Another process can take its listening sockets over
//! ([`handoff`]) for a restart or an upgrade without refusing a connection.
//!
//! Nothing else runs here: no YAML, no SQL, no statistics.

pub mod cache;
pub mod handoff;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use switchyard_api::{Client, ClientError};
use switchyard_core::dataplane::{ProxyReport, ReleaseCounters, ReportedExposure, TableUpdate};
use switchyard_core::{AppName, Version};
use switchyard_proxy::host::ProxyHost;
use switchyard_proxy::{Exposure, ExposureSink, ProxyConfig, Telemetry};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use cache::Applied;
use handoff::{HandoffListener, Takeover};

/// How long a table request waits for a change before asking again.
const POLL_WAIT: Duration = Duration::from_secs(30);
/// How long a proxy taking over waits for the control plane's tables before it starts from its
/// cached table instead.
const TAKEOVER_TABLE_WAIT: Duration = Duration::from_secs(3);

/// How long a proxy without a cached table tries to reach its control plane before it gives up.
const FIRST_TABLE_WAIT: Duration = Duration::from_secs(10);
/// How long a stopping proxy tries to send its last report.
const FINAL_REPORT_WAIT: Duration = Duration::from_secs(2);
/// Exposures kept for the next report; more are dropped (and counted).
const MAX_PENDING_EXPOSURES: usize = 100_000;

/// File, in the state directory, naming the process that serves from it.
pub const PID_FILE: &str = "proxy.json";

/// How the proxy authenticates to the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// No token (a control plane started with `--insecure-no-auth`).
    None,
    Value(String),
    /// Read at start and again whenever the control plane refuses the token.
    File(PathBuf),
}

impl TokenSource {
    fn read(&self) -> anyhow::Result<Option<String>> {
        match self {
            TokenSource::None => Ok(None),
            TokenSource::Value(t) => Ok(Some(t.clone())),
            TokenSource::File(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_owned()))
                .with_context(|| format!("while reading the proxy token from {}", path.display())),
        }
    }
}

/// What `switchyard proxy` is started with.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// The control plane's API, e.g. `http://10.0.0.1:7070`.
    pub control: String,
    /// The proxy's id: the name of its token.
    pub id: String,
    /// Holds the cached table, the handover socket and the pid file.
    pub state_dir: PathBuf,
    pub token: TokenSource,
    /// Time between reports (a change is reported at once).
    pub report_interval: Duration,
    /// How long requests may finish when the proxy stops or hands over.
    pub grace: Duration,
    /// Where to serve this proxy's own Prometheus metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Take the listening sockets of the proxy serving from the same state directory.
    pub takeover: bool,
    /// Settings of every listener.
    pub proxy: ProxyConfig,
}

/// What the pid file says about the process serving from a state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyProcess {
    pub pid: u32,
    pub id: String,
    pub control: String,
    /// The executable it runs, and its modification time (an upgrade changes them).
    pub exe: PathBuf,
    pub exe_modified_ns: u128,
}

impl ProxyProcess {
    /// This process.
    pub fn current(id: &str, control: &str) -> Self {
        let exe = std::env::current_exe().unwrap_or_default();
        Self {
            pid: std::process::id(),
            id: id.to_owned(),
            control: control.to_owned(),
            exe_modified_ns: modified_ns(&exe),
            exe,
        }
    }

    /// The pid file of `state_dir`, if there is one.
    pub fn read(state_dir: &Path) -> Option<Self> {
        let text = std::fs::read(state_dir.join(PID_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// The modification time of `path` in nanoseconds since the epoch (0 when unknown).
pub fn modified_ns(path: &Path) -> u128 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// Exposures waiting for the next report.
#[derive(Debug, Default)]
struct ExposureBuffer {
    pending: Mutex<Vec<ReportedExposure>>,
    dropped: AtomicU64,
}

impl ExposureSink for ExposureBuffer {
    fn record(&self, exposure: Exposure) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= MAX_PENDING_EXPOSURES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(ReportedExposure {
            experiment: exposure.experiment.to_string(),
            unit: exposure.unit,
            release: exposure.release,
            status: exposure.status,
            latency_ms: exposure.latency.as_secs_f64() * 1000.0,
        });
    }
}

impl ExposureBuffer {
    fn take(&self) -> Vec<ReportedExposure> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What the loops of one proxy process share.
struct Proxy {
    options: ProxyOptions,
    epoch: u64,
    host: ProxyHost,
    telemetry: Arc<Telemetry>,
    exposures: Arc<ExposureBuffer>,
    applied: Mutex<Applied>,
    /// The `(generation, version)` last written to the cache; held while writing, so that
    /// writes never interleave.
    cached: Mutex<(u64, u64)>,
    refused: Mutex<Option<(u64, String)>>,
    report_now: Notify,
    client: Mutex<Client>,
    /// A report that did not get through, sent again as it was.
    pending: Mutex<Option<ProxyReport>>,
    seq: AtomicU64,
}

/// Runs the proxy until `stop` is cancelled (or another process took it over), then lets
/// requests finish for the grace period.
///
/// # Errors
/// It cannot start: no cached table and no control plane, a state directory it cannot use,
/// another proxy serving from it (without `takeover`), a failed takeover.
pub async fn run(options: ProxyOptions, stop: CancellationToken) -> anyhow::Result<()> {
    let dir = &options.state_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("while creating the state directory {}", dir.display()))?;
    let telemetry = Arc::new(Telemetry::new());
    let exposures = Arc::new(ExposureBuffer::default());
    let sink: Arc<dyn ExposureSink> = exposures.clone();
    let host = ProxyHost::new(
        options.proxy.clone(),
        Arc::clone(&telemetry),
        Some(sink),
        options.grace,
    );
    let client = Client::with_token(options.control.clone(), options.token.read()?.as_deref());
    let proxy = Arc::new(Proxy {
        epoch: epoch(dir),
        options: options.clone(),
        host,
        telemetry,
        exposures,
        applied: Mutex::new(Applied::default()),
        cached: Mutex::new((0, 0)),
        refused: Mutex::new(None),
        report_now: Notify::new(),
        client: Mutex::new(client),
        pending: Mutex::new(None),
        seq: AtomicU64::new(0),
    });

    let takeover = if options.takeover {
        let dir = dir.clone();
        let (session, sockets) = tokio::task::spawn_blocking(move || Takeover::start(&dir))
            .await
            .context("the takeover task failed")?
            .with_context(|| {
                format!(
                    "while taking over the proxy serving from {}",
                    options.state_dir.display()
                )
            })?;
        tracing::info!(sockets = sockets.len(), "took the listening sockets over");
        proxy.host.inherit(sockets);
        Some(session)
    } else {
        refuse_if_served(dir)?;
        None
    };

    // Taking over, the predecessor still serves: there is time to ask the control plane for
    // the tables in force, so that the sockets serve the newest routes from their first
    // connection here (the cache may be older than what the predecessor served).
    let fresh = takeover.is_some() && proxy.current_tables().await;
    match cache::load(dir) {
        _ if fresh => {}
        Ok(Some(cached)) => {
            if let Err(e) = proxy.host.sync(&cached.apps).await {
                tracing::error!(error = %e, "the cached table does not validate; waiting for the control plane");
            } else {
                tracing::info!(
                    version = cached.version,
                    apps = cached.apps.len(),
                    "serving the cached table"
                );
                *proxy.cached.lock().unwrap_or_else(PoisonError::into_inner) =
                    (cached.generation, cached.version);
                *proxy.lock_applied() = cached;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "ignoring the cached table"),
    }
    if proxy.lock_applied().generation == 0 {
        proxy.first_table().await?;
    }
    proxy.host.release_unclaimed();

    if let Some(session) = takeover {
        tokio::task::spawn_blocking(move || session.ready())
            .await
            .context("the takeover task failed")?
            .context("while confirming the takeover")?;
    }
    let handoff = HandoffListener::bind(dir)
        .with_context(|| format!("while listening for handovers in {}", dir.display()))?;
    write_pid_file(dir, &options)?;
    tracing::info!(id = %options.id, control = %options.control, state_dir = %dir.display(), "proxy started");

    let handed_over = CancellationToken::new();
    let tasks = vec![
        tokio::spawn(Arc::clone(&proxy).follow(stop.clone())),
        tokio::spawn(Arc::clone(&proxy).report_loop(stop.clone())),
    ];
    let handovers = {
        let (proxy, handed_over, stop) = (Arc::clone(&proxy), handed_over.clone(), stop.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            proxy.serve_handovers(handoff, handed_over, stop, runtime);
        })
    };
    let metrics = match options.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, Arc::clone(&proxy.telemetry), stop.clone()).await?),
        None => None,
    };
    tokio::select! {
        () = stop.cancelled() => {}
        () = handed_over.cancelled() => stop.cancel(),
    }
    for task in tasks {
        task.abort();
    }
    let _ = handovers.await;
    let handed = handed_over.is_cancelled();
    // A stop right after an acknowledgement must not leave an older table for the next start.
    {
        let proxy = Arc::clone(&proxy);
        let _ = tokio::task::spawn_blocking(move || proxy.store_cache()).await;
    }
    proxy.host.shutdown(options.grace).await;
    if let Some(m) = metrics {
        m.abort();
    }
    // The requests that finished while draining are counted by this last report (if the
    // control plane still answers).
    let _ = tokio::time::timeout(FINAL_REPORT_WAIT, proxy.report_once()).await;
    if !handed {
        let _ = std::fs::remove_file(handoff::path(dir));
        if ProxyProcess::read(dir).is_some_and(|p| p.pid == std::process::id()) {
            let _ = std::fs::remove_file(dir.join(PID_FILE));
        }
    }
    tracing::info!(handed_over = handed, "proxy stopped");
    Ok(())
}

/// A start-time epoch larger than any earlier one of this state directory (counters restart
/// with it).
fn epoch(dir: &Path) -> u64 {
    let path = dir.join("epoch");
    let last: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let epoch = now.max(last + 1);
    if let Err(e) = std::fs::write(&path, epoch.to_string()) {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the epoch");
    }
    epoch
}

/// Refuses to start beside a live proxy of the same state directory.
fn refuse_if_served(dir: &Path) -> anyhow::Result<()> {
    let socket = handoff::path(dir);
    if probe(&socket).is_ok() {
        let pid = ProxyProcess::read(dir).map_or_else(|| "?".to_owned(), |p| p.pid.to_string());
        anyhow::bail!(
            "a proxy (pid {pid}) already serves from {}; stop it, or start this one with \
             --takeover to replace it without dropping a connection",
            dir.display()
        );
    }
    Ok(())
}

/// Whether a process accepts on the handover socket at `path`.
fn probe(path: &Path) -> std::io::Result<()> {
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = rustix::net::SocketAddrUnix::new(path)?;
    rustix::net::connect(&fd, &addr)?;
    Ok(())
}

fn write_pid_file(dir: &Path, options: &ProxyOptions) -> anyhow::Result<()> {
    let me = ProxyProcess::current(&options.id, &options.control);
    let path = dir.join(PID_FILE);
    let tmp = dir.join(format!("{PID_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&me)?)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("while writing {}", path.display()))
}

/// Where the proxy stands in the control plane's versions, for its next table request.
#[derive(Debug, Clone, Copy)]
struct Position {
    generation: u64,
    version: u64,
}

impl Proxy {
    /// Writes the table in force to the cache unless it is there already. Blocks.
    fn store_cache(&self) {
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = self.lock_applied().clone();
        let gone = !self.options.state_dir.exists();
        if gone || (applied.generation, applied.version) == *cached {
            return;
        }
        match cache::store(&self.options.state_dir, &applied) {
            Ok(()) => *cached = (applied.generation, applied.version),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the table is served but not cached");
            }
        }
    }

    fn lock_applied(&self) -> std::sync::MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client(&self) -> Client {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the token again (after the control plane refused it).
    fn reload_token(&self) {
        match self.options.token.read() {
            Ok(token) => {
                *self.client.lock().unwrap_or_else(PoisonError::into_inner) =
                    Client::with_token(self.options.control.clone(), token.as_deref());
            }
            Err(e) => tracing::error!(error = %format!("{e:#}"), "cannot read the proxy token"),
        }
    }

    /// The control plane's tables, applied, if it answers within [`TAKEOVER_TABLE_WAIT`].
    async fn current_tables(self: &Arc<Self>) -> bool {
        let client = self.client();
        // From version 0 the answer is a snapshot, at once.
        let asked = client.tables(0, 0, Duration::from_secs(1));
        match tokio::time::timeout(TAKEOVER_TABLE_WAIT, asked).await {
            Ok(Ok(Some(update))) => {
                self.apply(update).await;
                let applied = self.lock_applied().generation != 0;
                if applied {
                    tracing::info!(
                        version = self.lock_applied().version,
                        "serving the control plane's tables"
                    );
                }
                applied
            }
            Ok(Ok(None)) => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the control plane did not answer; starting from the cached table");
                false
            }
            Err(_) => false,
        }
    }

    /// Without a cached table: the first table from the control plane, or an error when it
    /// cannot be reached in time.
    async fn first_table(self: &Arc<Self>) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + FIRST_TABLE_WAIT;
        let mut reached = false;
        loop {
            match self.client().tables(0, 0, Duration::from_secs(5)).await {
                Ok(Some(update)) => {
                    self.apply(update).await;
                    if self.lock_applied().generation != 0 {
                        return Ok(());
                    }
                    reached = true;
                }
                // Reachable, but still recovering: its tables come when it is ready.
                Ok(None) => reached = true,
                Err(e) if tokio::time::Instant::now() >= deadline && !reached => {
                    return Err(anyhow::Error::new(e)).with_context(|| {
                        format!(
                            "no cached table in {} and the control plane at {} cannot be \
                             reached: nothing to serve",
                            cache::path(&self.options.state_dir).display(),
                            self.options.control
                        )
                    });
                }
                Err(e) => {
                    if is_unauthorized(&e) {
                        self.reload_token();
                    }
                    tracing::warn!(error = %e, "waiting for the control plane");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Applies an update on top of what this proxy serves. Returns where to ask from next.
    async fn apply(self: &Arc<Self>, update: TableUpdate) -> Position {
        let current = self.lock_applied().clone();
        let asked = Position {
            generation: update.generation,
            version: update.version,
        };
        let apps = match update.base {
            None => update
                .apps
                .into_iter()
                .filter_map(|(app, table)| table.map(|t| (app, t)))
                .collect(),
            Some(base) if base == current.version && update.generation == current.generation => {
                let mut apps = current.apps.clone();
                for (app, table) in update.apps {
                    match table {
                        Some(t) => apps.insert(app, t),
                        None => apps.remove(&app),
                    };
                }
                apps
            }
            // A delta on a version this proxy does not serve: ask for everything.
            Some(_) => {
                tracing::info!(base = ?update.base, have = current.version, "version gap; asking for a snapshot");
                return Position {
                    generation: 0,
                    version: 0,
                };
            }
        };
        match self.host.sync(&apps).await {
            Ok(()) => {
                let applied = Applied {
                    generation: update.generation,
                    version: update.version,
                    apps,
                };
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
                *self.lock_applied() = applied.clone();
                tracing::debug!(version = applied.version, "table applied");
                // Acknowledge first; the copy on disk is for the next start (a handover and a
                // stop write it too, so a successor never starts from an older table).
                self.report_now.notify_one();
                let proxy = Arc::clone(self);
                let _ = tokio::task::spawn_blocking(move || proxy.store_cache()).await;
            }
            Err(e) => {
                tracing::error!(version = update.version, error = %e, "table refused; the previous one keeps serving");
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((update.version, e.to_string()));
                self.report_now.notify_one();
            }
        }
        asked
    }

    /// Follows the control plane's tables until `stop`.
    async fn follow(self: Arc<Self>, stop: CancellationToken) {
        let mut at = {
            let applied = self.lock_applied();
            Position {
                generation: applied.generation,
                version: applied.version,
            }
        };
        let mut failures = 0u32;
        loop {
            let client = self.client();
            let asked = client.tables(at.generation, at.version, POLL_WAIT);
            let answer = tokio::select! {
                () = stop.cancelled() => return,
                a = asked => a,
            };
            match answer {
                Ok(Some(update)) => {
                    failures = 0;
                    at = self.apply(update).await;
                }
                Ok(None) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if is_unauthorized(&e) {
                        self.reload_token();
                    }
                    if failures == 1 || failures % 20 == 0 {
                        tracing::warn!(error = %e, failures, "cannot reach the control plane; serving the last table");
                    }
                    // At most a second: a control plane that restarts is followed again at once.
                    let backoff = Duration::from_millis(250 * u64::from(failures.min(4)));
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
    }

    /// Reports every interval and after every change, until `stop`.
    async fn report_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.report_now.notified() => {}
                () = tokio::time::sleep(self.options.report_interval) => {}
            }
            self.report_once().await;
            if !self.options.state_dir.exists() {
                tracing::error!(state_dir = %self.options.state_dir.display(),
                    "the state directory was removed; stopping");
                stop.cancel();
                return;
            }
        }
    }

    /// Sends one report; a report that did not get through is sent again as it was (same
    /// sequence number, same exposures), so the control plane counts it once.
    async fn report_once(&self) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let report = match pending {
            Some(r) => r,
            None => self.build_report().await,
        };
        match self.client().report(&report).await {
            Ok(()) => {}
            Err(e) => {
                if is_unauthorized(&e) {
                    self.reload_token();
                }
                if e.code() == Some("stale_proxy_epoch") {
                    tracing::error!(error = %e, "another process reports as this proxy");
                    return;
                }
                tracing::debug!(error = %e, "report not sent; it goes again");
                *self.pending.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
            }
        }
    }

    async fn build_report(&self) -> ProxyReport {
        // Read before the listeners: a report never claims a version its listeners lag.
        let (generation, version) = {
            let applied = self.lock_applied();
            (applied.generation, applied.version)
        };
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut totals: BTreeMap<AppName, BTreeMap<Version, ReleaseCounters>> = BTreeMap::new();
        for (app, release, incarnation, t) in self.telemetry.all_totals() {
            let (Ok(app), Ok(release)) = (AppName::new(app), Version::new(release)) else {
                continue;
            };
            totals.entry(app).or_default().insert(
                release,
                ReleaseCounters {
                    incarnation,
                    totals: t,
                },
            );
        }
        ProxyReport {
            proxy: self.options.id.clone(),
            epoch: self.epoch,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            generation,
            version,
            refused,
            listeners: self.host.listeners().await,
            draining: self.host.draining().await,
            unhealthy: self.host.unhealthy().await,
            totals,
            exposures: self.exposures.take(),
            exposures_dropped: self.exposures.dropped.load(Ordering::Relaxed),
        }
    }

    /// Hands the listening sockets to a process that asks, then cancels `handed_over`. Runs
    /// on a blocking thread until `stop`.
    fn serve_handovers(
        self: Arc<Self>,
        listener: HandoffListener,
        handed_over: CancellationToken,
        stop: CancellationToken,
        runtime: tokio::runtime::Handle,
    ) {
        while !stop.is_cancelled() {
            let handover = match listener.accept(Duration::from_millis(250)) {
                Ok(Some(h)) => h,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "handover socket failed; no takeover possible");
                    return;
                }
            };
            if let Err(e) = handover.expect_takeover() {
                // `switchyard serve` connects and leaves to see whether a proxy runs here.
                tracing::debug!(error = %e, "a handover connection ended without a request");
                continue;
            }
            // The successor starts from the cache: it must hold what this proxy serves.
            self.store_cache();
            let sockets = runtime.block_on(self.host.sockets());
            match handover.hand_over(sockets) {
                Ok(()) => {
                    tracing::info!("a new proxy took over; draining");
                    handed_over.cancel();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "the takeover failed; still serving"),
            }
        }
    }
}

fn is_unauthorized(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { status: 401, .. })
}

/// Serves `GET /metrics` (this proxy's Prometheus text) and `GET /health` on `addr`.
async fn serve_metrics(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding the metrics listener on {addr}"))?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let telemetry = Arc::clone(&telemetry);
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        telemetry.encode_prometheus(),
                    )
                }
            }),
        )
        .route("/health", get(|| async { "ok" }));
    Ok(tokio::spawn(async move {
        let shutdown = async move { stop.cancelled().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics listener failed");
        }
    }))
}

#[cfg(test)]
mod tests;
