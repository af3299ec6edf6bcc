//! A `process` release: N instances of a command on free local ports, started together and
//! stopped together. Starting is all or nothing: on the first failure every instance already
//! started is stopped before the error is returned.

mod backoff;
mod instance;
mod launch;
pub(crate) mod lifeline;
mod port;
mod terminate;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use switchyard_core::Release;
use switchyard_core::ports::RuntimeError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::instance::{Instance, InstancePlan};
use self::launch::{LaunchSpec, Launched, LifelineSpec, Substitutions};
use self::lifeline::{Adoptable, Adoptions, Identity};
use crate::RuntimeConfig;

/// The fields of [`switchyard_core::Workload::Process`], borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessWorkload<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) working_dir: Option<&'a Path>,
    pub(crate) instances: u32,
    pub(crate) start_timeout: Duration,
    pub(crate) stop_timeout: Duration,
}

impl<'a> ProcessWorkload<'a> {
    /// The process fields of `release`; `None` for another kind of release.
    pub(crate) fn of(release: &'a Release) -> Option<Self> {
        match &release.workload {
            switchyard_core::Workload::Process {
                argv,
                env,
                working_dir,
                instances,
                start_timeout,
                stop_timeout,
            } => Some(ProcessWorkload {
                argv,
                env,
                working_dir: working_dir.as_deref(),
                instances: *instances,
                start_timeout: *start_timeout,
                stop_timeout: *stop_timeout,
            }),
            switchyard_core::Workload::Static { .. }
            | switchyard_core::Workload::Kubernetes { .. } => None,
        }
    }
}

/// An instance found by adoption, as a process to stop.
pub(crate) fn adopted(connection: lifeline::Connection) -> Launched {
    Launched::adopted(connection)
}

/// The running instances of one process release.
#[derive(Debug)]
pub(crate) struct ProcessRelease {
    instances: Vec<Instance>,
}

impl ProcessRelease {
    /// Starts every instance and returns once all are healthy. Instances stop when `parent` is
    /// cancelled.
    ///
    /// # Errors
    /// See [`switchyard_core::ports::WorkloadRuntime::start`]; nothing runs after an error.
    pub(crate) async fn start(
        release: &Release,
        workload: ProcessWorkload<'_>,
        config: &RuntimeConfig,
        parent: &CancellationToken,
        adoptions: &Adoptions,
    ) -> Result<Self, RuntimeError> {
        Self::start_range(
            release,
            workload,
            config,
            parent,
            0..workload.instances,
            adoptions,
        )
        .await
    }

    /// Starts the instances numbered `ordinals` (on new free ports) and returns once all are
    /// healthy: a whole release, or the instances that scale one up. An instance a previous
    /// daemon left running with the same definition is adopted instead, on its port.
    ///
    /// # Errors
    /// As [`ProcessRelease::start`]; nothing of these instances runs after an error.
    pub(crate) async fn start_range(
        release: &Release,
        workload: ProcessWorkload<'_>,
        config: &RuntimeConfig,
        parent: &CancellationToken,
        ordinals: std::ops::Range<u32>,
        adoptions: &Adoptions,
    ) -> Result<Self, RuntimeError> {
        let dir = config.release_log_dir(&release.app, &release.version);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|source| RuntimeError::LogDirectory {
                path: dir.clone(),
                source,
            })?;
        if let Some(l) = &config.lifelines {
            tokio::fs::create_dir_all(&l.dir).await.map_err(|source| {
                RuntimeError::LogDirectory {
                    path: l.dir.clone(),
                    source,
                }
            })?;
        }
        let ports = port::free_ports(ordinals.end.saturating_sub(ordinals.start))?;
        let (started_tx, mut started_rx) = mpsc::channel(ports.len().max(1));
        let mut release_set = Self {
            instances: Vec::with_capacity(ports.len()),
        };
        let fingerprint = lifeline::fingerprint(workload.argv, workload.env, workload.working_dir);
        for (ordinal, port) in ordinals.zip(ports) {
            let adopted = adoptions.take(&release.app, &release.version, ordinal, &fingerprint);
            let port = adopted.as_ref().map_or(port, |a| a.identity.port);
            let plan = plan(release, &workload, config, ordinal, port)?;
            let instance = match adopted {
                Some(Adoptable { connection, .. }) => Ok(Instance::adopt(
                    plan,
                    Launched::adopted(connection),
                    parent.child_token(),
                    started_tx.clone(),
                )),
                None => Instance::spawn(plan, parent.child_token(), started_tx.clone()).await,
            };
            match instance {
                Ok(instance) => release_set.instances.push(instance),
                Err(error) => return Err(release_set.abandon(error).await),
            }
        }
        drop(started_tx);
        for _ in 0..release_set.instances.len() {
            match started_rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(release_set.abandon(error).await),
                // Every task sends once before it ends; a closed channel means one panicked.
                None => {
                    let error = RuntimeError::Spawn {
                        program: workload.argv.first().cloned().unwrap_or_default(),
                        source: std::io::Error::other("an instance task ended before reporting"),
                    };
                    return Err(release_set.abandon(error).await);
                }
            }
        }
        Ok(release_set)
    }

    /// How many instances run.
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.instances.len()).unwrap_or(u32::MAX)
    }

    /// Adds instances started by [`ProcessRelease::start_range`].
    pub(crate) fn extend(&mut self, more: ProcessRelease) {
        self.instances.extend(more.instances);
    }

    /// Takes the instances from number `keep` on out of this release, for the caller to stop.
    pub(crate) fn split_off(&mut self, keep: u32) -> ProcessRelease {
        let keep = usize::try_from(keep)
            .unwrap_or(usize::MAX)
            .min(self.instances.len());
        ProcessRelease {
            instances: self.instances.split_off(keep),
        }
    }

    /// Addresses of the instances, in instance order. They stay the same across restarts.
    pub(crate) fn endpoints(&self) -> Vec<SocketAddr> {
        self.instances.iter().map(|i| i.address).collect()
    }

    /// Lets go of every instance without stopping it (see `Instance::detach`).
    pub(crate) async fn detach(self) {
        for instance in self.instances {
            instance.detach().await;
        }
    }

    /// Asks every instance to stop without waiting, so several releases can stop in parallel.
    pub(crate) fn request_stop(&self) {
        self.instances.iter().for_each(Instance::request_stop);
    }

    /// Stops every instance (in parallel) and waits until all are gone.
    ///
    /// # Errors
    /// The first [`RuntimeError::Stop`]; the other instances are still stopped.
    pub(crate) async fn stop(self) -> Result<(), RuntimeError> {
        self.request_stop();
        let mut first_error = None;
        for instance in self.instances {
            if let Err(error) = instance.stop().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops what started of a failed release and gives back the reason it failed.
    async fn abandon(self, cause: RuntimeError) -> RuntimeError {
        if let Err(error) = self.stop().await {
            tracing::error!(%error, "cannot stop an instance of a release that failed to start");
        }
        cause
    }
}

fn plan(
    release: &Release,
    workload: &ProcessWorkload<'_>,
    config: &RuntimeConfig,
    ordinal: u32,
    port: u16,
) -> Result<InstancePlan, RuntimeError> {
    let lifeline = config.lifelines.as_ref().map(|l| {
        let identity = Identity {
            app: release.app.to_string(),
            version: release.version.to_string(),
            instance: ordinal,
            port,
            fingerprint: lifeline::fingerprint(workload.argv, workload.env, workload.working_dir),
        };
        LifelineSpec {
            path: lifeline::socket_path(&l.dir, &release.app, &release.version, ordinal),
            adopt_within: l.adopt_within,
            identity: serde_json::to_string(&identity).unwrap_or_default(),
        }
    });
    let launch = LaunchSpec::new(
        workload.argv,
        workload.env,
        workload.working_dir,
        Substitutions {
            port,
            version: &release.version,
        },
        config.instance_log(&release.app, &release.version, ordinal),
        config.supervisor.as_deref(),
        lifeline,
    )?;
    Ok(InstancePlan {
        ordinal,
        address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        label: release.label(),
        launch,
        health: release.health_check.clone(),
        start_timeout: workload.start_timeout,
        stop_timeout: workload.stop_timeout,
    })
}
