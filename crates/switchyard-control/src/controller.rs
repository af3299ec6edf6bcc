//! The controller: runs rollouts by feeding events to the pure machine and carrying out the
//! actions it returns, over the ports (store, runtime, router, metrics).
//!
//! Every transition is persisted before its actions touch traffic, so the store is always the
//! truth: after a crash, [`Controller::recover`] restarts releases and restores routing from it,
//! and deadlines (timestamps in the state) are honoured as if nothing happened. The app's lock
//! in the [`TrafficOwner`] serialises its transitions; calls to the outside (starting a canary,
//! webhooks, smoke tests, metric providers) happen outside it, and their results are applied to
//! the state as stored then, only if it still waits for them. Apps never wait for each other.
//!
//! Failures are per rollout: a rollout whose tick fails is marked, backed off and reported
//! ([`backoff`]); the others go on, and a restart never fails for one bad row.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_analysis::judge::{Against, ArmInterval, IntervalObservation};
use switchyard_analysis::{JudgeTotalsRequest, MeasureRequest, MetricProvider, MetricRun};
use switchyard_core::manifest::app::{RollbackPolicy, Webhook, WebhookKind};
use switchyard_core::ports::{
    AppRecord, Author, EventKind, EventQuery, NewEvent, RolloutId, RolloutRecord, RolloutUpdate,
    RuntimeError, StateStore, StoreError, WorkloadRuntime,
};
use switchyard_core::{AppName, Clock, Release, ReleaseMetrics, ReleaseTotals, Timestamp, Version};
use switchyard_policy::Policy;
use switchyard_rollout::machine::{
    self, Action, Command, Event, Phase, Rollout, RunRef, TransitionError,
};
use switchyard_rollout::plan::{Plan, PlanStep};
use switchyard_rollout::resolve::{self, DeployRequest, ResolveError};

use crate::ports::{RoutePlan, RouteTarget, SmokeTester, WebhookCaller};
use crate::traffic::{AppTraffic, TrafficOwner};

pub mod backoff;
pub mod history;
mod operations;
mod tick;

pub use backoff::RolloutTrouble;
pub use tick::Ticking;

/// Why a controller operation failed. Nothing was changed when it fails, except where a
/// variant says so.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("app `{0}` does not exist; apply its manifest first")]
    UnknownApp(AppName),
    #[error("app `{0}` has no rollout in progress")]
    NoRollout(AppName),
    #[error(
        "app `{app}` already has a rollout in progress (rollout {rollout}); promote or abort it first"
    )]
    RolloutInProgress { app: AppName, rollout: RolloutId },
    #[error("{version} is already the stable release of `{app}`")]
    AlreadyStable { app: AppName, version: Version },
    #[error(
        "app `{app}` is frozen by an emergency stop ({reason}); `switchyard unfreeze {app}` lifts it"
    )]
    Frozen { app: AppName, reason: String },
    #[error("app `{app}` has nothing to {what}: {why}")]
    NothingTo {
        app: AppName,
        what: &'static str,
        why: String,
    },
    #[error(
        "app `{app}` got its first release `{stable}` from another deploy meanwhile; deploy `{version}` again to roll it out"
    )]
    FirstReleaseTaken {
        app: AppName,
        stable: Version,
        version: Version,
    },
    #[error(
        "app `{app}` is split between releases by traffic experiment `{experiment}`, and a rollout would take over its routes; stop the experiment first (`switchyard experiment stop {experiment}`)"
    )]
    ExperimentRunning { app: AppName, experiment: String },
    /// The caller acted on a view of the rollout that is no longer current.
    #[error(
        "the command was meant for rollout {expected_id}{} of `{app}`, but rollout {current_id} is at step {} ({phase}) now; look again, or force it",
        expected_step.map(|s| format!(" at step {}", s + 1)).unwrap_or_default(),
        current_step + 1
    )]
    Stale {
        app: AppName,
        expected_id: RolloutId,
        /// Indexes from 0; the message counts steps from 1, as every text does.
        expected_step: Option<usize>,
        current_id: RolloutId,
        current_step: usize,
        phase: &'static str,
        current: Box<RolloutSnapshot>,
    },
    /// The operator's policy does not let the release run (its program or a variable).
    #[error("{release} may not run: {violation}")]
    Forbidden {
        release: String,
        violation: switchyard_policy::Violation,
    },
    #[error("analysis template `{0}` is not applied")]
    MissingTemplate(String),
    #[error(
        "metric `{metric}` of analysis template `{template}` judges with the built-in telemetry, \
         which does not see a `kubernetes` app's traffic: give its judge a `source` \
         (`source: {{prometheus: {{address, requests, errors}}}}`)"
    )]
    JudgeWithoutSource { template: String, metric: String },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The release did not start; for a canary the rollout is recorded as Failed.
    #[error("release {release} did not start: {source}")]
    Start {
        release: String,
        #[source]
        source: RuntimeError,
    },
    #[error("stored state of rollout {id} cannot be read: {source}")]
    CorruptState {
        id: RolloutId,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(StoreError),
    /// The app's router has not put the rollout's routes in force yet; the rollout waits.
    #[error("the routes of `{app}` are not in force yet, so the rollout waits: {why}")]
    RoutesNotApplied { app: AppName, why: String },
}

impl From<StoreError> for ControllerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownApp(app) => ControllerError::UnknownApp(app),
            StoreError::RolloutInProgress { app, rollout } => {
                ControllerError::RolloutInProgress { app, rollout }
            }
            e => ControllerError::Store(e),
        }
    }
}

/// A rollout as loaded from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSnapshot {
    pub id: RolloutId,
    pub app: AppName,
    pub rollout: Rollout,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What the caller of a command saw: the rollout and, optionally, its step. A command that
/// carries one is refused when the rollout has moved on ([`ControllerError::Stale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub rollout: RolloutId,
    /// `None`: any step of that rollout (an abort stops the rollout wherever it stands).
    pub step: Option<usize>,
}

/// At most this many rollouts are ticked at once.
pub const TICK_CONCURRENCY: usize = 16;

/// Drives every rollout of the daemon.
pub struct Controller {
    policy: Arc<Policy>,
    store: Arc<dyn StateStore>,
    runtime: Arc<dyn WorkloadRuntime>,
    traffic: Arc<TrafficOwner>,
    metrics: Arc<dyn ReleaseMetrics>,
    provider: Arc<dyn MetricProvider>,
    smoke: Arc<dyn SmokeTester>,
    hooks: Arc<dyn WebhookCaller>,
    clock: Arc<dyn Clock>,
    troubles: backoff::Troubles,
    ticking: tick::InFlight,
    tick_permits: tokio::sync::Semaphore,
    /// Bumped after every write of a rollout or a stable release: what live views wait on.
    changes: tokio::sync::watch::Sender<u64>,
    history: history::TrafficHistory,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

/// Everything the controller drives or reads.
pub struct ControllerPorts {
    /// What may run; a release it refuses is refused before anything starts.
    pub policy: Arc<Policy>,
    pub store: Arc<dyn StateStore>,
    pub runtime: Arc<dyn WorkloadRuntime>,
    /// The only writer of routes; the controller writes an app's routes under its lock.
    pub traffic: Arc<TrafficOwner>,
    pub metrics: Arc<dyn ReleaseMetrics>,
    pub provider: Arc<dyn MetricProvider>,
    pub smoke: Arc<dyn SmokeTester>,
    pub hooks: Arc<dyn WebhookCaller>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ControllerPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerPorts").finish_non_exhaustive()
    }
}

/// How a new rollout runs: its plan, rollback policy and webhooks.
struct Launch {
    plan: Plan,
    policy: Option<RollbackPolicy>,
    webhooks: Vec<Webhook>,
}

impl Launch {
    /// As the app's manifest says, for `canary` replacing `stable`.
    fn of(app: &switchyard_core::manifest::App, stable: &Release, canary: &Release) -> Self {
        Launch {
            plan: Plan::of(&app.spec.strategy, canary.instances(), stable.instances()),
            policy: app.spec.rollback_policy.clone(),
            webhooks: app.spec.webhooks.clone(),
        }
    }
}

impl Controller {
    pub fn new(ports: ControllerPorts) -> Self {
        let ControllerPorts {
            policy,
            store,
            runtime,
            traffic,
            metrics,
            provider,
            smoke,
            hooks,
            clock,
        } = ports;
        Self {
            policy,
            store,
            runtime,
            traffic,
            metrics,
            provider,
            smoke,
            hooks,
            clock,
            troubles: backoff::Troubles::default(),
            ticking: tick::InFlight::default(),
            tick_permits: tokio::sync::Semaphore::new(TICK_CONCURRENCY),
            changes: tokio::sync::watch::Sender::new(0),
            history: history::TrafficHistory::default(),
        }
    }

    /// Changes whenever a rollout or a stable release was written (its value counts the
    /// writes): live views re-read on it.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Samples the traffic of every rollout in progress for [`Controller::traffic_history`].
    ///
    /// # Errors
    /// The store could not list the rollouts in progress.
    pub async fn sample_traffic(&self) -> Result<(), ControllerError> {
        let now = self.clock.now();
        for record in self.store.active_rollouts().await? {
            let Ok(snapshot) = decode(record) else {
                continue;
            };
            self.history.sample(
                snapshot.id,
                snapshot.app.as_str(),
                &snapshot.rollout,
                self.metrics.as_ref(),
                now,
            );
        }
        Ok(())
    }

    /// The traffic samples of rollout `id` (see [`history`]).
    pub fn traffic_history(&self, id: RolloutId) -> Vec<history::TrafficSample> {
        self.history.series(id)
    }

    /// Ships a new version of `app`: its first release goes straight to 100%; later ones start
    /// a canary rollout. Returns once the release is healthy and the rollout has begun.
    ///
    /// # Errors
    /// Unknown app, a rollout already in progress, a bad request, or a release that does not
    /// become healthy (the rollout is then recorded as Failed and traffic is untouched).
    pub async fn deploy(
        &self,
        app: &AppName,
        request: &DeployRequest,
        by: &Author,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let record = self.app_record(app).await?;
        self.ensure_unclaimed(app)?;
        let release = resolve::resolve(&record.manifest, request)?;
        let Some(stable) = record.stable else {
            self.first_release(app, &release, by).await?;
            return Ok(None);
        };
        if stable.version == release.version {
            return Err(ControllerError::AlreadyStable {
                app: app.clone(),
                version: release.version,
            });
        }
        self.ensure_not_frozen(app).await?;
        let launch = Launch::of(&record.manifest, &stable, &release);
        self.start_rollout(app, stable, release, launch, by).await
    }

    /// Creates a rollout from `stable` to `canary` and starts the canary.
    async fn start_rollout(
        &self,
        app: &AppName,
        stable: Release,
        canary: Release,
        launch: Launch,
        by: &Author,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        self.check_policy(&canary)?;
        let Launch {
            plan,
            policy,
            webhooks,
        } = launch;
        let mut templates = BTreeMap::new();
        for name in plan.template_names() {
            let t = self
                .store
                .template(name)
                .await?
                .ok_or_else(|| ControllerError::MissingTemplate(name.to_string()))?;
            // The built-in telemetry sees only the proxy's traffic: a judge of an app the
            // cluster routes would wait on nothing.
            if canary.namespace().is_some() {
                if let Some(m) = t
                    .spec
                    .metrics
                    .iter()
                    .find(|m| m.judge.as_ref().is_some_and(|j| j.source.is_none()))
                {
                    return Err(ControllerError::JudgeWithoutSource {
                        template: name.to_string(),
                        metric: m.name.to_string(),
                    });
                }
            }
            templates.insert(name.to_string(), t.spec);
        }
        let now = self.clock.now();
        let rollout =
            Rollout::new(stable, canary, plan, templates, policy, now).with_webhooks(webhooks);
        let id = {
            let traffic = self.traffic.lock(app).await;
            ensure_not_split(&traffic)?;
            let state = to_json(&rollout);
            let event = self.event(app, None, EventKind::RolloutStarted, by, format!("rollout of {} started (stable {})", rollout.canary.label(), rollout.stable.version), serde_json::json!({"version": rollout.canary.version, "stable": rollout.stable.version}));
            self.store
                .create_rollout(
                    app,
                    &rollout.canary.version,
                    Phase::Pending.name(),
                    &state,
                    &[event],
                )
                .await?
        };
        self.changed();
        self.start_canary(id, app, &rollout.canary_now(), rollout.baseline.as_ref())
            .await
    }

    async fn first_release(
        &self,
        app: &AppName,
        release: &Release,
        by: &Author,
    ) -> Result<(), ControllerError> {
        self.check_policy(release)?;
        // Started outside the lock (it may take up to the start timeout); then, under it, the
        // app must still have no stable release (two first deploys may race).
        let endpoints =
            self.runtime
                .start(release)
                .await
                .map_err(|source| ControllerError::Start {
                    release: release.label(),
                    source,
                })?;
        let traffic = self.traffic.lock(app).await;
        if let Err(e) = ensure_not_split(&traffic) {
            self.stop_in_background(release.clone());
            return Err(e);
        }
        if let Some(stable) = self.app_record(app).await?.stable {
            if stable.version != release.version {
                self.stop_in_background(release.clone());
            }
            return Err(ControllerError::FirstReleaseTaken {
                app: app.clone(),
                stable: stable.version,
                version: release.version.clone(),
            });
        }
        let event = self.event(
            app,
            None,
            EventKind::Promoted,
            by,
            format!(
                "{} is the first release and takes all traffic",
                release.label()
            ),
            serde_json::json!({"version": release.version, "endpoints": endpoints}),
        );
        if let Err(e) = self.store.set_stable(app, release, &[event]).await {
            self.stop_in_background(release.clone());
            return Err(e.into());
        }
        self.changed();
        traffic.route(RoutePlan::single(release.version.clone(), endpoints));
        // The deploy returns once every live proxy serves the release (bounded), as a weight
        // change does: a client starting right after it must not meet the old, empty routes.
        if !traffic.applied().await {
            tracing::warn!(app = %app, "not every live proxy acknowledged the first release in time");
        }
        Ok(())
    }

    /// Starts a pending rollout's canary and records the outcome.
    async fn start_canary(
        &self,
        id: RolloutId,
        app: &AppName,
        canary: &Release,
        baseline: Option<&Release>,
    ) -> Result<Option<RolloutSnapshot>, ControllerError> {
        let started = self.start_releases(canary, baseline).await;
        let traffic = self.traffic.lock(app).await;
        let snapshot = self.load(id).await?;
        if snapshot.rollout.phase != Phase::Pending {
            // Aborted while the canary was starting.
            self.stop_in_background(canary.clone());
            if let Some(b) = baseline {
                self.stop_in_background(b.clone());
            }
            return Ok(Some(snapshot));
        }
        match started {
            Ok(_) => {
                let next = self
                    .apply(&traffic, &snapshot, Event::CanaryStarted, None)
                    .await?;
                Ok(Some(RolloutSnapshot {
                    rollout: next,
                    ..snapshot
                }))
            }
            Err((release, source)) => {
                self.apply(
                    &traffic,
                    &snapshot,
                    Event::CanaryFailed {
                        error: source.to_string(),
                    },
                    None,
                )
                .await?;
                Err(ControllerError::Start { release, source })
            }
        }
        .map(|s| {
            s.map(|mut s| {
                s.app = app.clone();
                s
            })
        })
    }

    /// Starts the canary and, when the rollout has one, the baseline copy of stable; on error
    /// nothing of the two is left running, and the error names the release that failed.
    async fn start_releases(
        &self,
        canary: &Release,
        baseline: Option<&Release>,
    ) -> Result<(), (String, RuntimeError)> {
        self.runtime
            .start(canary)
            .await
            .map_err(|e| (canary.label(), e))?;
        if let Some(b) = baseline {
            if let Err(e) = self.runtime.start(b).await {
                self.stop_in_background(canary.clone());
                return Err((b.label(), e));
            }
        }
        Ok(())
    }

    /// Applies an operator command to the app's rollout in progress. With `expected`, only if
    /// the rollout is still the one, at the step, the caller saw.
    ///
    /// # Errors
    /// No rollout in progress, a stale expectation, or a command that does not fit its phase.
    pub async fn command(
        &self,
        app: &AppName,
        command: Command,
        expected: Option<Expected>,
        by: &Author,
    ) -> Result<RolloutSnapshot, ControllerError> {
        self.app_record(app).await?;
        let traffic = self.traffic.lock(app).await;
        let record = self.store.latest_rollout(app).await?;
        let active = record.as_ref().filter(|r| r.active);
        if let (Some(expected), Some(record)) = (expected, &record) {
            let current = decode(record.clone())?;
            let moved = expected
                .step
                .is_some_and(|step| step != current.rollout.step);
            if current.id != expected.rollout || moved {
                return Err(ControllerError::Stale {
                    app: app.clone(),
                    expected_id: expected.rollout,
                    expected_step: expected.step,
                    current_id: current.id,
                    current_step: current.rollout.step,
                    phase: current.rollout.phase.name(),
                    current: Box::new(current),
                });
            }
        }
        let record = active
            .cloned()
            .ok_or_else(|| ControllerError::NoRollout(app.clone()))?;
        let snapshot = decode(record)?;
        let resumed = matches!(command, Command::Resume { .. });
        let next = self
            .apply(
                &traffic,
                &snapshot,
                Event::Command {
                    command,
                    actor: by.actor.clone(),
                },
                Some(by),
            )
            .await?;
        if resumed {
            // The routes as the rollout has them, again: a resume is how an operator takes the
            // rollout's routes back after they were changed outside Switchyard.
            self.route(&traffic, &next);
        }
        Ok(RolloutSnapshot {
            rollout: next,
            ..snapshot
        })
    }

    /// Brings releases and routes back after a restart: every app's stable release, and the
    /// canary of every rollout in progress, at the weight the store says. A rollout that cannot
    /// be resumed is reported and left to the tick's error policy; the others go on.
    ///
    /// # Errors
    /// The store cannot list apps or rollouts.
    pub async fn recover(&self) -> Result<(), ControllerError> {
        let active = self.store.active_rollouts().await?;
        for app in self.store.apps().await? {
            let Some(stable) = app.stable else { continue };
            match self.runtime.start(&stable).await {
                Ok(endpoints) => {
                    // An app in a rollout gets the rollout's routes below, not all-to-stable
                    // in between (a cluster's route would show that flip).
                    let name = &app.manifest.metadata.name;
                    if !active.iter().any(|r| &r.app == name) {
                        let traffic = self.traffic.lock(name).await;
                        traffic.route(RoutePlan::single(stable.version.clone(), endpoints));
                    }
                    tracing::info!(release = %stable.label(), "stable release restarted");
                }
                Err(e) => {
                    tracing::error!(release = %stable.label(), error = %e, "stable release could not be restarted");
                }
            }
        }
        for record in active {
            let id = record.id;
            if let Err(e) = self.recover_one(record).await {
                self.troubles.failed(id, &e, self.clock.now());
            }
        }
        Ok(())
    }

    /// Resumes one rollout in progress: starts its releases and restores its routes, or aborts
    /// it when a release cannot start.
    async fn recover_one(&self, record: RolloutRecord) -> Result<(), ControllerError> {
        let snapshot = decode(record)?;
        let (id, app) = (snapshot.id, snapshot.app.clone());
        let canary = snapshot.rollout.canary_now();
        if snapshot.rollout.phase == Phase::Pending {
            self.start_canary(id, &app, &canary, snapshot.rollout.baseline.as_ref())
                .await?;
            return Ok(());
        }
        let started = self
            .start_releases(&canary, snapshot.rollout.baseline.as_ref())
            .await;
        let traffic = self.traffic.lock(&app).await;
        match started {
            Ok(()) => {
                let r = &snapshot.rollout;
                if r.stable_instances() != r.stable.instances() {
                    if let Err(e) = self.runtime.scale(&r.stable_now()).await {
                        tracing::warn!(rollout = id, error = %e, "stable release could not be brought back to the rollout's size");
                    }
                }
                self.route(&traffic, &snapshot.rollout);
                tracing::info!(rollout = id, release = %canary.label(), weight = snapshot.rollout.weight, phase = snapshot.rollout.phase.name(), "rollout resumed");
            }
            Err((release, e)) => {
                let reason = Some(format!(
                    "{release} could not be restarted after a daemon restart: {e}"
                ));
                let abort = Event::Command {
                    command: Command::Abort { reason },
                    actor: "controller".into(),
                };
                self.apply(&traffic, &snapshot, abort, None).await?;
            }
        }
        Ok(())
    }

    /// `Forbidden` unless the policy lets `release`'s program run with its variables.
    fn check_policy(&self, release: &Release) -> Result<(), ControllerError> {
        let switchyard_core::Workload::Process { argv, env, .. } = &release.workload else {
            return Ok(());
        };
        let program = argv.first().map(String::as_str).unwrap_or_default();
        self.policy
            .check_program(program)
            .and_then(|()| env.keys().try_for_each(|k| self.policy.check_env(k)))
            .map_err(|violation| ControllerError::Forbidden {
                release: release.label(),
                violation,
            })
    }

    /// Addresses of the running instances (ready pods on Kubernetes) of a release.
    pub fn endpoints(&self, app: &AppName, version: &Version) -> Vec<SocketAddr> {
        self.runtime.endpoints(app, version)
    }

    /// Where the app's routes are written and how they stand, when a cluster routes it.
    pub fn routes_in_cluster(&self, app: &AppName) -> Option<String> {
        self.traffic.describe(app)
    }

    /// Why the controller cannot currently advance rollout `id`, if it cannot.
    pub fn trouble(&self, id: RolloutId) -> Option<RolloutTrouble> {
        self.troubles.get(id)
    }

    /// The app's latest rollout, if any.
    ///
    /// # Errors
    /// Unknown app, store failures.
    pub async fn latest(&self, app: &AppName) -> Result<Option<RolloutSnapshot>, ControllerError> {
        self.app_record(app).await?;
        self.store
            .latest_rollout(app)
            .await?
            .map(decode)
            .transpose()
    }

    /// The latest rollout of every app that has one, by app: one read of the store.
    ///
    /// # Errors
    /// Store failures, or a stored state that no longer reads.
    pub async fn latest_of_every_app(
        &self,
    ) -> Result<BTreeMap<AppName, RolloutSnapshot>, ControllerError> {
        self.store
            .latest_rollouts()
            .await?
            .into_iter()
            .map(|record| decode(record).map(|s| (s.app.clone(), s)))
            .collect()
    }

    /// Transitions, persists, then carries out the actions. Returns the new state. The caller
    /// holds the app's traffic.
    /// `by` is the author of a command; the events it records carry its address.
    async fn apply(
        &self,
        traffic: &AppTraffic,
        snapshot: &RolloutSnapshot,
        event: Event,
        by: Option<&Author>,
    ) -> Result<Rollout, ControllerError> {
        let now = self.clock.now();
        let (next, actions) = machine::transition(snapshot.rollout.clone(), event, now)?;
        if next == snapshot.rollout && actions.is_empty() {
            return Ok(next);
        }
        let app = &snapshot.app;
        let mut events = Vec::new();
        let mut stable = None;
        for action in &actions {
            match action {
                Action::Record {
                    kind,
                    actor,
                    reason,
                    data,
                } => {
                    let author = Author {
                        actor: actor.clone(),
                        source: by
                            .filter(|b| b.actor == *actor)
                            .and_then(|b| b.source.clone()),
                    };
                    let mut data = data.clone();
                    if *kind == EventKind::RolledBack {
                        // What an incident report needs and only memory holds now.
                        let kept = crate::incidents::at_rollback(
                            app.as_str(),
                            &snapshot.rollout,
                            self.metrics.as_ref(),
                            self.history.series(snapshot.id),
                        );
                        if let (Some(data), serde_json::Value::Object(kept)) =
                            (data.as_object_mut(), kept)
                        {
                            data.extend(kept);
                        }
                    }
                    events.push(self.event(
                        app,
                        Some(snapshot.id),
                        *kind,
                        &author,
                        reason.clone(),
                        data,
                    ));
                }
                Action::RecordMeasurement(m) => {
                    let reason =
                        format!("{}/{}: {:?} — {}", m.template, m.metric, m.phase, m.message);
                    events.push(self.event(
                        app,
                        Some(snapshot.id),
                        EventKind::Measurement,
                        &Author::system("analysis"),
                        reason,
                        to_json(m),
                    ));
                }
                Action::MakeCanaryStable => stable = Some(next.canary.clone()),
                Action::SetWeight(_)
                | Action::Reroute
                | Action::StopCanary
                | Action::StopStable
                | Action::StopBaseline
                | Action::PostRollout => {}
            }
        }
        let update = RolloutUpdate {
            id: snapshot.id,
            phase: next.phase.name().to_string(),
            active: !next.phase.is_terminal(),
            state: to_json(&next),
            stable,
            events,
            at: now,
        };
        self.store.update_rollout(&update).await?;
        self.changed();
        // Routes are rebuilt from the final state once, before any release is stopped. A weight
        // is in force once every live proxy serves it: the transition waits for that (bounded),
        // so that what follows (a pause, an analysis) runs on the traffic it is about.
        if actions
            .iter()
            .any(|a| matches!(a, Action::SetWeight(_) | Action::Reroute))
        {
            self.route(traffic, &next);
            if !traffic.applied().await {
                tracing::warn!(app = %traffic.app(), weight = next.weight,
                    "not every live proxy acknowledged the new weight in time");
            }
        }
        for action in actions {
            match action {
                Action::StopCanary => self.stop_in_background(next.canary.clone()),
                Action::StopStable => self.stop_in_background(next.stable.clone()),
                Action::StopBaseline => {
                    if let Some(b) = &next.baseline {
                        self.stop_in_background(b.clone());
                    }
                }
                Action::PostRollout => self.post_rollout(snapshot, &next),
                _ => {}
            }
        }
        Ok(next)
    }

    fn route(&self, traffic: &AppTraffic, r: &Rollout) {
        let app = traffic.app();
        // Only the instances the rollout counts: the ones past the count are about to stop.
        let sized = |release: &Release, count: u32, weight: u8| RouteTarget {
            version: release.version.clone(),
            weight: u32::from(weight),
            endpoints: self
                .runtime
                .endpoints(app, &release.version)
                .into_iter()
                .take(count as usize)
                .collect(),
        };
        let target = |release: &Release, weight: u8| sized(release, u32::MAX, weight);
        let canary = r.canary.version.clone();
        // The baseline copy takes as much traffic as the canary, from stable's share.
        let baseline_weight = if r.baseline.is_some() {
            r.weight.min(100 - r.weight)
        } else {
            0
        };
        let mut targets = vec![
            sized(
                &r.stable,
                r.stable_instances(),
                100 - r.weight - baseline_weight,
            ),
            sized(&r.canary, r.canary_instances(), r.weight),
        ];
        if let Some(b) = &r.baseline {
            targets.push(target(b, baseline_weight));
        }
        let plan = RoutePlan {
            targets,
            header_route: (!r.header_route.is_empty())
                .then(|| (canary.clone(), r.header_route.clone())),
            mirror: (r.mirror > 0).then_some((canary, r.mirror)),
            preview: r.preview.then(|| target(&r.canary, 100)),
        };
        traffic.route(plan);
    }

    /// Stops `release` once no proxy can send it a request: every live proxy acknowledged the
    /// routes without it and finished its requests (see [`TrafficOwner::drained`]).
    fn stop_in_background(&self, release: Release) {
        let runtime = Arc::clone(&self.runtime);
        // Taken now: each waits for the routes as they are after this call's change.
        let drains: Vec<_> = runtime
            .endpoints(&release.app, &release.version)
            .into_iter()
            .map(|endpoint| self.traffic.drained(&release.app, endpoint))
            .collect();
        tokio::spawn(async move {
            for drained in drains {
                drained.await;
            }
            if let Err(e) = runtime.stop(&release.app, &release.version).await {
                tracing::warn!(release = %release.label(), error = %e, "release did not stop cleanly");
            }
        });
    }

    async fn load(&self, id: RolloutId) -> Result<RolloutSnapshot, ControllerError> {
        let record = self
            .store
            .rollout(id)
            .await?
            .ok_or(ControllerError::Store(StoreError::UnknownRollout(id)))?;
        decode(record)
    }

    fn event(
        &self,
        app: &AppName,
        rollout: Option<RolloutId>,
        kind: EventKind,
        by: &Author,
        reason: String,
        data: serde_json::Value,
    ) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            app: Some(app.clone()),
            rollout,
            kind,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason,
            data,
        }
    }
}

/// `ExperimentRunning` when a traffic experiment splits the app: a release of ours would take
/// over the routes it placed.
fn ensure_not_split(traffic: &AppTraffic) -> Result<(), ControllerError> {
    match traffic.splitting() {
        Some(experiment) => Err(ControllerError::ExperimentRunning {
            app: traffic.app().clone(),
            experiment,
        }),
        None => Ok(()),
    }
}

/// An error and its causes on one line, each cause once.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// What a webhook receives, in the shape of Flagger's payload.
fn hook_payload(s: &RolloutSnapshot, hook: &Webhook) -> serde_json::Value {
    serde_json::json!({
        "name": s.app,
        "namespace": "switchyard",
        "phase": s.rollout.phase.name(),
        "type": hook.kind.as_str(),
        "version": s.rollout.canary.version,
        "stable": s.rollout.stable.version,
        "rollout": s.id,
        "metadata": hook.metadata,
    })
}

fn decode(record: RolloutRecord) -> Result<RolloutSnapshot, ControllerError> {
    let rollout =
        serde_json::from_value(record.state).map_err(|source| ControllerError::CorruptState {
            id: record.id,
            source,
        })?;
    Ok(RolloutSnapshot {
        id: record.id,
        app: record.app,
        rollout,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

#[cfg(test)]
mod tests;

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    // Serialising plain data structs with string keys cannot fail.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
