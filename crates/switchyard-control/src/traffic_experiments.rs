//! Traffic experiments in the data plane: while one runs, its app's proxy splits requests
//! between the releases of its variants by the unit key, and reports each exposure; once it
//! stops, the app goes back to its stable release and the other variants' releases stop.
//!
//! [`TrafficExperiments`] reconciles: it keeps what the proxies serve (`placed`, by app),
//! compares it with the experiments in force ([`plan`], pure) and carries out the steps. The
//! daemon runs a pass at start (after the controller restored stable releases and rollouts)
//! and after every change of the experiments ([`ExperimentService::subscribe`]): an apply, a
//! stop by an operator, or a stop by the guardrail check. Routes change only under the app's
//! lock in the [`TrafficOwner`], after checking there that no rollout took the app meanwhile.
//!
//! - [`plan`]: what to change, from what is served and what the experiments ask for.
//! - [`relay`]: the proxies' exposure sink, release → variant.
//!
//! Releases: a variant served by the app's stable release runs as it was deployed (with its
//! overrides); the others are resolved from the app's manifest as `deploy --version` would.
//! The stable release, and the canary of a rollout that started after the experiment stopped,
//! are never stopped here.

mod plan;
mod relay;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::ports::{
    AppRecord, Author, RolloutId, StateStore, StoreError, WorkloadRuntime,
};
use switchyard_core::{AppName, Clock, Release, Version};
use switchyard_rollout::DeployRequest;
use switchyard_rollout::resolve::{ResolveError, resolve};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::controller::chain;
use crate::experiments::{ExperimentService, ExperimentServiceError};
use crate::ports::{ExperimentRoutes, RoutePlan, RouteTarget};
use crate::traffic::TrafficOwner;

pub use plan::{Arm, Conflict, Plan, Split, Step, plan};
pub use relay::{ExposureRelay, RequestExposure};

/// The actor of the stops this module makes (a variant whose release cannot run).
pub const ACTOR: &str = "traffic-experiments";
/// After a failed pass, the next one runs this much later (or at the next change).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Keeps the proxies in line with the running traffic experiments.
pub struct TrafficExperiments {
    experiments: Arc<ExperimentService>,
    store: Arc<dyn StateStore>,
    runtime: Arc<dyn WorkloadRuntime>,
    traffic: Arc<TrafficOwner>,
    relay: Arc<ExposureRelay>,
    placed: BTreeMap<AppName, Split>,
    /// Set by a failed pass: when to try again without waiting for a change.
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for TrafficExperiments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficExperiments")
            .field("placed", &self.placed)
            .finish_non_exhaustive()
    }
}

impl TrafficExperiments {
    /// Serves nothing until [`TrafficExperiments::reconcile`]; the data plane's exposures go to
    /// [`TrafficExperiments::relay`].
    pub fn new(
        experiments: Arc<ExperimentService>,
        store: Arc<dyn StateStore>,
        runtime: Arc<dyn WorkloadRuntime>,
        traffic: Arc<TrafficOwner>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let relay = Arc::new(ExposureRelay::new(experiments.exposures().clone(), clock));
        TrafficExperiments {
            experiments,
            store,
            runtime,
            traffic,
            relay,
            placed: BTreeMap::new(),
            retry_at: None,
        }
    }

    /// Where the data plane reports the exposures of the experiments it splits.
    pub fn relay(&self) -> Arc<ExposureRelay> {
        Arc::clone(&self.relay)
    }

    /// The splits the proxies serve, by app.
    pub fn placed(&self) -> &BTreeMap<AppName, Split> {
        &self.placed
    }

    /// One pass: every running traffic experiment split, every other one restored. A variant
    /// whose release cannot run (or an app with a rollout in progress) stops its experiment,
    /// with the reason; the next pass restores the app.
    ///
    /// # Errors
    /// Store failures. The pass ends at the first; what it did stays done, and
    /// [`TrafficExperiments::run`] tries again after a delay.
    pub async fn reconcile(&mut self) -> Result<(), StoreError> {
        let live = self.experiments.live();
        let plan = plan(&self.placed, live.records.values());
        for c in &plan.conflicts {
            tracing::warn!(app = %c.app, serving = %c.serving, left_out = %c.left_out,
                "two running traffic experiments split one app; one is left out");
        }
        let result = self.carry_out(plan.steps).await;
        self.retry_at = result.is_err().then(|| Instant::now() + RETRY_AFTER);
        result
    }

    async fn carry_out(&mut self, steps: Vec<Step>) -> Result<(), StoreError> {
        for step in steps {
            match step {
                Step::Restore { split } => self.restore(split).await?,
                Step::Split { split, retired } => self.split(split, retired).await?,
            }
        }
        Ok(())
    }

    /// Reconciles after every change of the experiments until `cancel`.
    pub async fn run(mut self, mut changes: watch::Receiver<u64>, cancel: CancellationToken) {
        loop {
            let retry = async {
                match self.retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
                () = retry => {}
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                result = self.reconcile() => if let Err(e) = result {
                    tracing::error!(error = %chain(&e), "traffic experiments not reconciled; retrying");
                },
            }
        }
    }

    /// Starts the variants' releases and routes the app to them.
    async fn split(&mut self, split: Split, retired: Vec<Version>) -> Result<(), StoreError> {
        let Some(app) = self.store.app(&split.app).await? else {
            let why = format!("app `{}` does not exist", split.app);
            return self.abandon(&split, None, why).await;
        };
        let stable = app.stable.as_ref().map(|s| &s.version);
        if let Some(why) = self.rollout_in_progress(&split.app).await? {
            return self.abandon(&split, stable, why).await;
        }
        let targets = match self.start_arms(&app, &split).await {
            Ok(targets) => targets,
            Err(why) => return self.abandon(&split, stable, why).await,
        };
        // The releases started without the lock; a deploy may have come first meanwhile.
        let traffic = self.traffic.lock(&split.app).await;
        if let Some(why) = self.rollout_in_progress(&split.app).await? {
            drop(traffic);
            return self.abandon(&split, stable, why).await;
        }
        if let Some(previous) = self.placed.get(&split.app) {
            if previous.experiment != split.experiment {
                self.relay.forget(&previous.experiment);
            }
        }
        self.relay.serve(&split);
        let routes = ExperimentRoutes {
            experiment: split.experiment.clone(),
            unit: split.unit.clone(),
            targets,
        };
        if let Err(e) = traffic.route_experiment(routes) {
            drop(traffic);
            self.relay.forget(&split.experiment);
            let why = format!("app `{}` cannot be split: {}", split.app, chain(&e));
            return self.abandon(&split, stable, why).await;
        }
        drop(traffic);
        tracing::info!(experiment = %split.experiment, app = %split.app,
            variants = ?split.arms, "traffic experiment splits the app");
        let mut keep: Vec<Version> = split.versions().cloned().collect();
        keep.extend(stable.cloned());
        let app_name = split.app.clone();
        self.placed.insert(app_name.clone(), split);
        self.retire(&app_name, &retired, &keep).await;
        Ok(())
    }

    /// Starts (or finds running) the release of every variant; `Err` says which cannot run.
    async fn start_arms(&self, app: &AppRecord, split: &Split) -> Result<Vec<RouteTarget>, String> {
        let mut targets = Vec::with_capacity(split.arms.len());
        for arm in &split.arms {
            let started = match release_of(app, &arm.version) {
                Ok(release) => self.runtime.start(&release).await.map_err(|e| chain(&e)),
                Err(e) => Err(chain(&e)),
            };
            let endpoints = started.map_err(|e| {
                format!(
                    "variant `{}` ({} {}) cannot run: {e}",
                    arm.variant, split.app, arm.version
                )
            })?;
            targets.push(RouteTarget {
                version: arm.version.clone(),
                weight: arm.weight,
                endpoints,
            });
        }
        Ok(targets)
    }

    /// The experiment cannot run: stops the releases this pass started for it (not the stable
    /// one, nor those of the app's current routes) and stops the experiment with `why`.
    async fn abandon(
        &self,
        split: &Split,
        stable: Option<&Version>,
        why: String,
    ) -> Result<(), StoreError> {
        let served = self.placed.get(&split.app);
        for version in split.versions() {
            let in_use = Some(version) == stable
                || served.is_some_and(|s| s.versions().any(|v| v == version));
            if !in_use {
                if let Err(e) = self.runtime.stop(&split.app, version).await {
                    tracing::error!(app = %split.app, %version, error = %e, "variant release cannot be stopped");
                }
            }
        }
        tracing::warn!(experiment = %split.experiment, reason = %why, "traffic experiment stopped");
        match self
            .experiments
            .stop(&split.experiment, &why, &Author::system(ACTOR))
            .await
        {
            Ok(_) => Ok(()),
            Err(ExperimentServiceError::Store(e)) => Err(e),
            // Unknown (removed meanwhile) or not compiling: nothing left to stop.
            Err(e) => {
                tracing::warn!(experiment = %split.experiment, error = %chain(&e), "traffic experiment not stopped");
                Ok(())
            }
        }
    }

    /// Routes the app back to its stable release (unless a rollout took over its routes) and
    /// stops the variants' other releases once their requests have drained.
    async fn restore(&mut self, split: Split) -> Result<(), StoreError> {
        self.relay.forget(&split.experiment);
        let stable = self.store.app(&split.app).await?.and_then(|a| a.stable);
        let stable_endpoints = match &stable {
            Some(stable) => match self.runtime.start(stable).await {
                Ok(endpoints) => endpoints,
                Err(e) => {
                    tracing::error!(release = %stable.label(), error = %e, "stable release is not running");
                    self.runtime.endpoints(&stable.app, &stable.version)
                }
            },
            None => Vec::new(),
        };
        let traffic = self.traffic.lock(&split.app).await;
        let rollout = self.active_rollout(&split.app).await?;
        let mut keep: Vec<Version> = stable.iter().map(|s| s.version.clone()).collect();
        match (rollout, &stable) {
            // Deployed after the stop: the controller owns the routes and its releases.
            (Some((_, canary)), _) => keep.push(canary),
            (None, Some(stable)) => {
                traffic.route(RoutePlan::single(stable.version.clone(), stable_endpoints));
            }
            // Never deployed: nothing served before the experiment, nothing after it.
            (None, None) => traffic.route(RoutePlan::default()),
        }
        drop(traffic);
        tracing::info!(experiment = %split.experiment, app = %split.app, "traffic experiment ended; app back on its stable release");
        self.placed.remove(&split.app);
        let versions: Vec<Version> = split.versions().cloned().collect();
        self.retire(&split.app, &versions, &keep).await;
        Ok(())
    }

    /// Stops each of `versions` but those in `keep`, after its instances drained.
    async fn retire(&self, app: &AppName, versions: &[Version], keep: &[Version]) {
        for version in versions.iter().filter(|v| !keep.contains(v)) {
            for endpoint in self.runtime.endpoints(app, version) {
                self.traffic.drained(app, endpoint).await;
            }
            // A deploy of this version may have started meanwhile: its rollout owns it then.
            if let Ok(Some((_, canary))) = self.active_rollout(app).await {
                if &canary == version {
                    continue;
                }
            }
            match self.runtime.stop(app, version).await {
                Ok(()) => tracing::info!(%app, %version, "variant release stopped"),
                Err(e) => {
                    tracing::error!(%app, %version, error = %e, "variant release cannot be stopped");
                }
            }
        }
    }

    /// Why the app cannot be split now: the rollout it has in progress.
    async fn rollout_in_progress(&self, app: &AppName) -> Result<Option<String>, StoreError> {
        Ok(self.active_rollout(app).await?.map(|(id, canary)| {
            format!("app `{app}` has a rollout in progress (rollout {id} to {canary})")
        }))
    }

    /// The id and canary version of the app's rollout in progress.
    async fn active_rollout(
        &self,
        app: &AppName,
    ) -> Result<Option<(RolloutId, Version)>, StoreError> {
        Ok(self
            .store
            .latest_rollout(app)
            .await?
            .filter(|r| r.active)
            .map(|r| (r.id, r.version)))
    }
}

/// The release that serves `version`: the stable release as deployed, or the manifest's.
fn release_of(app: &AppRecord, version: &Version) -> Result<Release, ResolveError> {
    match &app.stable {
        Some(stable) if &stable.version == version => Ok(stable.clone()),
        _ => resolve(
            &app.manifest,
            &DeployRequest {
                version: Some(version.clone()),
                ..DeployRequest::default()
            },
        ),
    }
}

#[cfg(test)]
mod tests;
