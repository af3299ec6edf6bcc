//! Pipelines: `switchyard release` of a pipeline or of one app, the runner that moves every
//! run in progress (from the store, so runs survive restarts), approvals, window overrides
//! and cancellations, and the deployment-window check of direct deploys.
//!
//! Each [`Pipelines::tick`] reads a run, lets [`Run::advance`] decide against the world (the
//! run's rollouts as stored, the deployment windows), persists the run with its events, then
//! carries out the actions through the [`Controller`]: deploys, aborts, undos. A deploy or an
//! undo is marked in the run before it is asked for; after a crash, the runner adopts the
//! rollout it had started (the app's latest rollout, if newer) instead of starting another.

pub mod run;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use switchyard_core::manifest::DeploymentWindow;
use switchyard_core::manifest::pipeline::{ApprovalRole, Stage};
use switchyard_core::manifest::window::{self, Closed};
use switchyard_core::ports::{
    AppRecord, Author, EventKind, NewEvent, RolloutId, RunId, RunRecord, RunUpdate, StateStore,
    StoreError,
};
use switchyard_core::{AppName, Clock, ObjectName, Timestamp, Version};
use switchyard_rollout::machine::Command;
use switchyard_rollout::resolve::DeployRequest;

use crate::auth::{Action as AuthAction, Principal, Scope};
use crate::controller::{Controller, ControllerError, Expected};
pub use run::{Action, Run, RunPhase, StageStatus, TargetStatus, Waiting};

/// What a release names: a pipeline, or one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Pipeline(ObjectName),
    App(AppName),
}

impl Subject {
    /// `pipeline/NAME` or `app/NAME`: how runs are stored.
    pub fn key(&self) -> String {
        match self {
            Subject::Pipeline(p) => format!("pipeline/{p}"),
            Subject::App(a) => format!("app/{a}"),
        }
    }
}

/// Why a pipeline operation failed; nothing changed then.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("`{0}` is neither an applied pipeline nor an app; apply its manifest first")]
    Unknown(String),
    #[error("`{subject}` already has a run in progress (run {run}); cancel it first")]
    InProgress { subject: String, run: RunId },
    #[error("`{0}` has no run in progress")]
    NoRun(String),
    #[error("no stage of `{subject}` awaits approval{}", stage.as_ref().map(|s| format!(" named `{s}`")).unwrap_or_default())]
    NothingToApprove {
        subject: String,
        stage: Option<String>,
    },
    #[error("no stage of `{0}` is held by a deployment window")]
    NothingToOverride(String),
    #[error("stage `{stage}` needs the approval of a {role} (or above): {why}")]
    Forbidden {
        stage: String,
        role: &'static str,
        why: String,
    },
    #[error("a reason is required")]
    NoReason,
    #[error("stored state of pipeline run {id} cannot be read: {source}")]
    Corrupt {
        id: RunId,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PipelineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RunInProgress { subject, run } => {
                PipelineError::InProgress { subject, run }
            }
            e => PipelineError::Store(e),
        }
    }
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSnapshot {
    pub id: RunId,
    #[serde(flatten)]
    pub run: Run,
    pub updated_at: Timestamp,
}

/// Runs pipelines and releases.
pub struct Pipelines {
    store: Arc<dyn StateStore>,
    controller: Arc<Controller>,
    clock: Arc<dyn Clock>,
    /// One change at a time to runs: the runner's tick and the commands.
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines").finish_non_exhaustive()
    }
}

impl Pipelines {
    pub fn new(
        store: Arc<dyn StateStore>,
        controller: Arc<Controller>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            controller,
            clock,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Which subject `name` is: an applied pipeline first, then an app.
    ///
    /// # Errors
    /// `Unknown` when it is neither.
    pub async fn subject(&self, name: &str) -> Result<(Subject, Vec<Stage>), PipelineError> {
        if let Some(p) = self
            .store
            .pipelines()
            .await?
            .into_iter()
            .find(|p| p.metadata.name.as_str() == name)
        {
            return Ok((Subject::Pipeline(p.metadata.name), p.spec.stages));
        }
        let unknown = || PipelineError::Unknown(name.to_owned());
        let app = AppName::new(name).map_err(|_| unknown())?;
        if self.store.app(&app).await?.is_none() {
            return Err(unknown());
        }
        let stage = Stage {
            name: ObjectName::new(app.as_str()).map_err(|_| unknown())?,
            targets: vec![app.clone()],
            waves: Vec::new(),
            soak: None,
            approval: None,
            windows: Vec::new(),
            on_failure: Default::default(),
        };
        Ok((Subject::App(app), vec![stage]))
    }

    /// Starts a run of `name` (a pipeline or an app) with `version`, and takes its first steps.
    ///
    /// # Errors
    /// An unknown name, or a run of it in progress.
    pub async fn release(
        &self,
        name: &str,
        version: &Version,
        by: &Author,
    ) -> Result<RunSnapshot, PipelineError> {
        let (subject, stages) = self.subject(name).await?;
        let _guard = self.lock.lock().await;
        let now = self.clock.now();
        let run = Run::new(subject.key(), version.clone(), &stages, &by.actor, now);
        let id = self
            .store
            .create_run(&run.subject, version, run.phase.name(), &to_json(&run), &[])
            .await?;
        let reason = format!("release of {version} through {} started", run.subject);
        let started = self.event(id, &run, EventKind::PipelineStarted, by, None, reason);
        self.save(id, &run, vec![started]).await?;
        drop(_guard);
        self.step_or_log(id).await;
        self.snapshot(id).await
    }

    /// The latest run of `name`, if any.
    ///
    /// # Errors
    /// Store failures, an unreadable run.
    pub async fn latest(&self, name: &str) -> Result<Option<RunSnapshot>, PipelineError> {
        let (subject, _) = self.subject(name).await?;
        match self
            .store
            .runs(Some(&subject.key()), 1)
            .await?
            .into_iter()
            .next()
        {
            Some(r) => decode(r).map(Some),
            None => Ok(None),
        }
    }

    /// The most recent runs (of every subject), newest first.
    ///
    /// # Errors
    /// Store failures, an unreadable run.
    pub async fn list(&self, limit: u32) -> Result<Vec<RunSnapshot>, PipelineError> {
        self.store
            .runs(None, limit)
            .await?
            .into_iter()
            .map(decode)
            .collect()
    }

    async fn snapshot(&self, id: RunId) -> Result<RunSnapshot, PipelineError> {
        let record = self
            .store
            .run(id)
            .await?
            .ok_or(PipelineError::Store(StoreError::UnknownRun(id)))?;
        decode(record)
    }

    async fn active(&self, name: &str) -> Result<(RunId, Run), PipelineError> {
        let (subject, _) = self.subject(name).await?;
        let key = subject.key();
        let record = self
            .store
            .runs(Some(&key), 1)
            .await?
            .into_iter()
            .find(|r| r.active)
            .ok_or(PipelineError::NoRun(key))?;
        let snapshot = decode(record)?;
        Ok((snapshot.id, snapshot.run))
    }

    /// Approves the stage of `name`'s run that awaits (or will await) an approval: `stage`,
    /// or the first such stage. `principal` needs the stage's role or above, on every app of
    /// the stage.
    ///
    /// # Errors
    /// No run, nothing to approve, a principal without the authority, no reason.
    pub async fn approve(
        &self,
        name: &str,
        stage: Option<&str>,
        reason: &str,
        principal: &Principal,
        by: &Author,
    ) -> Result<RunSnapshot, PipelineError> {
        self.decide(name, reason, by, EventKind::Approved, |run, decision| {
            let found = run.stages.iter_mut().find(|s| {
                s.status == StageStatus::Pending
                    && s.spec.approval.is_some()
                    && s.approval.is_none()
                    && stage.is_none_or(|n| s.spec.name.as_str() == n)
            });
            let Some(s) = found else {
                return Err(PipelineError::NothingToApprove {
                    subject: run.subject.clone(),
                    stage: stage.map(str::to_owned),
                });
            };
            let role = s.spec.approval.as_ref().map(|a| a.role).unwrap_or_default();
            let action = match role {
                ApprovalRole::Operator => AuthAction::Operate,
                ApprovalRole::Deployer => AuthAction::Deploy,
                ApprovalRole::Admin => AuthAction::Administer,
            };
            for app in s.waves.iter().flatten().map(|t| &t.app) {
                principal.authorize(action, Scope::App(app)).map_err(|e| {
                    PipelineError::Forbidden {
                        stage: s.spec.name.to_string(),
                        role: role.as_str(),
                        why: e.to_string(),
                    }
                })?;
            }
            s.approval = Some(decision);
            let stage = s.spec.name.to_string();
            let message = format!("stage `{stage}` approved by {}: {reason}", by.actor);
            Ok((stage, message))
        })
        .await
    }

    /// Lets the stage that deployment windows hold start anyway (an admin's decision; the
    /// caller checks the role).
    ///
    /// # Errors
    /// No run, no stage held by a window, no reason.
    pub async fn override_windows(
        &self,
        name: &str,
        reason: &str,
        by: &Author,
    ) -> Result<RunSnapshot, PipelineError> {
        self.decide(
            name,
            reason,
            by,
            EventKind::WindowOverridden,
            |run, decision| {
                let Some(s) = run
                    .stages
                    .iter_mut()
                    .find(|s| matches!(s.waiting, Some(Waiting::Window { .. })))
                else {
                    return Err(PipelineError::NothingToOverride(run.subject.clone()));
                };
                s.window_override = Some(decision);
                let held = s
                    .waiting
                    .as_ref()
                    .map(Waiting::describe)
                    .unwrap_or_default();
                let stage = s.spec.name.to_string();
                let message = format!(
                    "{} overrode the deployment windows of stage `{stage}` ({held}): {reason}",
                    by.actor
                );
                Ok((stage, message))
            },
        )
        .await
    }

    /// A person's decision on a stage of `name`'s run in progress: `record` finds the stage,
    /// checks what it must and writes the decision into the run, returning the stage's name
    /// and the event's message. The run is stored with the event, then takes its next step.
    async fn decide(
        &self,
        name: &str,
        reason: &str,
        by: &Author,
        kind: EventKind,
        record: impl FnOnce(&mut Run, run::Decision) -> Result<(String, String), PipelineError>,
    ) -> Result<RunSnapshot, PipelineError> {
        if reason.trim().is_empty() {
            return Err(PipelineError::NoReason);
        }
        let guard = self.lock.lock().await;
        let (id, mut run) = self.active(name).await?;
        let decision = run::Decision {
            by: by.actor.clone(),
            reason: reason.to_owned(),
            at: self.clock.now(),
        };
        let (stage, message) = record(&mut run, decision)?;
        let event = self.event(id, &run, kind, by, Some(&stage), message);
        self.save(id, &run, vec![event]).await?;
        drop(guard);
        self.step_or_log(id).await;
        self.snapshot(id).await
    }

    /// Cancels `name`'s run in progress: nothing undone, nothing new started.
    ///
    /// # Errors
    /// No run in progress, no reason.
    pub async fn cancel(
        &self,
        name: &str,
        reason: &str,
        by: &Author,
    ) -> Result<RunSnapshot, PipelineError> {
        if reason.trim().is_empty() {
            return Err(PipelineError::NoReason);
        }
        let _guard = self.lock.lock().await;
        let (id, mut run) = self.active(name).await?;
        let events = run.cancel(&by.actor, reason, self.clock.now());
        let events = events
            .into_iter()
            .map(|e| self.event(id, &run, e.kind, by, e.stage.as_deref(), e.reason))
            .collect();
        self.save(id, &run, events).await?;
        self.snapshot(id).await
    }

    /// Moves every run in progress as far as it goes now. A run that fails to move is logged
    /// and retried on the next tick; the others go on.
    ///
    /// # Errors
    /// The store cannot list the runs in progress.
    pub async fn tick(&self) -> Result<(), PipelineError> {
        for record in self.store.active_runs().await? {
            let id = record.id;
            if let Err(e) = self.step(id).await {
                tracing::warn!(run = id, error = %e, "pipeline run did not advance");
            }
        }
        Ok(())
    }

    /// Takes the run's next step now rather than at the next tick; a failure is logged, and
    /// the tick takes the step again (the command itself is stored).
    async fn step_or_log(&self, id: RunId) {
        if let Err(e) = self.step(id).await {
            tracing::warn!(run = id, error = %e, "pipeline run did not advance; the next tick tries again");
        }
    }

    /// Advances run `id` once and carries out what it asks for.
    async fn step(&self, id: RunId) -> Result<(), PipelineError> {
        let _guard = self.lock.lock().await;
        let snapshot = self.snapshot(id).await?;
        let before = snapshot.run.clone();
        let mut run = snapshot.run;
        if run.phase.is_terminal() {
            return Ok(());
        }
        let world = self.world(&run).await?;
        let now = self.clock.now();
        // Deploys and undos marked but never answered (the daemon stopped in between) are
        // asked again; the executor adopts what they started.
        let mut actions = orphans(&run);
        let (events, more) = run.advance(&world, now);
        actions.extend(more);
        let author = Author::system(&run.subject);
        let events = events
            .into_iter()
            .map(|e| self.event(id, &run, e.kind, &author, e.stage.as_deref(), e.reason))
            .collect::<Vec<_>>();
        if events.is_empty() && actions.is_empty() {
            if run != before {
                self.save(id, &run, Vec::new()).await?;
            }
            return Ok(());
        }
        self.save(id, &run, events).await?;
        if actions.is_empty() {
            return Ok(());
        }
        for action in actions {
            self.act(&mut run, action, &author).await;
        }
        self.save(id, &run, Vec::new()).await
    }

    /// Carries out one action and records its result in the run.
    async fn act(&self, run: &mut Run, action: Action, by: &Author) {
        match action {
            Action::Deploy { stage, wave, app } => {
                let result = self.deploy(run, &app, by).await;
                let Some(t) = target(run, stage, wave, &app) else {
                    return;
                };
                match result {
                    Ok(Deployed::Rollout(id)) => t.rollout = Some(id),
                    Ok(Deployed::Unchanged(why)) => {
                        t.status = TargetStatus::Unchanged;
                        t.note = Some(why);
                    }
                    Ok(Deployed::First) => t.status = TargetStatus::Succeeded,
                    Err(why) => {
                        t.status = TargetStatus::Failed;
                        t.note = Some(why);
                    }
                }
            }
            Action::Undo { stage, wave, app } => {
                let after = target(run, stage, wave, &app).and_then(|t| t.rollout);
                let result = self.undo(&app, after, by).await;
                let Some(t) = target(run, stage, wave, &app) else {
                    return;
                };
                match result {
                    Ok(Some(id)) => t.undo = Some(id),
                    Ok(None) => t.status = TargetStatus::Reverted,
                    Err(why) => {
                        t.status = TargetStatus::RevertFailed;
                        t.note = Some(why);
                    }
                }
            }
            Action::Abort { app, rollout } => {
                let command = Command::Abort {
                    reason: Some(format!("{} failed", run.subject)),
                };
                let expected = Expected {
                    rollout,
                    step: None,
                };
                if let Err(e) = self
                    .controller
                    .command(&app, command, Some(expected), by)
                    .await
                {
                    // Already ended, or another rollout now: nothing of this run to stop.
                    tracing::info!(app = %app, rollout, error = %e, "rollout not aborted");
                }
            }
        }
    }

    /// Deploys the run's version to `app`, or adopts the rollout of it this run started
    /// before a restart.
    async fn deploy(&self, run: &Run, app: &AppName, by: &Author) -> Result<Deployed, String> {
        if let Ok(Some(latest)) = self.store.latest_rollout(app).await {
            if latest.version == run.version && latest.created_at >= run.started_at {
                return Ok(Deployed::Rollout(latest.id));
            }
        }
        let request = DeployRequest {
            version: Some(run.version.clone()),
            ..DeployRequest::default()
        };
        match self.controller.deploy(app, &request, by).await {
            Ok(Some(snapshot)) => Ok(Deployed::Rollout(snapshot.id)),
            Ok(None) => Ok(Deployed::First),
            Err(ControllerError::AlreadyStable { version, .. }) => Ok(Deployed::Unchanged(
                format!("{version} was already its stable release"),
            )),
            Err(e) => Err(crate::controller::chain(&e)),
        }
    }

    /// Undoes `app`'s last rollout, or adopts the undo this run started before a restart (a
    /// rollout newer than `after`, the one that brought the version).
    async fn undo(
        &self,
        app: &AppName,
        after: Option<RolloutId>,
        by: &Author,
    ) -> Result<Option<RolloutId>, String> {
        if let (Ok(Some(latest)), Some(after)) = (self.store.latest_rollout(app).await, after) {
            if latest.id > after {
                return Ok(Some(latest.id));
            }
        }
        match self.controller.undo(app, by).await {
            Ok(Some(snapshot)) => Ok(Some(snapshot.id)),
            Ok(None) => Ok(None),
            Err(e) => Err(crate::controller::chain(&e)),
        }
    }

    /// What `advance` needs: the run's rollouts and the windows of every wave.
    async fn world(&self, run: &Run) -> Result<Observed, PipelineError> {
        let mut rollouts = BTreeMap::new();
        for t in run.stages.iter().flat_map(|s| s.waves.iter().flatten()) {
            for id in [t.rollout, t.undo].into_iter().flatten() {
                if let Some(r) = self.store.rollout(id).await? {
                    rollouts.insert(id, (r.phase, !r.active));
                }
            }
        }
        let windows = self.store.windows().await?;
        let apps: BTreeMap<AppName, AppRecord> = self
            .store
            .apps()
            .await?
            .into_iter()
            .map(|a| (a.manifest.metadata.name.clone(), a))
            .collect();
        let pipeline = run.subject.strip_prefix("pipeline/");
        let now = self.clock.now();
        let mut holds = BTreeMap::new();
        for (i, stage) in run.stages.iter().enumerate() {
            for (w, wave) in stage.waves.iter().enumerate() {
                let applying: Vec<&DeploymentWindow> = windows
                    .iter()
                    .filter(|win| {
                        stage.spec.windows.contains(&win.metadata.name)
                            || wave.iter().any(|t| {
                                let env = apps
                                    .get(&t.app)
                                    .and_then(|a| a.manifest.metadata.environment());
                                win.applies(&t.app, env, pipeline)
                            })
                    })
                    .collect();
                if let Err(held) = window::next_open(&applying, now) {
                    holds.insert((i, w), held);
                }
            }
        }
        Ok(Observed { rollouts, holds })
    }

    /// The deployment windows that hold a direct deploy of `app` now, and when they open.
    ///
    /// # Errors
    /// Store failures.
    pub async fn deploy_hold(
        &self,
        app: &AppRecord,
    ) -> Result<Option<(Vec<Closed>, Option<Timestamp>)>, PipelineError> {
        let windows = self.store.windows().await?;
        let name = &app.manifest.metadata.name;
        let env = app.manifest.metadata.environment();
        let applying: Vec<&DeploymentWindow> = windows
            .iter()
            .filter(|w| w.applies(name, env, None))
            .collect();
        Ok(window::next_open(&applying, self.clock.now()).err())
    }

    /// Records an admin's deploy of `app` outside its deployment windows.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_override(
        &self,
        app: &AppName,
        held: &[Closed],
        reason: &str,
        by: &Author,
    ) -> Result<(), PipelineError> {
        let names: Vec<&str> = held.iter().map(|c| c.window.as_str()).collect();
        let event = NewEvent {
            at: self.clock.now(),
            app: Some(app.clone()),
            rollout: None,
            kind: EventKind::WindowOverridden,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason: format!(
                "{} deployed `{app}` outside deployment window {}: {reason}",
                by.actor,
                names.join(", ")
            ),
            data: serde_json::json!({"windows": names, "reason": reason}),
        };
        self.store.append_events(&[event]).await?;
        Ok(())
    }

    async fn save(&self, id: RunId, run: &Run, events: Vec<NewEvent>) -> Result<(), PipelineError> {
        let update = RunUpdate {
            id,
            phase: run.phase.name().to_owned(),
            active: !run.phase.is_terminal(),
            state: to_json(run),
            events,
            at: self.clock.now(),
        };
        self.store.update_run(&update).await?;
        Ok(())
    }

    fn event(
        &self,
        id: RunId,
        run: &Run,
        kind: EventKind,
        by: &Author,
        stage: Option<&str>,
        reason: String,
    ) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            app: None,
            rollout: None,
            kind,
            actor: by.actor.clone(),
            source: by.source.clone(),
            reason,
            data: serde_json::json!({
                "run": id,
                "subject": run.subject,
                "version": run.version,
                "phase": run.phase.name(),
                "stage": stage,
            }),
        }
    }
}

enum Deployed {
    Rollout(RolloutId),
    First,
    Unchanged(String),
}

/// What [`Pipelines::world`] read.
struct Observed {
    rollouts: BTreeMap<RolloutId, (String, bool)>,
    holds: BTreeMap<(usize, usize), (Vec<Closed>, Option<Timestamp>)>,
}

impl run::World for Observed {
    fn rollout(&self, id: RolloutId) -> Option<(&str, bool)> {
        self.rollouts
            .get(&id)
            .map(|(phase, ended)| (phase.as_str(), *ended))
    }

    fn windows(&self, stage: usize, wave: usize) -> Result<(), (Vec<Closed>, Option<Timestamp>)> {
        match self.holds.get(&(stage, wave)) {
            Some(held) => Err(held.clone()),
            None => Ok(()),
        }
    }
}

/// Deploys and undos marked in the run but without their rollout: asked again (the executor
/// adopts a rollout they started).
fn orphans(run: &Run) -> Vec<Action> {
    let mut out = Vec::new();
    for (i, stage) in run.stages.iter().enumerate() {
        for (w, wave) in stage.waves.iter().enumerate() {
            for t in wave {
                match (t.status, t.rollout, t.undo) {
                    (TargetStatus::Deploying, None, _) => out.push(Action::Deploy {
                        stage: i,
                        wave: w,
                        app: t.app.clone(),
                    }),
                    (TargetStatus::Reverting, _, None) => out.push(Action::Undo {
                        stage: i,
                        wave: w,
                        app: t.app.clone(),
                    }),
                    _ => {}
                }
            }
        }
    }
    out
}

fn target<'a>(
    run: &'a mut Run,
    stage: usize,
    wave: usize,
    app: &AppName,
) -> Option<&'a mut run::Target> {
    run.stages
        .get_mut(stage)?
        .waves
        .get_mut(wave)?
        .iter_mut()
        .find(|t| &t.app == app)
}

fn to_json(run: &Run) -> serde_json::Value {
    serde_json::to_value(run).unwrap_or(serde_json::Value::Null)
}

fn decode(record: RunRecord) -> Result<RunSnapshot, PipelineError> {
    let id = record.id;
    let run = serde_json::from_value(record.state)
        .map_err(|source| PipelineError::Corrupt { id, source })?;
    Ok(RunSnapshot {
        id,
        run,
        updated_at: record.updated_at,
    })
}
