//! A pipeline run as data, and [`Run::advance`]: given what the world looks like now (the
//! phases of the run's rollouts, the deployment windows), the next changes to the run and the
//! actions that carry them out. Pure: the runner reads the world, calls `advance`, persists
//! the run, then acts.

use serde::{Deserialize, Serialize};
use switchyard_core::manifest::pipeline::{ApprovalRole, FailurePolicy, Stage};
use switchyard_core::manifest::window::Closed;
use switchyard_core::ports::{EventKind, RolloutId};
use switchyard_core::{AppName, Timestamp, Version};

/// One run of a pipeline (or of one app's release) with one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// `pipeline/NAME` or `app/NAME`.
    pub subject: String,
    pub version: Version,
    pub phase: RunPhase,
    pub stages: Vec<StageRun>,
    /// Who released it.
    pub by: String,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// Why it ended, when it did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunPhase {
    Running,
    /// A stage failed and its failure policy is undoing what the run did.
    RollingBack,
    Succeeded,
    /// A stage failed; what the policy undid is undone.
    Failed,
    /// A stage failed under `halt`: nothing undone, nothing new started.
    Halted,
    /// A stage failed under `cascade`: every stage that took the version is undone.
    RolledBack,
    /// Cancelled by an operator: nothing undone, nothing new started.
    Cancelled,
}

impl RunPhase {
    pub fn name(self) -> &'static str {
        match self {
            RunPhase::Running => "Running",
            RunPhase::RollingBack => "RollingBack",
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::Halted => "Halted",
            RunPhase::RolledBack => "RolledBack",
            RunPhase::Cancelled => "Cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, RunPhase::Running | RunPhase::RollingBack)
    }
}

/// One stage of a run, with the stage's spec as it was when the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRun {
    pub spec: Stage,
    pub status: StageStatus,
    pub waves: Vec<Vec<Target>>,
    /// What holds the stage (or its next wave) now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Decision>,
    /// An admin's override of the deployment windows for this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_override: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    RollingBack,
    RolledBack,
    Halted,
    Cancelled,
}

/// Who decided (an approval, a window override) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub by: String,
    pub reason: String,
    pub at: Timestamp,
}

/// What a stage waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "for")]
pub enum Waiting {
    /// The previous stage soaks until `until`.
    Soak { until: Timestamp },
    /// A person with at least `role` must approve.
    Approval { role: ApprovalRole },
    /// Deployment windows hold wave `wave` until `until` (`None`: not within a year).
    Window {
        wave: usize,
        closed: Vec<Closed>,
        until: Option<Timestamp>,
    },
}

impl Waiting {
    /// `soak until ...`, `approval (operator)`, `deployment window ... until ...`.
    pub fn describe(&self) -> String {
        match self {
            Waiting::Soak { until } => format!("soaking until {until}"),
            Waiting::Approval { role } => {
                format!("awaiting approval (role {} or above)", role.as_str())
            }
            Waiting::Window { closed, until, .. } => {
                let why: Vec<String> = closed
                    .iter()
                    .map(|c| format!("`{}` {}", c.window, c.why))
                    .collect();
                match until {
                    Some(t) => format!("held by deployment window {} until {t}", why.join(", ")),
                    None => format!(
                        "held by deployment window {}, which does not open within a year",
                        why.join(", ")
                    ),
                }
            }
        }
    }
}

/// One app of a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub app: AppName,
    pub status: TargetStatus,
    /// The rollout that brings the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutId>,
    /// The rollout that takes it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<RolloutId>,
    /// What happened, in a sentence, when it did not simply succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetStatus {
    Pending,
    /// Asked to deploy; `rollout` is set once the rollout exists.
    Deploying,
    Succeeded,
    /// The app already ran the version: nothing deployed, nothing to undo.
    Unchanged,
    /// Its rollout failed, rolled back or was aborted: traffic is on the previous release.
    Failed,
    /// Aborted because another target of its stage failed.
    Aborted,
    /// Asked to undo; `undo` is set once the undo rollout exists.
    Reverting,
    Reverted,
    RevertFailed,
}

impl TargetStatus {
    fn done(self) -> bool {
        matches!(self, TargetStatus::Succeeded | TargetStatus::Unchanged)
    }
}

/// What the runner does for [`Run::advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deploy {
        stage: usize,
        wave: usize,
        app: AppName,
    },
    Abort {
        app: AppName,
        rollout: RolloutId,
    },
    Undo {
        stage: usize,
        wave: usize,
        app: AppName,
    },
}

/// An event to log about the run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub kind: EventKind,
    pub stage: Option<String>,
    pub reason: String,
}

/// What the runner read of the world for one `advance`.
pub trait World {
    /// The phase name of rollout `id` and whether it ended (`None` when it is unknown).
    fn rollout(&self, id: RolloutId) -> Option<(&str, bool)>;
    /// The deployment windows that hold wave `wave` of stage `stage` now, and when they all
    /// open; `Ok(())` when none does.
    fn windows(&self, stage: usize, wave: usize) -> Result<(), (Vec<Closed>, Option<Timestamp>)>;
}

impl Run {
    /// A new run of `stages` with `version`.
    pub fn new(
        subject: String,
        version: Version,
        stages: &[Stage],
        by: &str,
        now: Timestamp,
    ) -> Self {
        let stages = stages
            .iter()
            .map(|spec| StageRun {
                waves: spec
                    .wave_targets()
                    .into_iter()
                    .map(|apps| {
                        apps.into_iter()
                            .map(|app| Target {
                                app,
                                status: TargetStatus::Pending,
                                rollout: None,
                                undo: None,
                                note: None,
                            })
                            .collect()
                    })
                    .collect(),
                spec: spec.clone(),
                status: StageStatus::Pending,
                waiting: None,
                approval: None,
                window_override: None,
                started_at: None,
                ended_at: None,
            })
            .collect();
        Self {
            subject,
            version,
            phase: RunPhase::Running,
            stages,
            by: by.to_owned(),
            started_at: now,
            ended_at: None,
            outcome: None,
        }
    }

    /// The stage the run is at: the first that has not succeeded.
    pub fn current_stage(&self) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.status != StageStatus::Succeeded)
    }

    /// Moves the run as far as the world lets it now. Returns the events of what changed and
    /// the actions to carry out; the targets of `Deploy` and `Undo` actions are already marked
    /// `Deploying` and `Reverting`, so a run persisted before acting and read back after a crash
    /// asks for them again only if they never happened (the runner checks).
    pub fn advance(&mut self, world: &dyn World, now: Timestamp) -> (Vec<RunEvent>, Vec<Action>) {
        let mut out = Outcome::default();
        // A few rounds: a stage that succeeds lets the next one start in the same call.
        for _ in 0..self.stages.len() + 2 {
            let before = (self.phase, out.events.len(), out.actions.len());
            match self.phase {
                RunPhase::Running => self.advance_running(world, now, &mut out),
                RunPhase::RollingBack => self.advance_rollback(world, now, &mut out),
                _ => {}
            }
            if before == (self.phase, out.events.len(), out.actions.len()) {
                break;
            }
        }
        (out.events, out.actions)
    }

    fn advance_running(&mut self, world: &dyn World, now: Timestamp, out: &mut Outcome) {
        let Some(i) = self.current_stage() else {
            self.finish(RunPhase::Succeeded, None, now, out);
            return;
        };
        let previous_end = i.checked_sub(1).and_then(|p| self.stages[p].ended_at);
        let stage = &mut self.stages[i];
        if stage.status == StageStatus::Pending {
            let waiting = if let Some(until) = stage
                .spec
                .soak
                .and_then(|soak| previous_end.map(|end| end.plus(soak)))
                .filter(|until| *until > now)
            {
                Some(Waiting::Soak { until })
            } else if let (Some(a), None) = (&stage.spec.approval, &stage.approval) {
                Some(Waiting::Approval { role: a.role })
            } else {
                window_hold(stage, world, i, 0)
            };
            if let Some(w) = waiting {
                stage.wait(w, out);
                return;
            }
            stage.waiting = None;
            stage.status = StageStatus::Running;
            stage.started_at = Some(now);
            out.event(
                EventKind::StageStarted,
                Some(&stage.spec.name),
                format!("stage `{}` started", stage.spec.name),
            );
        }
        if stage.status != StageStatus::Running {
            return;
        }
        observe(stage, world);
        if let Some(failed) = stage
            .waves
            .iter()
            .flatten()
            .find(|t| matches!(t.status, TargetStatus::Failed))
        {
            let why = format!(
                "`{}` failed in stage `{}`{}",
                failed.app,
                stage.spec.name,
                failed
                    .note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            );
            self.fail_stage(i, why, now, out);
            return;
        }
        let Some(w) = stage
            .waves
            .iter()
            .position(|wave| !wave.iter().all(|t| t.status.done()))
        else {
            stage.status = StageStatus::Succeeded;
            stage.ended_at = Some(now);
            stage.waiting = None;
            out.event(
                EventKind::StageSucceeded,
                Some(&stage.spec.name),
                format!("stage `{}` succeeded", stage.spec.name),
            );
            return;
        };
        if stage.waves[w]
            .iter()
            .all(|t| t.status == TargetStatus::Pending)
        {
            if let Some(hold) = window_hold(stage, world, i, w) {
                stage.wait(hold, out);
                return;
            }
            stage.waiting = None;
            for t in &mut stage.waves[w] {
                t.status = TargetStatus::Deploying;
                out.actions.push(Action::Deploy {
                    stage: i,
                    wave: w,
                    app: t.app.clone(),
                });
            }
        }
    }

    /// Stage `i` failed: its policy decides what is undone.
    fn fail_stage(&mut self, i: usize, why: String, now: Timestamp, out: &mut Outcome) {
        let policy = self.stages[i].spec.on_failure;
        let stage = &mut self.stages[i];
        out.event(
            EventKind::StageFailed,
            Some(&stage.spec.name),
            format!("{why}; on failure: {}", policy.as_str()),
        );
        stage.waiting = None;
        if policy == FailurePolicy::Halt {
            stage.status = StageStatus::Halted;
            stage.ended_at = Some(now);
            self.finish(RunPhase::Halted, Some(why), now, out);
            return;
        }
        stage.status = StageStatus::RollingBack;
        for t in stage.waves.iter_mut().flatten() {
            if t.status == TargetStatus::Deploying {
                if let Some(rollout) = t.rollout {
                    out.actions.push(Action::Abort {
                        app: t.app.clone(),
                        rollout,
                    });
                }
                t.status = TargetStatus::Aborted;
                t.note = Some(why.clone());
            }
        }
        if policy == FailurePolicy::Cascade {
            for s in &mut self.stages[..i] {
                s.status = StageStatus::RollingBack;
            }
        }
        self.phase = RunPhase::RollingBack;
        self.outcome = Some(why);
    }

    /// Undoes the stages marked `RollingBack`, newest first, one stage at a time.
    fn advance_rollback(&mut self, world: &dyn World, now: Timestamp, out: &mut Outcome) {
        let Some(i) = self
            .stages
            .iter()
            .rposition(|s| s.status == StageStatus::RollingBack)
        else {
            let cascaded = self
                .stages
                .iter()
                .filter(|s| s.status == StageStatus::RolledBack)
                .count()
                > 1;
            let phase = if cascaded {
                RunPhase::RolledBack
            } else {
                RunPhase::Failed
            };
            let why = self.outcome.clone();
            self.finish(phase, why, now, out);
            return;
        };
        let stage = &mut self.stages[i];
        observe(stage, world);
        let mut busy = false;
        // Newest wave first.
        for (w, wave) in stage.waves.iter_mut().enumerate().rev() {
            for t in wave.iter_mut() {
                match t.status {
                    TargetStatus::Succeeded => {
                        t.status = TargetStatus::Reverting;
                        out.actions.push(Action::Undo {
                            stage: i,
                            wave: w,
                            app: t.app.clone(),
                        });
                        busy = true;
                    }
                    TargetStatus::Reverting => busy = true,
                    _ => {}
                }
            }
        }
        if !busy {
            stage.status = StageStatus::RolledBack;
            stage.ended_at = Some(now);
            out.event(
                EventKind::StageFailed,
                Some(&stage.spec.name),
                format!("stage `{}` rolled back", stage.spec.name),
            );
        }
    }

    fn finish(&mut self, phase: RunPhase, why: Option<String>, now: Timestamp, out: &mut Outcome) {
        self.phase = phase;
        self.ended_at = Some(now);
        self.outcome = why;
        let reason = match &self.outcome {
            Some(why) => format!(
                "{} of {}: {} ({why})",
                self.subject,
                self.version,
                phase.name()
            ),
            None => format!("{} of {}: {}", self.subject, self.version, phase.name()),
        };
        out.event(EventKind::PipelineFinished, None, reason);
    }

    /// Cancels a run in progress: nothing undone, nothing new started.
    pub fn cancel(&mut self, by: &str, reason: &str, now: Timestamp) -> Vec<RunEvent> {
        let mut out = Outcome::default();
        for s in &mut self.stages {
            if matches!(
                s.status,
                StageStatus::Pending | StageStatus::Running | StageStatus::RollingBack
            ) {
                s.status = StageStatus::Cancelled;
                s.waiting = None;
            }
        }
        self.finish(
            RunPhase::Cancelled,
            Some(format!("cancelled by {by}: {reason}")),
            now,
            &mut out,
        );
        out.events
    }
}

impl StageRun {
    /// Records what holds the stage, with an event when that changed (not every time the
    /// until moves).
    fn wait(&mut self, waiting: Waiting, out: &mut Outcome) {
        let changed = match (&self.waiting, &waiting) {
            (Some(Waiting::Soak { .. }), Waiting::Soak { .. })
            | (Some(Waiting::Approval { .. }), Waiting::Approval { .. }) => false,
            (Some(Waiting::Window { wave: a, .. }), Waiting::Window { wave: b, .. }) => a != b,
            _ => true,
        };
        let kind = match waiting {
            Waiting::Approval { .. } => EventKind::AwaitingApproval,
            _ => EventKind::StageWaiting,
        };
        if changed {
            out.event(
                kind,
                Some(&self.spec.name),
                format!("stage `{}` is {}", self.spec.name, waiting.describe()),
            );
        }
        self.waiting = Some(waiting);
    }
}

/// The deployment windows that hold wave `w` of `stage`, unless an admin overrode them.
fn window_hold(stage: &StageRun, world: &dyn World, i: usize, w: usize) -> Option<Waiting> {
    if stage.window_override.is_some() {
        return None;
    }
    world
        .windows(i, w)
        .err()
        .map(|(closed, until)| Waiting::Window {
            wave: w,
            closed,
            until,
        })
}

/// Reads the phases of the stage's rollouts into its targets.
fn observe(stage: &mut StageRun, world: &dyn World) {
    for t in stage.waves.iter_mut().flatten() {
        match t.status {
            TargetStatus::Deploying => {
                let Some((phase, ended)) = t.rollout.and_then(|id| world.rollout(id)) else {
                    continue;
                };
                if ended {
                    if phase == "Succeeded" {
                        t.status = TargetStatus::Succeeded;
                    } else {
                        t.status = TargetStatus::Failed;
                        t.note = Some(format!(
                            "rollout {} ended {phase}",
                            t.rollout.unwrap_or_default()
                        ));
                    }
                }
            }
            TargetStatus::Reverting => {
                let Some((phase, ended)) = t.undo.and_then(|id| world.rollout(id)) else {
                    continue;
                };
                if ended {
                    if phase == "Succeeded" {
                        t.status = TargetStatus::Reverted;
                    } else {
                        t.status = TargetStatus::RevertFailed;
                        t.note = Some(format!(
                            "undo rollout {} ended {phase}",
                            t.undo.unwrap_or_default()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

#[derive(Default)]
struct Outcome {
    events: Vec<RunEvent>,
    actions: Vec<Action>,
}

impl Outcome {
    fn event(
        &mut self,
        kind: EventKind,
        stage: Option<&switchyard_core::ObjectName>,
        reason: String,
    ) {
        self.events.push(RunEvent {
            kind,
            stage: stage.map(ToString::to_string),
            reason,
        });
    }
}

#[cfg(test)]
mod tests;
