//! The state of one rollout and its pure transition function.
//!
//! `transition(rollout, event, now)` returns the next state and the actions the controller must
//! carry out (start or stop releases, change weights, record events). It does no IO and reads
//! no clock, so every path is tested directly. Waiting (a timed pause, the next measurement,
//! the next policy check) is a timestamp in the state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_analysis::{AnalysisRun, MeasureError, Measurement, Observation, RunStatus};
use switchyard_core::manifest::analysis::AnalysisTemplateSpec;
use switchyard_core::manifest::app::{CanaryStep, RollbackPolicy};
use switchyard_core::ports::EventKind;
use switchyard_core::{Release, Timestamp, WindowStats};

use crate::policy::{self, PolicyCheck, PolicyVerdict};

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// The canary release is starting; it takes no traffic yet.
    Pending,
    /// Waiting: for a step's duration (`until`), or for an operator when `until` is `None`.
    Paused {
        reason: PauseReason,
        until: Option<Timestamp>,
    },
    /// An analysis step is measuring.
    Analyzing,
    /// The canary became the stable release.
    Succeeded,
    /// An operator aborted; all traffic is back on the stable release.
    Aborted,
    /// Analysis or the rollback policy judged the canary worse; all traffic is back on stable.
    RolledBack,
    /// The canary could not be started.
    Failed,
}

impl Phase {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Phase::Succeeded | Phase::Aborted | Phase::RolledBack | Phase::Failed
        )
    }

    /// The name stored beside the state and shown to users.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Paused { .. } => "Paused",
            Phase::Analyzing => "Analyzing",
            Phase::Succeeded => "Succeeded",
            Phase::Aborted => "Aborted",
            Phase::RolledBack => "RolledBack",
            Phase::Failed => "Failed",
        }
    }
}

/// Why a rollout is paused, and what resuming does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// A `pause` step; resuming (or its deadline) moves to the next step.
    Step,
    /// An operator paused; resuming re-enters the current step from its start.
    Operator,
    /// An analysis was inconclusive; resuming accepts it and moves to the next step.
    Inconclusive,
}

/// One rollout: replacing `stable` by `canary` through `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub stable: Release,
    pub canary: Release,
    pub steps: Vec<CanaryStep>,
    /// Analysis templates as they were when the rollout started.
    pub templates: BTreeMap<String, AnalysisTemplateSpec>,
    pub policy: Option<RollbackPolicy>,
    pub phase: Phase,
    /// Index of the current step; `steps.len()` once all ran.
    pub step: usize,
    /// Percentage of traffic on the canary.
    pub weight: u8,
    pub analysis: Option<AnalysisRun>,
    /// When the rollback policy is next checked, and how many breaches in a row it has seen.
    pub policy_next_at: Timestamp,
    pub policy_breaches: u32,
    pub last_policy_check: Option<PolicyCheck>,
    pub started_at: Timestamp,
    /// When the canary first took traffic.
    pub traffic_since: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Why the rollout ended (or is paused), in a sentence.
    pub reason: Option<String>,
}

/// Something that happened to a rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The canary's instances are healthy.
    CanaryStarted,
    /// The canary could not be started.
    CanaryFailed { error: String },
    /// Time passed: deadlines are checked.
    Tick,
    /// Metric `index` of the current analysis was measured.
    Measured {
        index: usize,
        outcome: Result<Observation, MeasureError>,
    },
    /// The rollback policy's windows were read.
    PolicyWindows {
        canary: WindowStats,
        stable: WindowStats,
    },
    /// An operator's command.
    Command { command: Command, actor: String },
}

/// What operators can ask of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Skip the current step (or, with `full`, every remaining one) and continue.
    Promote { full: bool },
    /// Send all traffic back to stable and stop the canary.
    Abort { reason: Option<String> },
    /// Hold where the rollout is, until resumed.
    Pause,
    /// Continue a paused rollout.
    Resume,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Promote { .. } => "promote",
            Command::Abort { .. } => "abort",
            Command::Pause => "pause",
            Command::Resume => "resume",
        }
    }
}

/// What the controller must do after a transition, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Route this percentage to the canary and the rest to stable.
    SetWeight(u8),
    /// Stop the canary's instances (after traffic left them).
    StopCanary,
    /// Stop the old stable release's instances (after promotion).
    StopStable,
    /// The canary is now the app's stable release.
    MakeCanaryStable,
    /// Append to the event log.
    Record {
        kind: EventKind,
        actor: String,
        reason: String,
        data: serde_json::Value,
    },
    /// Keep a measurement as evidence.
    RecordMeasurement(Measurement),
}

/// A command that does not apply to the rollout's phase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("the rollout has already ended ({phase}); `{command}` needs a rollout in progress")]
    Ended {
        phase: &'static str,
        command: &'static str,
    },
    #[error("the canary is still starting; `{command}` is possible once it takes traffic")]
    Starting { command: &'static str },
    #[error("the rollout is not paused ({phase}); only a paused rollout can be resumed")]
    NotPaused { phase: &'static str },
}

impl Rollout {
    /// A rollout that has just been created: the canary is about to start.
    pub fn new(
        stable: Release,
        canary: Release,
        steps: Vec<CanaryStep>,
        templates: BTreeMap<String, AnalysisTemplateSpec>,
        policy: Option<RollbackPolicy>,
        now: Timestamp,
    ) -> Self {
        Self {
            stable,
            canary,
            steps,
            templates,
            policy,
            phase: Phase::Pending,
            step: 0,
            weight: 0,
            analysis: None,
            policy_next_at: now,
            policy_breaches: 0,
            last_policy_check: None,
            started_at: now,
            traffic_since: None,
            finished_at: None,
            reason: None,
        }
    }

    /// Whether the rollback policy should be checked at `now`.
    pub fn policy_due(&self, now: Timestamp) -> bool {
        self.policy.is_some()
            && !self.phase.is_terminal()
            && self.phase != Phase::Pending
            && self.weight > 0
            && self.policy_next_at <= now
    }

    /// Indices of analysis metrics due at `now`.
    pub fn measurements_due(&self, now: Timestamp) -> Vec<usize> {
        match (&self.phase, &self.analysis) {
            (Phase::Analyzing, Some(run)) => run.due(now),
            _ => Vec::new(),
        }
    }
}

/// Applies `event` to `rollout` at `now`.
///
/// # Errors
/// An operator command that does not fit the phase; the rollout is then unchanged.
pub fn transition(
    mut r: Rollout,
    event: Event,
    now: Timestamp,
) -> Result<(Rollout, Vec<Action>), TransitionError> {
    let mut actions = Vec::new();
    if r.phase.is_terminal() {
        if let Event::Command { command, .. } = event {
            return Err(TransitionError::Ended {
                phase: r.phase.name(),
                command: command.name(),
            });
        }
        return Ok((r, actions));
    }
    match event {
        Event::CanaryStarted if r.phase == Phase::Pending => {
            record(
                &mut actions,
                EventKind::ReleaseStarted,
                "controller",
                format!("canary {} is healthy", r.canary.label()),
                serde_json::Value::Null,
            );
            advance(&mut r, &mut actions, now);
        }
        Event::CanaryFailed { error } if r.phase == Phase::Pending => {
            finish(
                &mut r,
                &mut actions,
                Phase::Failed,
                "controller",
                format!("canary could not be started: {error}"),
                now,
            );
        }
        Event::CanaryStarted | Event::CanaryFailed { .. } => {}
        Event::Tick => {
            if let Phase::Paused { until: Some(t), .. } = r.phase {
                if t <= now {
                    r.step += 1;
                    advance(&mut r, &mut actions, now);
                }
            }
        }
        Event::Measured { index, outcome } => measured(&mut r, &mut actions, index, outcome, now),
        Event::PolicyWindows { canary, stable } => {
            policy_checked(&mut r, &mut actions, &canary, &stable, now);
        }
        Event::Command { command, actor } => commanded(&mut r, &mut actions, command, &actor, now)?,
    }
    Ok((r, actions))
}

/// Runs steps from `r.step` until one waits, or promotes after the last.
fn advance(r: &mut Rollout, actions: &mut Vec<Action>, now: Timestamp) {
    r.analysis = None;
    while let Some(step) = r.steps.get(r.step).cloned() {
        match step {
            CanaryStep::SetWeight(w) => {
                set_weight(r, actions, w.get(), now);
                r.step += 1;
            }
            CanaryStep::Pause(p) => {
                let until = p.duration.map(|d| now.plus(d));
                r.phase = Phase::Paused {
                    reason: PauseReason::Step,
                    until,
                };
                let how = p.duration.map_or("until promoted".to_string(), |d| {
                    format!("for {}", switchyard_core::duration::format(d))
                });
                record(
                    actions,
                    EventKind::Paused,
                    "controller",
                    format!("step {}: pause {how}", r.step + 1),
                    serde_json::json!({"step": r.step}),
                );
                return;
            }
            CanaryStep::Analysis(a) => {
                let specs = a
                    .templates
                    .iter()
                    .filter_map(|t| r.templates.get(t.as_str()).map(|s| (t.as_str(), s)));
                r.analysis = Some(AnalysisRun::new(specs, now));
                r.phase = Phase::Analyzing;
                let names: Vec<&str> = a.templates.iter().map(|t| t.as_str()).collect();
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {}: analysis {}", r.step + 1, names.join(", ")),
                    serde_json::json!({"step": r.step, "templates": names}),
                );
                return;
            }
        }
    }
    promote(r, actions, "controller", "all steps completed".into(), now);
}

fn set_weight(r: &mut Rollout, actions: &mut Vec<Action>, weight: u8, now: Timestamp) {
    if weight > 0 && r.traffic_since.is_none() {
        r.traffic_since = Some(now);
        r.policy_next_at = r.policy.as_ref().map_or(now, |p| now.plus(p.interval));
    }
    if weight != r.weight {
        let from = r.weight;
        r.weight = weight;
        actions.push(Action::SetWeight(weight));
        record(
            actions,
            EventKind::WeightChanged,
            "controller",
            format!("canary weight {from}% -> {weight}%"),
            serde_json::json!({"from": from, "to": weight}),
        );
    }
}

fn promote(r: &mut Rollout, actions: &mut Vec<Action>, actor: &str, why: String, now: Timestamp) {
    set_weight(r, actions, 100, now);
    r.step = r.steps.len();
    actions.push(Action::MakeCanaryStable);
    actions.push(Action::StopStable);
    record(
        actions,
        EventKind::Promoted,
        actor,
        format!("{} promoted: {why}", r.canary.label()),
        serde_json::Value::Null,
    );
    r.analysis = None;
    r.phase = Phase::Succeeded;
    r.finished_at = Some(now);
    r.reason = Some(why);
}

/// Ends the rollout with all traffic on stable.
fn finish(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    phase: Phase,
    actor: &str,
    why: String,
    now: Timestamp,
) {
    let kind = match phase {
        Phase::Aborted => EventKind::Aborted,
        Phase::RolledBack => EventKind::RolledBack,
        _ => EventKind::Failed,
    };
    if r.weight > 0 {
        set_weight(r, actions, 0, now);
    }
    if phase != Phase::Failed {
        actions.push(Action::StopCanary);
    }
    let detected = r.traffic_since.map(|t| now.since(t).as_secs_f64());
    record(
        actions,
        kind,
        actor,
        why.clone(),
        serde_json::json!({"detected_after_s": detected}),
    );
    r.phase = phase;
    r.finished_at = Some(now);
    r.reason = Some(why);
}

fn measured(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    index: usize,
    outcome: Result<Observation, MeasureError>,
    now: Timestamp,
) {
    if r.phase != Phase::Analyzing {
        return;
    }
    let Some(run) = r.analysis.as_mut() else {
        return;
    };
    let Some(m) = run.record(index, outcome, now) else {
        return;
    };
    let status = run.status();
    actions.push(Action::RecordMeasurement(m.clone()));
    match status {
        RunStatus::Running => {}
        RunStatus::Successful => {
            record(
                actions,
                EventKind::Verdict,
                "analysis",
                format!("analysis of step {} passed", r.step + 1),
                serde_json::json!({"status": "successful"}),
            );
            r.step += 1;
            advance(r, actions, now);
        }
        RunStatus::Inconclusive => {
            let why = format!(
                "analysis of step {} was inconclusive: {}",
                r.step + 1,
                m.message
            );
            record(
                actions,
                EventKind::Verdict,
                "analysis",
                why.clone(),
                serde_json::json!({"status": "inconclusive"}),
            );
            r.phase = Phase::Paused {
                reason: PauseReason::Inconclusive,
                until: None,
            };
            r.reason = Some(why);
        }
        RunStatus::Failed | RunStatus::Error => {
            let why = format!(
                "analysis failed: metric `{}` of `{}`: {} (value {})",
                m.metric,
                m.template,
                m.message,
                m.value.as_deref().unwrap_or("none")
            );
            record(
                actions,
                EventKind::Verdict,
                "analysis",
                why.clone(),
                serde_json::json!({"status": status, "measurement": m}),
            );
            finish(r, actions, Phase::RolledBack, "analysis", why, now);
        }
    }
}

fn policy_checked(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    canary: &WindowStats,
    stable: &WindowStats,
    now: Timestamp,
) {
    let Some(policy) = r.policy.clone() else {
        return;
    };
    if !r.policy_due(now) {
        return;
    }
    let check = policy::check(&policy, canary, stable);
    r.policy_next_at = now.plus(policy.interval);
    match &check.verdict {
        PolicyVerdict::NotEnoughData { .. } => {}
        PolicyVerdict::Healthy => r.policy_breaches = 0,
        PolicyVerdict::Breach { reasons } => {
            r.policy_breaches += 1;
            let why = format!(
                "rollback policy: {} ({} of {} checks in a row)",
                reasons.join("; "),
                r.policy_breaches,
                policy.consecutive_failures
            );
            record(
                actions,
                EventKind::PolicyBreach,
                "policy",
                why.clone(),
                serde_json::to_value(&check).unwrap_or_default(),
            );
            if r.policy_breaches >= policy.consecutive_failures {
                r.last_policy_check = Some(check);
                finish(r, actions, Phase::RolledBack, "policy", why, now);
                return;
            }
        }
    }
    r.last_policy_check = Some(check);
}

fn commanded(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    command: Command,
    actor: &str,
    now: Timestamp,
) -> Result<(), TransitionError> {
    if r.phase == Phase::Pending && !matches!(command, Command::Abort { .. }) {
        return Err(TransitionError::Starting {
            command: command.name(),
        });
    }
    match command {
        Command::Promote { full: true } => {
            promote(r, actions, actor, format!("promoted by {actor}"), now);
        }
        Command::Promote { full: false } => {
            record(
                actions,
                EventKind::Resumed,
                actor,
                format!("step {} skipped by {actor}", r.step + 1),
                serde_json::json!({"step": r.step}),
            );
            r.step += 1;
            r.reason = None;
            advance(r, actions, now);
        }
        Command::Abort { reason } => {
            let why = reason.unwrap_or_else(|| format!("aborted by {actor}"));
            finish(r, actions, Phase::Aborted, actor, why, now);
        }
        Command::Pause => {
            r.phase = Phase::Paused {
                reason: PauseReason::Operator,
                until: None,
            };
            r.analysis = None;
            r.reason = Some(format!("paused by {actor}"));
            record(
                actions,
                EventKind::Paused,
                actor,
                format!("paused by {actor}"),
                serde_json::json!({"step": r.step}),
            );
        }
        Command::Resume => {
            let Phase::Paused { reason, .. } = r.phase else {
                return Err(TransitionError::NotPaused {
                    phase: r.phase.name(),
                });
            };
            record(
                actions,
                EventKind::Resumed,
                actor,
                format!("resumed by {actor}"),
                serde_json::json!({"step": r.step}),
            );
            r.reason = None;
            if reason != PauseReason::Operator {
                r.step += 1;
            }
            advance(r, actions, now);
        }
    }
    Ok(())
}

fn record(
    actions: &mut Vec<Action>,
    kind: EventKind,
    actor: &str,
    reason: String,
    data: serde_json::Value,
) {
    actions.push(Action::Record {
        kind,
        actor: actor.to_string(),
        reason,
        data,
    });
}

#[cfg(test)]
mod tests;
