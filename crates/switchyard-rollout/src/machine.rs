//! The state of one rollout and its pure transition function.
//!
//! `transition(rollout, event, now)` returns the next state and the actions the controller must
//! carry out (start or stop releases, change weights, record events). It does no IO and reads
//! no clock, so every path is tested directly. Waiting (a timed pause, an approval timeout, a
//! bake, the next measurement, the next policy check, the post-promotion window) is a timestamp
//! in the state.

mod commands;
mod scaling;
mod steps;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_analysis::judge::IntervalObservation;
use switchyard_analysis::{AnalysisRun, MeasureError, Measurement, Observation};
use switchyard_core::manifest::analysis::AnalysisTemplateSpec;
use switchyard_core::manifest::analysis::judge::Against;
use switchyard_core::manifest::app::{
    BackgroundAnalysis, RollbackPolicy, RouteMatch, Webhook, WebhookKind,
};
use switchyard_core::ports::EventKind;
use switchyard_core::{Release, ReleaseTotals, Timestamp, Version, WindowStats, Workload};

use crate::plan::{Plan, PlanStep, StrategyKind};
use crate::policy::PolicyCheck;

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
    /// Smoke tests run against the preview.
    SmokeTesting,
    /// Instances are being started or stopped (a rolling batch, `setCanaryScale`, the canary
    /// growing back before promotion, or the stable release restored before a rollback). The
    /// controller reports back with [`Event::Scaled`]; then the rollout goes on as `then` says.
    Scaling {
        target: ScaleTarget,
        then: AfterScaling,
    },
    /// A webhook gate (`confirm-rollout`, `pre-rollout`, `confirm-promotion`): its hooks are
    /// called at `next_at` until they all answer 2xx.
    AwaitingWebhook {
        kind: WebhookKind,
        next_at: Timestamp,
    },
    /// A bake step: holding at the current weight until `until` while its analysis measures.
    Baking { until: Timestamp },
    /// An approval step: waiting for `switchyard approve`, until `until` if it has a timeout.
    AwaitingApproval { until: Option<Timestamp> },
    /// The canary takes all traffic; the old stable release is still running and the rollback
    /// policy still checks until `until`, when the canary becomes stable.
    Promoting { until: Timestamp },
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
            Phase::SmokeTesting => "SmokeTesting",
            Phase::Scaling { .. } => "Scaling",
            Phase::AwaitingWebhook { .. } => "AwaitingWebhook",
            Phase::Baking { .. } => "Baking",
            Phase::AwaitingApproval { .. } => "AwaitingApproval",
            Phase::Promoting { .. } => "Promoting",
            Phase::Succeeded => "Succeeded",
            Phase::Aborted => "Aborted",
            Phase::RolledBack => "RolledBack",
            Phase::Failed => "Failed",
        }
    }

    /// The deadline this phase waits for, if any.
    pub fn deadline(&self) -> Option<Timestamp> {
        match self {
            Phase::Paused { until, .. } | Phase::AwaitingApproval { until } => *until,
            Phase::Baking { until } | Phase::Promoting { until } => Some(*until),
            _ => None,
        }
    }
}

/// Instance counts and the canary weight a [`Phase::Scaling`] brings the rollout to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleTarget {
    pub canary: u32,
    pub stable: u32,
    pub weight: u8,
}

/// What a rollout does once its instances are scaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "then", rename_all = "snake_case")]
pub enum AfterScaling {
    /// The step is done: run the next one.
    NextStep,
    /// The canary is back at full size: promote it.
    Promote { actor: String, why: String },
    /// The stable release is back at full size: end the rollout.
    Finish {
        outcome: Ending,
        actor: String,
        why: String,
    },
}

/// How a rollout that did not succeed ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ending {
    Aborted,
    RolledBack,
    Failed,
}

impl Ending {
    pub fn phase(self) -> Phase {
        match self {
            Ending::Aborted => Phase::Aborted,
            Ending::RolledBack => Phase::RolledBack,
            Ending::Failed => Phase::Failed,
        }
    }
}

/// How many instances each release runs during a rollout, when not its full size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<u32>,
}

/// Why a rollout is paused, and what resuming does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// A `pause` step; resuming (or its deadline) moves to the next step.
    Step,
    /// An operator paused; resuming (or its deadline) re-enters the current step from its start.
    Operator,
    /// An analysis was inconclusive; resuming accepts it and moves to the next step.
    Inconclusive,
}

/// Which analysis a measurement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunRef {
    /// The current step's analysis (an analysis or bake step).
    Step,
    /// The strategy's background analysis.
    Background,
}

/// An approval given at a gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub step: usize,
    pub actor: String,
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// One rollout: replacing `stable` by `canary` through `steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub stable: Release,
    pub canary: Release,
    /// A fresh copy of the stable release at the canary's size, started and removed with the
    /// rollout, for judges `against: baseline`; it takes as much traffic as the canary.
    #[serde(default)]
    pub baseline: Option<Release>,
    #[serde(default = "canary_kind")]
    pub kind: StrategyKind,
    pub steps: Vec<PlanStep>,
    /// Analysis templates as they were when the rollout started.
    pub templates: BTreeMap<String, AnalysisTemplateSpec>,
    pub policy: Option<RollbackPolicy>,
    #[serde(default)]
    pub background_spec: Option<BackgroundAnalysis>,
    /// How long the old stable keeps running after promotion.
    #[serde(default, with = "switchyard_core::duration::serde_secs_f64")]
    pub scale_down_delay: Duration,
    pub phase: Phase,
    /// Index of the current step; `steps.len()` once all ran.
    pub step: usize,
    /// Percentage of traffic on the canary.
    pub weight: u8,
    /// Instances running of each release, when not its full size (rolling, `setCanaryScale`).
    #[serde(default)]
    pub instances: InstanceCounts,
    /// The current step's analysis (analysis and bake steps).
    pub analysis: Option<AnalysisRun>,
    /// The background analysis, once its starting step is reached.
    #[serde(default)]
    pub background: Option<AnalysisRun>,
    /// Measurement interval set by `resume --interval`, replacing the templates' intervals.
    #[serde(default, with = "switchyard_core::duration::serde_opt_secs_f64")]
    pub interval_override: Option<Duration>,
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// Requests matching all of these go to the canary whatever the weight (`setHeaderRoute`).
    #[serde(default)]
    pub header_route: Vec<RouteMatch>,
    /// Percentage of requests copied to the canary (`setMirror`).
    #[serde(default)]
    pub mirror: u8,
    /// Whether the preview listener routes to the canary (blue-green).
    #[serde(default)]
    pub preview: bool,
    /// The app's webhooks as they were when the rollout started.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
    /// Whether the `confirm-promotion` hooks have answered 2xx.
    #[serde(default)]
    pub promotion_confirmed: bool,
    /// When the `rollback` hooks are next polled.
    #[serde(default = "epoch")]
    pub rollback_hooks_next_at: Timestamp,
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
    /// Metric `index` of an analysis was measured.
    Measured {
        run: RunRef,
        index: usize,
        outcome: Result<Observation, MeasureError>,
    },
    /// Metric `index` (a judge) was given the traffic of both releases since its last look.
    Judged {
        run: RunRef,
        index: usize,
        interval: Box<IntervalObservation>,
        /// The data plane's totals of canary and baseline at this look.
        totals: Box<[ReleaseTotals; 2]>,
    },
    /// The hooks of a kind were called: `Err` says which did not answer 2xx and why.
    WebhookResult {
        kind: WebhookKind,
        result: Result<(), String>,
    },
    /// The smoke tests ran: `Err` says which failed and why.
    SmokeTested { result: Result<(), String> },
    /// The instances of a [`Phase::Scaling`] were started or stopped: `Err` says what failed.
    Scaled { result: Result<(), String> },
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
    /// Skip the current step (or, with `full`, every remaining one) and continue. Approval
    /// gates are not skipped: they need `approve`.
    Promote { full: bool },
    /// Send all traffic back to stable and stop the canary.
    Abort { reason: Option<String> },
    /// Hold where the rollout is, until resumed or for `duration`.
    Pause {
        #[serde(default, with = "switchyard_core::duration::serde_humantime_opt")]
        duration: Option<Duration>,
    },
    /// Continue a paused rollout, optionally with a new canary weight or analysis interval.
    Resume {
        #[serde(default)]
        weight: Option<u8>,
        #[serde(default, with = "switchyard_core::duration::serde_humantime_opt")]
        interval: Option<Duration>,
    },
    /// Open an approval gate.
    Approve { reason: Option<String> },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Promote { .. } => "promote",
            Command::Abort { .. } => "abort",
            Command::Pause { .. } => "pause",
            Command::Resume { .. } => "resume",
            Command::Approve { .. } => "approve",
        }
    }
}

/// What the controller must do after a transition, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Route this percentage to the canary and the rest to stable.
    SetWeight(u8),
    /// The header route or the mirror changed: routes are rebuilt from the state.
    Reroute,
    /// Stop the canary's instances (after traffic left them).
    StopCanary,
    /// Stop the old stable release's instances (after promotion).
    StopStable,
    /// Stop the dedicated baseline release (the rollout ended).
    StopBaseline,
    /// Call the `post-rollout` hooks (the rollout ended); their answers change nothing.
    PostRollout,
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
    #[error(
        "the rollout waits at an approval gate; open it with `switchyard approve APP --reason ...`"
    )]
    ApprovalRequired,
    #[error("the rollout is not at an approval gate ({phase})")]
    NotAwaitingApproval { phase: &'static str },
    #[error("this approval gate requires a reason")]
    ReasonRequired,
    #[error("weight {0} is outside 0..=100")]
    Weight(u8),
    #[error("the analysis interval must be at least one second")]
    Interval,
    #[error("the rollout is ending: the stable release's instances are being restored")]
    Ending,
    #[error("instances are being started or stopped; pause once this step is done")]
    Scaling,
}

impl Rollout {
    /// A rollout that has just been created: the canary is about to start.
    pub fn new(
        stable: Release,
        canary: Release,
        plan: Plan,
        templates: BTreeMap<String, AnalysisTemplateSpec>,
        policy: Option<RollbackPolicy>,
        now: Timestamp,
    ) -> Self {
        let baseline = needs_baseline(&plan, &templates)
            .then(|| baseline_of(&stable, &canary))
            .flatten();
        Self {
            stable,
            canary,
            baseline,
            kind: plan.kind,
            steps: plan.steps,
            templates,
            policy,
            background_spec: plan.background,
            scale_down_delay: plan.scale_down_delay,
            phase: Phase::Pending,
            step: 0,
            weight: 0,
            instances: InstanceCounts {
                canary: (plan.kind == StrategyKind::Rolling).then_some(0),
                stable: None,
            },
            analysis: None,
            background: None,
            interval_override: None,
            approvals: Vec::new(),
            header_route: Vec::new(),
            mirror: 0,
            preview: false,
            webhooks: Vec::new(),
            promotion_confirmed: false,
            rollback_hooks_next_at: now,
            policy_next_at: now,
            policy_breaches: 0,
            last_policy_check: None,
            started_at: now,
            traffic_since: None,
            finished_at: None,
            reason: None,
        }
    }

    /// Attaches the app's webhooks.
    #[must_use]
    pub fn with_webhooks(mut self, webhooks: Vec<Webhook>) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// The hooks of `kind`.
    pub fn hooks(&self, kind: WebhookKind) -> impl Iterator<Item = &Webhook> {
        self.webhooks.iter().filter(move |h| h.kind == kind)
    }

    /// The kinds of hooks to call at `now`: the gate the rollout waits at, and the `rollback`
    /// hooks while the canary may take traffic.
    pub fn webhooks_due(&self, now: Timestamp) -> Vec<WebhookKind> {
        let mut due = Vec::new();
        if let Phase::AwaitingWebhook { kind, next_at } = self.phase {
            if next_at <= now {
                due.push(kind);
            }
        }
        let running = !self.phase.is_terminal() && self.phase != Phase::Pending;
        if running
            && self.rollback_hooks_next_at <= now
            && self.hooks(WebhookKind::Rollback).next().is_some()
        {
            due.push(WebhookKind::Rollback);
        }
        due
    }

    /// Whether the rollback policy should be checked at `now`.
    pub fn policy_due(&self, now: Timestamp) -> bool {
        self.policy.is_some()
            && !self.phase.is_terminal()
            && self.phase != Phase::Pending
            && self.weight > 0
            && self.policy_next_at <= now
    }

    /// Analysis metrics due at `now`.
    pub fn measurements_due(&self, now: Timestamp) -> Vec<(RunRef, usize)> {
        let mut due = Vec::new();
        if matches!(self.phase, Phase::Analyzing | Phase::Baking { .. }) {
            if let Some(run) = &self.analysis {
                due.extend(run.due(now).into_iter().map(|i| (RunRef::Step, i)));
            }
        }
        if !self.phase.is_terminal() && !matches!(self.phase, Phase::Paused { .. }) {
            if let Some(run) = &self.background {
                due.extend(run.due(now).into_iter().map(|i| (RunRef::Background, i)));
            }
        }
        due
    }

    /// The analysis a measurement belongs to.
    pub fn run(&self, which: RunRef) -> Option<&AnalysisRun> {
        match which {
            RunRef::Step => self.analysis.as_ref(),
            RunRef::Background => self.background.as_ref(),
        }
    }

    /// How many instances the canary runs now.
    pub fn canary_instances(&self) -> u32 {
        self.instances
            .canary
            .unwrap_or_else(|| self.canary.instances())
    }

    /// How many instances the stable release runs now.
    pub fn stable_instances(&self) -> u32 {
        self.instances
            .stable
            .unwrap_or_else(|| self.stable.instances())
    }

    /// The canary at the size it runs now.
    pub fn canary_now(&self) -> Release {
        self.canary.at_scale(self.canary_instances())
    }

    /// The stable release at the size it runs now.
    pub fn stable_now(&self) -> Release {
        self.stable.at_scale(self.stable_instances())
    }

    /// How long the canary holds all traffic with the old stable still running.
    pub fn promotion_window(&self) -> Duration {
        let bake = self.policy.as_ref().map_or(Duration::ZERO, |p| p.bake_time);
        self.scale_down_delay.max(bake)
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
            let why = format!("canary {} is healthy", r.canary.label());
            record(
                &mut actions,
                EventKind::ReleaseStarted,
                "controller",
                why,
                serde_json::Value::Null,
            );
            steps::begin(&mut r, &mut actions, now);
        }
        Event::CanaryFailed { error } if r.phase == Phase::Pending => {
            let why = format!("canary could not be started: {error}");
            steps::finish(&mut r, &mut actions, Ending::Failed, "controller", why, now);
        }
        Event::CanaryStarted | Event::CanaryFailed { .. } => {}
        Event::Tick => steps::tick(&mut r, &mut actions, now),
        Event::Measured {
            run,
            index,
            outcome,
        } => {
            let outcome = steps::Outcome::Measured(outcome);
            steps::measured(&mut r, &mut actions, run, index, outcome, now);
        }
        Event::Judged {
            run,
            index,
            interval,
            totals,
        } => {
            let outcome = steps::Outcome::Judged(interval, totals);
            steps::measured(&mut r, &mut actions, run, index, outcome, now);
        }
        Event::SmokeTested { result } => steps::smoke_tested(&mut r, &mut actions, result, now),
        Event::Scaled { result } => steps::scaled(&mut r, &mut actions, result, now),
        Event::WebhookResult { kind, result } => {
            steps::webhook_result(&mut r, &mut actions, kind, result, now);
        }
        Event::PolicyWindows { canary, stable } => {
            steps::policy_checked(&mut r, &mut actions, &canary, &stable, now);
        }
        Event::Command { command, actor } => {
            commands::commanded(&mut r, &mut actions, command, &actor, now)?;
        }
    }
    Ok((r, actions))
}

/// Whether a judge of the plan compares against a dedicated baseline release.
fn needs_baseline(plan: &Plan, templates: &BTreeMap<String, AnalysisTemplateSpec>) -> bool {
    plan.template_names()
        .iter()
        .filter_map(|name| templates.get(name.as_str()))
        .any(|t| {
            t.metrics.iter().any(|m| {
                m.judge
                    .as_ref()
                    .is_some_and(|j| j.against == Against::Baseline)
            })
        })
}

/// The stable release again under its own version label, with as many instances as the canary.
/// Static releases cannot be copied: their judges compare against stable instead.
fn baseline_of(stable: &Release, canary: &Release) -> Option<Release> {
    let version = Version::new(format!("{}-baseline", stable.version)).ok()?;
    let workload = match (&stable.workload, &canary.workload) {
        (
            Workload::Process {
                argv,
                env,
                working_dir,
                start_timeout,
                stop_timeout,
                ..
            },
            Workload::Process { instances, .. },
        ) => Workload::Process {
            argv: argv.clone(),
            env: env.clone(),
            working_dir: working_dir.clone(),
            instances: *instances,
            start_timeout: *start_timeout,
            stop_timeout: *stop_timeout,
        },
        _ => return None,
    };
    Some(Release {
        version,
        workload,
        ..stable.clone()
    })
}

fn epoch() -> Timestamp {
    Timestamp::EPOCH
}

fn canary_kind() -> StrategyKind {
    StrategyKind::Canary
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
