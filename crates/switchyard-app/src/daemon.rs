//! Starting, running and stopping the daemon: the control plane, and the local proxy beside it.
//!
//! One root [`CancellationToken`] stops the control plane: the API server, the controller's
//! tick loop, the experiment check and the traffic experiments' reconciler. Then
//! [`Daemon::shutdown`] stops the local proxy (it drains for its grace period) and the runtime
//! (which stops every release).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_analysis::ProviderRouter;
use switchyard_control::auth::Tokens;
use switchyard_control::dataplane::DataPlane;
use switchyard_control::notifications::Notifications;
use switchyard_control::{
    Controller, ControllerPorts, ExperimentService, FlagService, ListenerRegistry, Manifests,
    TrafficExperiments, TrafficOwner,
};
use switchyard_core::ports::{StateStore, WorkloadRuntime};
use switchyard_core::{AppName, Clock, ReleaseMetrics, SystemClock};
use switchyard_kubernetes::{Cluster, Credentials, KubeRouter, KubeRuntime};
use switchyard_runtime::{LocalRuntime, RuntimeConfig};
use switchyard_server::ServerContext;
use switchyard_server::auth::Security;
use switchyard_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::DaemonConfig;
use crate::local_proxy::LocalProxy;
use crate::notify::HttpNotifier;
use crate::replica;
use crate::smoke::HttpSmokeTester;
use crate::webhooks::HttpWebhooks;
use crate::workloads::{Routers, Runtimes};

/// How often stopped Kubernetes releases are looked for, to delete after their delay.
const KUBE_SWEEP: Duration = Duration::from_secs(5);
/// How often the traffic of rollouts in progress is sampled for the dashboard's charts.
const TRAFFIC_SAMPLE: Duration = Duration::from_secs(2);
/// How often new events are rendered into the notification outbox and due ones sent.
const NOTIFY: Duration = Duration::from_millis(250);

/// A running daemon.
pub struct Daemon {
    api_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    dataplane: DataPlane,
    local_proxy: Option<LocalProxy>,
    runtime: Arc<LocalRuntime>,
    store: Store,
    /// Cancelled when another replica took the leader lease over (PostgreSQL only).
    deposed: CancellationToken,
    controller: Arc<Controller>,
    config: DaemonConfig,
    admin_token: Option<String>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// Opens the store, restarts releases and rollouts where they stood, starts serving the API
    /// and the tables, and starts (or adopts) the local proxy.
    ///
    /// # Errors
    /// The store cannot be opened, the API cannot be bound, the local proxy does not start.
    pub async fn start(config: DaemonConfig) -> anyhow::Result<Daemon> {
        if !config.api.authenticate && !config.api_listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve the API on {} without authentication: anyone who reaches \
                 it could deploy and run code. Drop --insecure-no-auth (tokens are on by \
                 default) or listen on a loopback address",
                config.api_listen
            );
        }
        let database_url = config.database_url.as_ref().map(|url| url.0.as_str());
        let store = Store::open(&config.data_dir, database_url)
            .await
            .context("while opening the state store")?;
        let cancel = CancellationToken::new();
        let deposed = CancellationToken::new();
        // On PostgreSQL several daemons may share the database: this one goes on once it leads,
        // and renews its lease from then on (resuming rollouts may take longer than the lease).
        let (renewer, api_listener) = match &store {
            Store::Postgres(pg) => {
                pg.enable_fencing();
                let identity =
                    replica::Identity::new(config.api_listen, config.advertise_url.as_deref());
                let (epoch, listener) =
                    replica::follow_until_leader(pg, &identity, &config).await?;
                tracing::info!(epoch, holder = %identity.holder, "this replica leads");
                let renewer = tokio::spawn(replica::keep_leading(
                    pg.clone(),
                    config.lease_ttl,
                    cancel.child_token(),
                    deposed.clone(),
                ));
                (Some(renewer), Some(listener))
            }
            Store::Sqlite(_) => (None, None),
        };
        let dataplane = DataPlane::new(generation());
        let mut runtime_config = RuntimeConfig::new(config.data_dir.join("logs"));
        runtime_config.supervisor.clone_from(&config.supervisor);
        runtime_config.policy = Arc::clone(&config.policy);
        if config.supervisor.is_some() {
            runtime_config =
                runtime_config.with_lifelines(config.data_dir.join("run"), config.adopt_within);
        }
        let runtime = Arc::new(LocalRuntime::new(runtime_config));
        match runtime.adopt().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                instances = n,
                "instances of the previous daemon found; their releases adopt them"
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e).context("while looking for running instances"));
            }
        }
        // Kubernetes apps: the cluster is connected when the first one needs it.
        let cluster = Arc::new(Cluster::new(match &config.kubeconfig {
            Some(path) => Credentials::Kubeconfig(path.clone()),
            None => Credentials::Infer,
        }));
        let kube_runtime = Arc::new(KubeRuntime::new(Arc::clone(&cluster)));
        let routers = Routers {
            dataplane: dataplane.clone(),
            kube: KubeRouter::new(cluster, cancel.child_token()),
            kube_runtime: Arc::clone(&kube_runtime),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics: Arc<dyn ReleaseMetrics> = Arc::new(dataplane.clone());
        let store_port: Arc<dyn StateStore> = store.state();
        let runtime_port: Arc<dyn WorkloadRuntime> = Arc::new(Runtimes {
            local: Arc::clone(&runtime),
            kube: Arc::clone(&kube_runtime),
        });
        let experiment_store = store.experiments();
        let experiments = Arc::new(
            ExperimentService::load(experiment_store, Arc::clone(&clock), config.keep_raw_events)
                .await
                .context("while loading the applied experiments")?,
        );
        let traffic_owner = Arc::new(TrafficOwner::new(
            Arc::new(routers.clone()),
            experiments.clone(),
        ));
        let provider = ProviderRouter::new(Arc::clone(&metrics), Arc::clone(&config.policy))
            .context("while building the metric providers")?;
        let controller = Arc::new(Controller::new(ControllerPorts {
            policy: Arc::clone(&config.policy),
            store: Arc::clone(&store_port),
            runtime: Arc::clone(&runtime_port),
            traffic: Arc::clone(&traffic_owner),
            metrics: Arc::clone(&metrics),
            provider: Arc::new(provider),
            smoke: Arc::new(HttpSmokeTester::default()),
            hooks: Arc::new(HttpWebhooks::new(Arc::clone(&config.policy))),
            clock: Arc::clone(&clock),
        }));

        let apps: Vec<_> = store_port
            .apps()
            .await
            .context("while reading applied apps")?
            .into_iter()
            .map(|a| a.manifest)
            .collect();
        routers
            .ensure(&apps)
            .await
            .context("while restoring the listeners of applied apps")?;
        controller
            .recover()
            .await
            .context("while resuming releases and rollouts")?;

        let api = match api_listener {
            Some(listener) => tokio::net::TcpListener::from_std(listener)
                .context("while setting up the API listener")?,
            None => tokio::net::TcpListener::bind(config.api_listen)
                .await
                .with_context(|| format!("while binding the API on {}", config.api_listen))?,
        };
        let api_addr = api.local_addr().context("while reading the API address")?;
        let flag_store = store.flags();
        let flags = FlagService::load(flag_store, cancel.child_token())
            .await
            .context("while loading the stored feature flags")?;
        // After `recover`: stable releases and rollouts are back, so the splits go on top.
        let mut traffic = TrafficExperiments::new(
            Arc::clone(&experiments),
            Arc::clone(&store_port),
            runtime_port,
            Arc::clone(&traffic_owner),
            Arc::clone(&clock),
        );
        dataplane.relay_exposures(traffic.relay());
        let experiment_changes = experiments.subscribe();
        if let Err(e) = traffic.reconcile().await {
            tracing::error!(
                error = %switchyard_control::controller::chain(&e),
                "traffic experiments not restored; retrying"
            );
        }
        // Releases and experiments took what they run; what is left belongs to nothing.
        runtime.stop_unclaimed().await;
        let tokens = Arc::new(
            Tokens::load(store.tokens(), Arc::clone(&clock))
                .await
                .context("while loading the API tokens")?,
        );
        let admin_token = if config.api.authenticate {
            bootstrap_admin_token(&tokens, &config.data_dir).await?
        } else {
            tracing::warn!(api = %config.api_listen, "the API runs WITHOUT authentication (--insecure-no-auth): every local process can deploy and run code");
            None
        };
        if config.api.authenticate && !config.api_listen.ip().is_loopback() {
            tracing::warn!(api = %config.api_listen, "the API listens beyond this machine over plain HTTP; put a TLS terminator in front of it, tokens travel in the clear otherwise");
        }
        let security = security(&config.api, &tokens);
        let registry: Arc<dyn ListenerRegistry> = Arc::new(routers);
        let manifests = Arc::new(Manifests::new(
            Arc::clone(&config.policy),
            Arc::clone(&store_port),
            registry,
            Arc::clone(&experiments),
            traffic_owner,
            Arc::clone(&clock),
        ));
        let for_text = dataplane.clone();
        let pipelines = Arc::new(switchyard_control::pipelines::Pipelines::new(
            Arc::clone(&store_port),
            Arc::clone(&controller),
            Arc::clone(&clock),
        ));
        let link_base = config
            .advertise_url
            .clone()
            .unwrap_or_else(|| format!("http://{api_addr}"));
        let notifications = Arc::new(Notifications::new(
            Arc::clone(&store_port),
            store.notifications(),
            Arc::new(
                HttpNotifier::new(Arc::clone(&config.policy))
                    .context("while building the notification client")?,
            ),
            Arc::clone(&clock),
            link_base,
            Arc::new(|name: &str| std::env::var(name).ok()),
        ));
        // Before the API answers: a first start places the cursor at the log's head, so what
        // is applied and deployed from now on is told, and history is not.
        notifications
            .dispatch()
            .await
            .context("while following the event log for notifications")?;
        let context = ServerContext {
            controller: Arc::clone(&controller),
            pipelines: Arc::clone(&pipelines),
            notifications: Arc::clone(&notifications),
            store: store_port,
            manifests,
            metrics,
            prometheus: Arc::new(move || for_text.encode_openmetrics()),
            dataplane: dataplane.clone(),
            clock,
            flags: Arc::new(flags),
            experiments: Arc::clone(&experiments),
            security,
        };
        let server_cancel = cancel.child_token();
        let server = tokio::spawn(async move {
            let app = switchyard_server::router(context)
                .into_make_service_with_connect_info::<SocketAddr>();
            let shutdown = async move { server_cancel.cancelled().await };
            if let Err(e) = axum::serve(api, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "API server failed");
            }
        });
        let ticking = Arc::clone(&controller);
        let ticker = tokio::spawn(every(
            config.tick,
            cancel.child_token(),
            "controller tick",
            move || {
                let controller = Arc::clone(&ticking);
                async move { controller.tick().await.map(drop) }
            },
        ));
        // Snapshots for the report; stops on a violated guardrail or an exceeded maximum duration.
        let checker = tokio::spawn(every(
            config.experiment_check,
            cancel.child_token(),
            "experiment check",
            move || {
                let experiments = Arc::clone(&experiments);
                async move { experiments.check().await.map(drop) }
            },
        ));
        let splitter = tokio::spawn(traffic.run(experiment_changes, cancel.child_token()));
        // Stopped Kubernetes releases go once their scale-down delay has passed.
        let sweeper = tokio::spawn(every(
            KUBE_SWEEP,
            cancel.child_token(),
            "deleting stopped ReplicaSets",
            move || {
                let kube = Arc::clone(&kube_runtime);
                async move { kube.sweep().await.map(drop) }
            },
        ));
        // The dashboard's traffic charts: each rollout's releases, every few seconds.
        let sampling = Arc::clone(&controller);
        let sampler = tokio::spawn(every(
            TRAFFIC_SAMPLE,
            cancel.child_token(),
            "sampling rollout traffic",
            move || {
                let controller = Arc::clone(&sampling);
                async move { controller.sample_traffic().await }
            },
        ));
        // Pipeline runs: stages, waves, approvals, windows and failure policies; at once when a
        // rollout changed (a stage's rollout ended), else every tick (soaks, windows).
        let runner = tokio::spawn(every_or_on_change(
            config.tick,
            Some(controller.changes()),
            cancel.child_token(),
            "pipeline runs",
            move || {
                let pipelines = Arc::clone(&pipelines);
                async move { pipelines.tick().await }
            },
        ));
        // The notification outbox: new events queued, due notifications sent; at once when a
        // rollout changed, else every NOTIFY (pipeline, flag and experiment events, retries).
        let notifier = tokio::spawn(every_or_on_change(
            NOTIFY,
            Some(controller.changes()),
            cancel.child_token(),
            "notifications",
            move || {
                let notifications = Arc::clone(&notifications);
                async move { notifications.run_once().await.map(drop) }
            },
        ));
        let mut tasks = vec![
            server, ticker, checker, splitter, sweeper, sampler, runner, notifier,
        ];
        tasks.extend(renewer);
        // Releases, rollouts and experiments are back: proxies may follow the tables now.
        dataplane.open();
        let local_proxy = match &config.local_proxy {
            Some(exe) => {
                dataplane.expect(crate::local_proxy::LOCAL_PROXY_ID);
                let tokens = config.api.authenticate.then_some(tokens.as_ref());
                let started = LocalProxy::start(
                    exe,
                    &config.data_dir,
                    api_addr,
                    tokens,
                    config.shutdown_grace,
                    config.local_proxy_workers,
                )
                .await;
                match started {
                    Ok(p) => {
                        // Ready means routed: wait until it serves this start's tables.
                        let id = crate::local_proxy::LOCAL_PROXY_ID;
                        if !dataplane.caught_up(id, Duration::from_secs(15)).await {
                            tracing::warn!(
                                pid = p.pid(),
                                "the local proxy has not reported the current tables yet"
                            );
                        }
                        Some(p)
                    }
                    Err(e) => {
                        cancel.cancel();
                        return Err(e.context("while starting the local proxy"));
                    }
                }
            }
            None => {
                tracing::info!(
                    "no local proxy (--no-proxy): proxies join with `switchyard proxy --control http://{api_addr}`"
                );
                None
            }
        };
        tracing::info!(api = %api_addr, data_dir = %config.data_dir.display(), "switchyard daemon started");
        Ok(Daemon {
            api_addr,
            cancel,
            tasks,
            dataplane,
            local_proxy,
            runtime,
            store,
            deposed,
            controller,
            config,
            admin_token,
        })
    }

    /// The admin token this start created (a data directory without tokens), if it did.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The bound address of the REST API.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The address an app's proxy listens on, as a live proxy reports it.
    pub fn app_addr(&self, app: &AppName) -> Option<SocketAddr> {
        self.dataplane.app_addr(app)
    }

    /// The routing tables and the proxies following them.
    pub fn dataplane(&self) -> &DataPlane {
        &self.dataplane
    }

    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    /// A token that stops the daemon when cancelled (signal handlers use it).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Runs until the token is cancelled, then shuts down.
    pub async fn run_until_cancelled(self) {
        self.cancel.cancelled().await;
        self.shutdown().await;
    }

    /// Cancelled when another replica took over the leader lease: stop (`detach`) and let the
    /// service manager start this process again, as a follower.
    pub fn deposed(&self) -> CancellationToken {
        self.deposed.clone()
    }

    /// Hands the leader lease over at once, so that a follower need not wait for it to run out.
    async fn resign(store: &Store) {
        if let Store::Postgres(pg) = store {
            if let Err(e) = pg.resign().await {
                tracing::warn!(error = %e, "the leader lease could not be given up; it runs out by itself");
            }
        }
    }

    /// Stops the control plane only: the API and the controller stop, the local proxy and
    /// the releases keep serving (their supervisors wait for the next daemon to adopt them, see
    /// [`DaemonConfig::adopt_within`]). What a restart or an upgrade does.
    pub async fn detach(self) {
        self.cancel.cancel();
        self.dataplane.close();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "daemon task ended abnormally");
            }
        }
        if let Some(proxy) = self.local_proxy {
            proxy.detach();
        }
        self.runtime.detach().await;
        Self::resign(&self.store).await;
        self.store.close().await;
        tracing::info!(adopt_within = ?self.config.adopt_within, "control plane stopped; the data plane keeps serving");
    }

    /// Stops the API and the controller, stops the local proxy (it drains for its grace
    /// period), stops every release and closes the store.
    pub async fn shutdown(self) {
        // First, while the API still takes its last report.
        if let Some(proxy) = self.local_proxy {
            proxy
                .stop(self.config.shutdown_grace + Duration::from_secs(5))
                .await;
        }
        self.cancel.cancel();
        // Proxies' waiting table requests would hold the API's graceful shutdown.
        self.dataplane.close();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "daemon task ended abnormally");
            }
        }
        self.runtime.shutdown().await;
        Self::resign(&self.store).await;
        self.store.close().await;
        tracing::info!("switchyard daemon stopped");
    }
}

/// Who may call the API, from where: the same on a leader and on a follower.
pub(crate) fn security(access: &crate::config::ApiAccess, tokens: &Arc<Tokens>) -> Arc<Security> {
    Arc::new(Security {
        tokens: access.authenticate.then(|| Arc::clone(tokens)),
        allowed_hosts: Security::loopback_hosts()
            .into_iter()
            .chain(access.allowed_hosts.iter().cloned())
            .collect(),
        cors_origins: access.cors_origins.clone(),
        ofrep_cors_origins: access.ofrep_cors_origins.clone(),
        sessions: Arc::default(),
    })
}

/// The file the first admin token is written to, in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// On a data directory without tokens: creates the first admin token and writes it to
/// `admin.token` (mode 0600). Returns it.
async fn bootstrap_admin_token(
    tokens: &Tokens,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<String>> {
    let Some(created) = tokens
        .bootstrap()
        .await
        .context("while creating the first admin token")?
    else {
        return Ok(None);
    };
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    // A file left from a database that no longer holds its token is of no use.
    if path.exists() {
        tracing::warn!(path = %path.display(), "replacing an admin token file whose token this database does not hold");
        std::fs::remove_file(&path)
            .with_context(|| format!("while removing the stale {}", path.display()))?;
    }
    write_private(&path, &format!("{}\n", created.token))
        .with_context(|| format!("while writing the admin token to {}", path.display()))?;
    tracing::info!(path = %path.display(), "first start: admin token written (export SWITCHYARD_TOKEN=$(cat {}))", path.display());
    Ok(Some(created.token))
}

/// A control-plane generation: different at every start, so that proxies fed by an earlier
/// start get a snapshot instead of a delta on versions that no longer mean the same.
fn generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .max(1)
}

/// Writes `text` to a new file only its owner can read.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Runs `work` every `period` until `cancel`; a failure is logged as `what` and the loop goes
/// on. A slow run delays the next one rather than stacking runs up.
async fn every<F, E>(
    period: std::time::Duration,
    cancel: CancellationToken,
    what: &'static str,
    work: impl FnMut() -> F,
) where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    every_or_on_change(period, None, cancel, what, work).await;
}

/// As [`every`], and also as soon as `changes` moves (a rollout or a stable release was
/// written); changes during a run of `work` make one more run after it.
async fn every_or_on_change<F, E>(
    period: std::time::Duration,
    mut changes: Option<tokio::sync::watch::Receiver<u64>>,
    cancel: CancellationToken,
    what: &'static str,
    mut work: impl FnMut() -> F,
) where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = async {
            match changes.as_mut() {
                Some(c) => c.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = interval.tick() => {}
            open = changed => {
                if !open {
                    return;
                }
            }
        }
        if let Some(c) = changes.as_mut() {
            c.mark_unchanged();
        }
        if let Err(e) = work().await {
            tracing::error!(error = %e, "{what} failed");
        }
    }
}
