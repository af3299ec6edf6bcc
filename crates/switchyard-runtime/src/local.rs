//! [`LocalRuntime`]: the [`WorkloadRuntime`] that runs process releases as local children and
//! routes to static ones, and its table of running releases.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use switchyard_core::ports::{RuntimeError, WorkloadRuntime};
use switchyard_core::{AppName, Release, Version, Workload};
use tokio_util::sync::CancellationToken;

use crate::RuntimeConfig;
use crate::process::lifeline::Adoptions;
use crate::process::{ProcessRelease, ProcessWorkload};
use crate::static_release;

type ReleaseKey = (AppName, Version);

/// A release this runtime started.
#[derive(Debug)]
enum Running {
    Process(ProcessRelease),
    Static(Vec<SocketAddr>),
}

impl Running {
    fn endpoints(&self) -> Vec<SocketAddr> {
        match self {
            Running::Process(release) => release.endpoints(),
            Running::Static(addresses) => addresses.clone(),
        }
    }

    async fn stop(self) -> Result<(), RuntimeError> {
        match self {
            Running::Process(release) => release.stop().await,
            Running::Static(_) => Ok(()),
        }
    }
}

/// Runs releases on this machine: `process` releases as child processes, `static` releases as
/// health-checked addresses.
///
/// Must be used inside a Tokio runtime. Dropping it asks every instance to stop (gracefully, as
/// long as the Tokio runtime still runs; otherwise they are killed); call
/// [`WorkloadRuntime::shutdown`] to wait for them.
#[derive(Debug)]
pub struct LocalRuntime {
    config: RuntimeConfig,
    releases: Mutex<HashMap<ReleaseKey, Running>>,
    /// Parent of every instance's stop token, cancelled on drop.
    root: CancellationToken,
    /// Instances a previous daemon left running, until their releases start again.
    adoptions: Adoptions,
}

impl LocalRuntime {
    pub fn new(config: RuntimeConfig) -> Self {
        Self {
            config,
            releases: Mutex::new(HashMap::new()),
            root: CancellationToken::new(),
            adoptions: Adoptions::default(),
        }
    }

    /// Finds the instances a previous daemon left running (supervised, with socket
    /// lifelines); starting their releases adopts them instead of starting new ones. Returns
    /// how many were found.
    ///
    /// # Errors
    /// The lifeline directory cannot be created, or its path is too long for a socket.
    pub async fn adopt(&self) -> std::io::Result<usize> {
        let Some(lifelines) = &self.config.lifelines else {
            return Ok(0);
        };
        create_private_dir(&lifelines.dir)?;
        // The longest socket path: 16 hex digits, `.sock`, a separator.
        let longest = lifelines.dir.as_os_str().len() + 22;
        if longest > 107 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is too long a path for the instances' sockets (at most 85 bytes); use a \
                     shorter data directory",
                    lifelines.dir.display()
                ),
            ));
        }
        Ok(self.adoptions.scan(&lifelines.dir).await)
    }

    /// Stops the instances found by [`LocalRuntime::adopt`] that no release claimed.
    pub async fn stop_unclaimed(&self) {
        let left = self.adoptions.take_all();
        let mut stopping = Vec::new();
        for a in left {
            tracing::info!(app = %a.identity.app, version = %a.identity.version,
                instance = a.identity.instance, "stopping an instance no release claimed");
            stopping.push(tokio::spawn(async move {
                let mut process = crate::process::adopted(a.connection);
                if let Err(e) = process.terminate(UNCLAIMED_STOP_TIMEOUT).await {
                    tracing::warn!(error = %e, "an unclaimed instance did not stop cleanly");
                }
            }));
        }
        for s in stopping {
            let _ = s.await;
        }
    }

    /// Lets go of every instance without stopping it: their supervisors keep them serving and
    /// wait for a daemon to adopt them (see [`crate::supervise`]). Without socket lifelines
    /// this is [`WorkloadRuntime::shutdown`].
    pub async fn detach(&self) {
        if self.config.lifelines.is_none() || self.config.supervisor.is_none() {
            self.shutdown().await;
            return;
        }
        let all: Vec<_> = self.table().drain().collect();
        for ((app, version), running) in all {
            if let Running::Process(release) = running {
                tracing::info!(%app, %version, "leaving the release running for the next daemon");
                release.detach().await;
            }
        }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    fn table(&self) -> MutexGuard<'_, HashMap<ReleaseKey, Running>> {
        // The table is only read and replaced whole under the lock, so a panic elsewhere cannot
        // leave it half-updated.
        self.releases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn launch(&self, release: &Release) -> Result<Running, RuntimeError> {
        if let Workload::Static {
            addresses,
            start_timeout,
        } = &release.workload
        {
            return static_release::check(release, addresses, *start_timeout)
                .await
                .map(Running::Static);
        }
        // Every release that is not static is a process release.
        let workload = ProcessWorkload::of(release).ok_or_else(|| not_scalable(release))?;
        self.check_policy(release, &workload)?;
        ProcessRelease::start(release, workload, &self.config, &self.root, &self.adoptions)
            .await
            .map(Running::Process)
    }
}

impl LocalRuntime {
    /// `Forbidden` unless the operator's policy lets the release's program run with its
    /// variables.
    fn check_policy(
        &self,
        release: &Release,
        workload: &ProcessWorkload<'_>,
    ) -> Result<(), RuntimeError> {
        let policy = &self.config.policy;
        let program = workload
            .argv
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        policy
            .check_program(program)
            .and_then(|()| workload.env.keys().try_for_each(|k| policy.check_env(k)))
            .map_err(|v| RuntimeError::Forbidden {
                release: release.label(),
                source: Box::new(v),
            })
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

#[async_trait::async_trait]
impl WorkloadRuntime for LocalRuntime {
    /// Starting a release that already runs returns its current addresses and starts nothing.
    async fn start(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        let key = (release.app.clone(), release.version.clone());
        if let Some(running) = self.table().get(&key) {
            return Ok(running.endpoints());
        }
        let started = self.launch(release).await?;
        let endpoints = {
            let mut table = self.table();
            match table.get(&key) {
                // Another start of the same release finished first: keep one set of instances.
                Some(running) => running.endpoints(),
                None => {
                    let endpoints = started.endpoints();
                    table.insert(key, started);
                    return Ok(endpoints);
                }
            }
        };
        if let Err(error) = started.stop().await {
            tracing::error!(release = %release.label(), %error,
                "cannot stop a duplicate start of a running release");
        }
        Ok(endpoints)
    }

    /// Scaling a release that does not run starts it; a static release keeps its addresses.
    async fn scale(&self, release: &Release) -> Result<Vec<SocketAddr>, RuntimeError> {
        let key = (release.app.clone(), release.version.clone());
        let Some(workload) = ProcessWorkload::of(release) else {
            // A static release has one size: the addresses it was started with.
            let running = { self.table().get(&key).map(Running::endpoints) };
            return match (running, &release.workload) {
                (None, _) => self.start(release).await,
                (Some(endpoints), Workload::Static { addresses, .. })
                    if *addresses == endpoints =>
                {
                    Ok(endpoints)
                }
                (Some(_), _) => Err(not_scalable(release)),
            };
        };
        let current = match self.table().get(&key) {
            Some(Running::Process(p)) => Some(p.len()),
            Some(Running::Static(_)) => return Err(not_scalable(release)),
            None => None,
        };
        let Some(current) = current else {
            return self.start(release).await;
        };
        let desired = workload.instances;
        if desired > current {
            self.check_policy(release, &workload)?;
            let more = ProcessRelease::start_range(
                release,
                workload,
                &self.config,
                &self.root,
                current..desired,
                &self.adoptions,
            )
            .await?;
            let leftover = {
                let mut table = self.table();
                match table.get_mut(&key) {
                    Some(Running::Process(p)) if p.len() == current => {
                        p.extend(more);
                        return Ok(p.endpoints());
                    }
                    // Stopped or scaled by someone else meanwhile: theirs wins.
                    _ => more,
                }
            };
            if let Err(error) = leftover.stop().await {
                tracing::error!(release = %release.label(), %error,
                    "cannot stop instances of a scale that lost a race");
            }
            return Ok(self.endpoints(&release.app, &release.version));
        }
        let (removed, endpoints) = {
            let mut table = self.table();
            match table.get_mut(&key) {
                Some(Running::Process(p)) => (Some(p.split_off(desired)), p.endpoints()),
                Some(running) => (None, running.endpoints()),
                None => (None, Vec::new()),
            }
        };
        if let Some(removed) = removed {
            removed.stop().await?;
        }
        Ok(endpoints)
    }

    async fn stop(&self, app: &AppName, version: &Version) -> Result<(), RuntimeError> {
        let running = self.table().remove(&(app.clone(), version.clone()));
        match running {
            Some(running) => running.stop().await,
            None => Ok(()),
        }
    }

    fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr> {
        self.table()
            .get(&(app.clone(), version.clone()))
            .map(Running::endpoints)
            .unwrap_or_default()
    }

    async fn shutdown(&self) {
        let all: Vec<_> = self.table().drain().collect();
        // Signal every instance first so they all get their grace period at the same time.
        for (_, running) in &all {
            if let Running::Process(release) = running {
                release.request_stop();
            }
        }
        for ((app, version), running) in all {
            if let Err(error) = running.stop().await {
                tracing::error!(%app, %version, %error, "cannot stop release at shutdown");
            }
        }
    }
}

/// How long an unclaimed instance gets between SIGTERM and SIGKILL.
const UNCLAIMED_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn not_scalable(release: &Release) -> RuntimeError {
    RuntimeError::NotScalable {
        version: release.version.clone(),
    }
}
