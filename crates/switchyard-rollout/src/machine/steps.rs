//! Running steps: advancing through the plan, deadlines, measurements, policy checks, and the
//! two ways a rollout ends (promotion, or all traffic back to stable).

use switchyard_analysis::judge::IntervalObservation;
use switchyard_analysis::{AnalysisRun, MeasureError, Observation, RunStatus};
use switchyard_core::manifest::analysis::AnalysisTemplateSpec;
use switchyard_core::manifest::app::{ApprovalTimeout, CanaryStep, WebhookKind};
use switchyard_core::ports::EventKind;
use switchyard_core::{ReleaseTotals, Timestamp, WindowStats};

use super::scaling::begin_scaling;
pub(super) use super::scaling::scaled;
use super::{
    Action, AfterScaling, Ending, PauseReason, Phase, Rollout, RunRef, ScaleTarget, record,
};
use crate::plan::{Batch, PlanStep};
use crate::policy::{self, PolicyVerdict};

/// The template name an adaptive step's looks are recorded under.
const ADAPTIVE_TEMPLATE: &str = "adaptive";

/// Polling interval of webhook gates and `rollback` hooks.
pub(super) const WEBHOOK_POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The canary is healthy: pass the `confirm-rollout` and `pre-rollout` gates, then run steps.
pub(super) fn begin(r: &mut Rollout, actions: &mut Vec<Action>, now: Timestamp) {
    for kind in [WebhookKind::ConfirmRollout, WebhookKind::PreRollout] {
        if r.hooks(kind).next().is_some() {
            r.phase = Phase::AwaitingWebhook { kind, next_at: now };
            record(
                actions,
                EventKind::StepStarted,
                "controller",
                format!("waiting for the {} webhooks", kind.as_str()),
                serde_json::Value::Null,
            );
            return;
        }
    }
    advance(r, actions, now);
}

/// The answers of the hooks of `kind`.
pub(super) fn webhook_result(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    kind: WebhookKind,
    result: Result<(), String>,
    now: Timestamp,
) {
    if kind == WebhookKind::Rollback {
        r.rollback_hooks_next_at = now.plus(WEBHOOK_POLL);
        if result.is_ok() && !r.phase.is_terminal() {
            finish(
                r,
                actions,
                Ending::RolledBack,
                "webhook",
                "a rollback webhook asked to roll back".into(),
                now,
            );
        }
        return;
    }
    if !matches!(r.phase, Phase::AwaitingWebhook { kind: k, .. } if k == kind) {
        return;
    }
    match (kind, result) {
        (WebhookKind::PreRollout, Err(why)) => {
            finish(
                r,
                actions,
                Ending::RolledBack,
                "webhook",
                format!("pre-rollout webhook failed: {why}"),
                now,
            );
        }
        (_, Err(why)) => {
            // A confirmation gate keeps asking; the first refusal is recorded, not every poll.
            if r.reason.as_deref() != Some(why.as_str()) {
                record(
                    actions,
                    EventKind::Paused,
                    "webhook",
                    format!("{} gate closed: {why}", kind.as_str()),
                    serde_json::Value::Null,
                );
                r.reason = Some(why);
            }
            r.phase = Phase::AwaitingWebhook {
                kind,
                next_at: now.plus(WEBHOOK_POLL),
            };
        }
        (WebhookKind::ConfirmRollout, Ok(())) => {
            r.reason = None;
            record(
                actions,
                EventKind::Resumed,
                "webhook",
                "confirm-rollout gate opened".into(),
                serde_json::Value::Null,
            );
            if r.hooks(WebhookKind::PreRollout).next().is_some() {
                r.phase = Phase::AwaitingWebhook {
                    kind: WebhookKind::PreRollout,
                    next_at: now,
                };
            } else {
                advance(r, actions, now);
            }
        }
        (WebhookKind::ConfirmPromotion, Ok(())) => {
            r.reason = None;
            r.promotion_confirmed = true;
            record(
                actions,
                EventKind::Resumed,
                "webhook",
                "confirm-promotion gate opened".into(),
                serde_json::Value::Null,
            );
            promote(r, actions, "webhook", "all steps completed".into(), now);
        }
        (_, Ok(())) => advance(r, actions, now),
    }
}

/// What a measurement brought.
pub(super) enum Outcome {
    /// A provider's value (or why there is none), judged by the metric's conditions.
    Measured(Result<Observation, MeasureError>),
    /// One interval of both releases for a judge metric, and the totals it was taken from.
    Judged(Box<IntervalObservation>, Box<[ReleaseTotals; 2]>),
}

/// Runs steps from `r.step` until one waits, or promotes after the last.
pub(super) fn advance(r: &mut Rollout, actions: &mut Vec<Action>, now: Timestamp) {
    r.analysis = None;
    while let Some(step) = r.steps.get(r.step).cloned() {
        start_background(r, actions, now);
        let n = r.step + 1;
        let step = match step {
            PlanStep::Canary(step) => step,
            PlanStep::Preview => {
                r.preview = true;
                actions.push(Action::Reroute);
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: preview listener routes to {}", r.canary.version),
                    serde_json::json!({"step": r.step}),
                );
                r.step += 1;
                continue;
            }
            PlanStep::Batch(Batch { canary, stable }) => {
                let total = canary + stable;
                let weight = if total == 0 {
                    r.weight
                } else {
                    u8::try_from(
                        (u64::from(canary) * 100 + u64::from(total) / 2) / u64::from(total),
                    )
                    .unwrap_or(100)
                };
                let target = ScaleTarget {
                    canary,
                    stable,
                    weight,
                };
                let why = format!(
                    "step {n}: batch to {canary} instance(s) of {} and {stable} of {}",
                    r.canary.version, r.stable.version
                );
                begin_scaling(r, actions, target, AfterScaling::NextStep, why);
                return;
            }
            PlanStep::SmokeTests(tests) => {
                r.phase = Phase::SmokeTesting;
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!(
                        "step {n}: {} smoke test(s) against the preview",
                        tests.len()
                    ),
                    serde_json::json!({"step": r.step}),
                );
                return;
            }
        };
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
                let how = p
                    .duration
                    .map_or("until promoted".to_string(), |d| format!("for {}", fmt(d)));
                record(
                    actions,
                    EventKind::Paused,
                    "controller",
                    format!("step {n}: pause {how}"),
                    serde_json::json!({"step": r.step}),
                );
                return;
            }
            CanaryStep::Analysis(a) => {
                start_step_analysis(r, a.templates.iter().map(|t| t.as_str()), now);
                r.phase = Phase::Analyzing;
                let names: Vec<&str> = a.templates.iter().map(|t| t.as_str()).collect();
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: analysis {}", names.join(", ")),
                    serde_json::json!({"step": r.step, "templates": names}),
                );
                return;
            }
            CanaryStep::Bake(b) => {
                start_step_analysis(r, b.templates.iter().map(|t| t.as_str()), now);
                r.phase = Phase::Baking {
                    until: now.plus(b.duration),
                };
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: bake {} at {}%", fmt(b.duration), r.weight),
                    serde_json::json!({"step": r.step}),
                );
                return;
            }
            CanaryStep::SetHeaderRoute(h) => {
                let what = if h.matches.is_empty() {
                    "removed".to_string()
                } else {
                    format!(
                        "{} condition(s) pin requests to the canary",
                        h.matches.len()
                    )
                };
                r.header_route = h.matches;
                actions.push(Action::Reroute);
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: header route {what}"),
                    serde_json::json!({"step": r.step}),
                );
                r.step += 1;
            }
            CanaryStep::SetMirror(m) => {
                r.mirror = m.percent.get();
                actions.push(Action::Reroute);
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: mirror {}% of requests to the canary", r.mirror),
                    serde_json::json!({"step": r.step}),
                );
                r.step += 1;
            }
            CanaryStep::SetCanaryScale(scale) => {
                let target = ScaleTarget {
                    canary: scale.instances(r.canary.instances()),
                    stable: r.stable_instances(),
                    weight: r.weight,
                };
                let why = format!("step {n}: canary scaled to {} ({scale})", target.canary);
                begin_scaling(r, actions, target, AfterScaling::NextStep, why);
                return;
            }
            CanaryStep::Adaptive(a) => {
                r.analysis = step_run(
                    r.interval_override,
                    [(ADAPTIVE_TEMPLATE, &a.template())],
                    now,
                );
                r.phase = Phase::Analyzing;
                set_weight(r, actions, a.min_weight.get(), now);
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!(
                        "step {n}: adaptive canary from {}% up to {}%, error budget {} failed requests",
                        a.min_weight.get(),
                        a.max_weight.get(),
                        switchyard_core::human::number(&a.error_budget.to_string())
                    ),
                    serde_json::json!({"step": r.step}),
                );
                return;
            }
            CanaryStep::Approval(a) => {
                r.phase = Phase::AwaitingApproval {
                    until: a.timeout.map(|t| now.plus(t)),
                };
                let how = a
                    .timeout
                    .map_or(String::new(), |t| format!(" (times out in {})", fmt(t)));
                record(
                    actions,
                    EventKind::StepStarted,
                    "controller",
                    format!("step {n}: waiting for approval{how}"),
                    serde_json::json!({"step": r.step, "awaiting": "approval"}),
                );
                return;
            }
        }
    }
    promote(r, actions, "controller", "all steps completed".into(), now);
}

fn fmt(d: std::time::Duration) -> String {
    switchyard_core::duration::format(d)
}

fn start_step_analysis<'a>(r: &mut Rollout, names: impl Iterator<Item = &'a str>, now: Timestamp) {
    let specs = names
        .filter_map(|t| r.templates.get_key_value(t))
        .map(|(k, v)| (k.as_str(), v));
    r.analysis = step_run(r.interval_override, specs, now);
}

/// A step's analysis of `templates` (none when they have no metric), at the operator's interval
/// if one was set.
fn step_run<'a>(
    interval: Option<std::time::Duration>,
    templates: impl IntoIterator<Item = (&'a str, &'a AnalysisTemplateSpec)>,
    now: Timestamp,
) -> Option<AnalysisRun> {
    let mut run = AnalysisRun::new(templates, now);
    override_interval(&mut run, interval, now);
    (!run.metrics.is_empty()).then_some(run)
}

/// Starts the background analysis once its starting step is reached.
fn start_background(r: &mut Rollout, actions: &mut Vec<Action>, now: Timestamp) {
    let Some(spec) = &r.background_spec else {
        return;
    };
    if r.background.is_some() || r.step < spec.starting_step {
        return;
    }
    let specs: Vec<_> = spec
        .templates
        .iter()
        .filter_map(|t| r.templates.get_key_value(t.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut run = AnalysisRun::new(specs, now);
    override_interval(&mut run, r.interval_override, now);
    let names: Vec<&str> = spec.templates.iter().map(|t| t.as_str()).collect();
    record(
        actions,
        EventKind::StepStarted,
        "controller",
        format!("background analysis {} started", names.join(", ")),
        serde_json::json!({"templates": names}),
    );
    r.background = Some(run);
}

/// Applies an operator's interval to every running metric of `run`.
pub(super) fn override_interval(
    run: &mut AnalysisRun,
    interval: Option<std::time::Duration>,
    now: Timestamp,
) {
    let Some(interval) = interval else { return };
    for m in &mut run.metrics {
        m.spec.interval = Some(interval);
        m.next_at = m.next_at.min(now.plus(interval));
    }
}

pub(super) fn set_weight(r: &mut Rollout, actions: &mut Vec<Action>, weight: u8, now: Timestamp) {
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

/// All traffic to the canary; the old stable is stopped now, or after the promotion window.
pub(super) fn promote(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    actor: &str,
    why: String,
    now: Timestamp,
) {
    if !r.promotion_confirmed && r.hooks(WebhookKind::ConfirmPromotion).next().is_some() {
        r.step = r.steps.len();
        r.analysis = None;
        r.phase = Phase::AwaitingWebhook {
            kind: WebhookKind::ConfirmPromotion,
            next_at: now,
        };
        record(
            actions,
            EventKind::StepStarted,
            actor,
            format!("promotion ({why}) waits for the confirm-promotion webhooks"),
            serde_json::Value::Null,
        );
        return;
    }
    if r.canary_instances() < r.canary.instances() {
        r.step = r.steps.len();
        r.analysis = None;
        let target = ScaleTarget {
            canary: r.canary.instances(),
            stable: r.stable_instances(),
            weight: r.weight,
        };
        let what = format!(
            "{} scales back to {} instance(s) before promotion ({why})",
            r.canary.label(),
            target.canary
        );
        let then = AfterScaling::Promote {
            actor: actor.to_string(),
            why,
        };
        begin_scaling(r, actions, target, then, what);
        return;
    }
    clear_routes(r, actions);
    set_weight(r, actions, 100, now);
    r.step = r.steps.len();
    r.analysis = None;
    let window = r.promotion_window();
    if window.is_zero() {
        succeed(r, actions, actor, why, now);
        return;
    }
    r.phase = Phase::Promoting {
        until: now.plus(window),
    };
    r.reason = Some(why.clone());
    record(
        actions,
        EventKind::StepStarted,
        actor,
        format!(
            "{} takes all traffic ({why}); {} stays warm for {}",
            r.canary.label(),
            r.stable.version,
            fmt(window)
        ),
        serde_json::Value::Null,
    );
}

fn succeed(r: &mut Rollout, actions: &mut Vec<Action>, actor: &str, why: String, now: Timestamp) {
    actions.push(Action::MakeCanaryStable);
    actions.push(Action::StopStable);
    actions.push(Action::PostRollout);
    if r.baseline.is_some() {
        actions.push(Action::StopBaseline);
    }
    record(
        actions,
        EventKind::Promoted,
        actor,
        format!("{} promoted: {why}", r.canary.label()),
        serde_json::Value::Null,
    );
    r.background = None;
    r.phase = Phase::Succeeded;
    r.finished_at = Some(now);
    r.reason = Some(why);
}

/// Removes the header route, the mirror and the preview: weights alone decide again.
fn clear_routes(r: &mut Rollout, actions: &mut Vec<Action>) {
    if !r.header_route.is_empty() || r.mirror > 0 || r.preview {
        r.header_route.clear();
        r.mirror = 0;
        r.preview = false;
        actions.push(Action::Reroute);
    }
}

/// The outcome of the smoke tests.
pub(super) fn smoke_tested(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    result: Result<(), String>,
    now: Timestamp,
) {
    if r.phase != Phase::SmokeTesting {
        return;
    }
    match result {
        Ok(()) => {
            record(
                actions,
                EventKind::Verdict,
                "controller",
                format!("smoke tests of step {} passed", r.step + 1),
                serde_json::json!({"step": r.step}),
            );
            r.step += 1;
            advance(r, actions, now);
        }
        Err(why) => {
            let why = format!("smoke test failed: {why}");
            finish(r, actions, Ending::RolledBack, "controller", why, now);
        }
    }
}

/// Ends the rollout with all traffic on stable: at once, or once the stable release is back at
/// full size when a rolling update had stopped some of its instances.
pub(super) fn finish(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    outcome: Ending,
    actor: &str,
    why: String,
    now: Timestamp,
) {
    if let Phase::Scaling {
        then: AfterScaling::Finish { .. },
        ..
    } = r.phase
    {
        return;
    }
    // While a batch is being scaled some old instances may already be gone.
    let stable_now = match &r.phase {
        Phase::Scaling { target, .. } => r.stable_instances().min(target.stable),
        _ => r.stable_instances(),
    };
    if stable_now < r.stable.instances() {
        r.analysis = None;
        let target = ScaleTarget {
            canary: r.canary_instances(),
            stable: r.stable.instances(),
            weight: r.weight,
        };
        let what = format!(
            "{} is restored to {} instance(s) before the rollout ends: {why}",
            r.stable.label(),
            target.stable
        );
        let then = AfterScaling::Finish {
            outcome,
            actor: actor.to_string(),
            why,
        };
        begin_scaling(r, actions, target, then, what);
        return;
    }
    end(r, actions, outcome, actor, why, now);
}

pub(super) fn end(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    outcome: Ending,
    actor: &str,
    why: String,
    now: Timestamp,
) {
    let kind = match outcome {
        Ending::Aborted => EventKind::Aborted,
        Ending::RolledBack => EventKind::RolledBack,
        Ending::Failed => EventKind::Failed,
    };
    clear_routes(r, actions);
    if r.weight > 0 {
        set_weight(r, actions, 0, now);
    }
    // A failed canary never started: there is nothing to stop.
    if outcome != Ending::Failed {
        actions.push(Action::StopCanary);
    }
    actions.push(Action::PostRollout);
    if r.baseline.is_some() {
        actions.push(Action::StopBaseline);
    }
    let detected = r.traffic_since.map(|t| now.since(t).as_secs_f64());
    record(
        actions,
        kind,
        actor,
        why.clone(),
        serde_json::json!({"detected_after_s": detected}),
    );
    r.analysis = None;
    r.background = None;
    r.phase = outcome.phase();
    r.finished_at = Some(now);
    r.reason = Some(why);
}

/// Deadlines: timed pauses, approval timeouts, bakes, the end of the promotion window.
pub(super) fn tick(r: &mut Rollout, actions: &mut Vec<Action>, now: Timestamp) {
    let Some(deadline) = r.phase.deadline() else {
        return;
    };
    if deadline > now {
        return;
    }
    match r.phase.clone() {
        Phase::Paused {
            reason: PauseReason::Operator,
            ..
        } => {
            record(
                actions,
                EventKind::Resumed,
                "controller",
                "timed pause over".into(),
                serde_json::json!({"step": r.step}),
            );
            advance(r, actions, now);
        }
        Phase::Paused { .. } => {
            r.step += 1;
            advance(r, actions, now);
        }
        Phase::AwaitingApproval { .. } => {
            let on_timeout = match r.steps.get(r.step) {
                Some(PlanStep::Canary(CanaryStep::Approval(a))) => a.on_timeout,
                _ => ApprovalTimeout::Abort,
            };
            match on_timeout {
                ApprovalTimeout::Approve => {
                    record(
                        actions,
                        EventKind::Resumed,
                        "controller",
                        format!("approval of step {} timed out: approved", r.step + 1),
                        serde_json::json!({"step": r.step}),
                    );
                    r.step += 1;
                    advance(r, actions, now);
                }
                ApprovalTimeout::Abort => {
                    let why = format!("approval of step {} timed out", r.step + 1);
                    finish(r, actions, Ending::Aborted, "controller", why, now);
                }
            }
        }
        Phase::Baking { .. } => {
            record(
                actions,
                EventKind::Verdict,
                "controller",
                format!("bake of step {} completed", r.step + 1),
                serde_json::json!({"step": r.step}),
            );
            r.step += 1;
            advance(r, actions, now);
        }
        Phase::Promoting { .. } => {
            let why = r
                .reason
                .clone()
                .unwrap_or_else(|| "promotion window over".into());
            succeed(r, actions, "controller", why, now);
        }
        _ => {}
    }
}

pub(super) fn measured(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    which: RunRef,
    index: usize,
    outcome: Outcome,
    now: Timestamp,
) {
    let run = match which {
        RunRef::Step if matches!(r.phase, Phase::Analyzing | Phase::Baking { .. }) => {
            r.analysis.as_mut()
        }
        RunRef::Background if !matches!(r.phase, Phase::Paused { .. }) => r.background.as_mut(),
        _ => None,
    };
    let Some(run) = run else { return };
    let recorded = match outcome {
        Outcome::Measured(result) => run.record(index, result, now),
        Outcome::Judged(interval, totals) => run.record_judge(index, &interval, *totals, now),
    };
    let Some(m) = recorded else {
        return;
    };
    let status = run.status();
    let chosen = run
        .metrics
        .get(index)
        .and_then(|metric| metric.judge.as_ref())
        .and_then(|judge| judge.weight());
    actions.push(Action::RecordMeasurement(m.clone()));
    // An adaptive step's judge chose the weight of the next interval.
    if let (RunRef::Step, RunStatus::Running, Phase::Analyzing, Some(weight)) =
        (which, status, &r.phase, chosen)
    {
        set_weight(r, actions, weight, now);
    }
    let what = match which {
        RunRef::Step => format!("analysis of step {}", r.step + 1),
        RunRef::Background => "background analysis".to_string(),
    };
    match status {
        RunStatus::Running => {}
        RunStatus::Successful => {
            // A bake step waits for its deadline; background analysis just stops measuring.
            if which == RunRef::Step && r.phase == Phase::Analyzing {
                record(
                    actions,
                    EventKind::Verdict,
                    "analysis",
                    format!("{what} passed"),
                    serde_json::json!({"status": "successful"}),
                );
                r.step += 1;
                advance(r, actions, now);
            }
        }
        RunStatus::Inconclusive => {
            let why = format!("{what} was inconclusive: {}", m.message);
            record(
                actions,
                EventKind::Verdict,
                "analysis",
                why.clone(),
                serde_json::json!({"status": "inconclusive"}),
            );
            if matches!(r.phase, Phase::Promoting { .. }) {
                return;
            }
            r.phase = Phase::Paused {
                reason: PauseReason::Inconclusive,
                until: None,
            };
            r.reason = Some(why);
        }
        RunStatus::Failed | RunStatus::Error => {
            let why = format!(
                "{what} failed: metric `{}` of `{}`: {} (value {})",
                m.metric,
                m.template,
                m.message,
                m.value
                    .as_deref()
                    .map_or_else(|| "none".to_owned(), switchyard_core::human::number)
            );
            record(
                actions,
                EventKind::Verdict,
                "analysis",
                why.clone(),
                serde_json::json!({"status": status, "measurement": m}),
            );
            finish(r, actions, Ending::RolledBack, "analysis", why, now);
        }
    }
}

pub(super) fn policy_checked(
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
                finish(r, actions, Ending::RolledBack, "policy", why, now);
                return;
            }
        }
    }
    r.last_policy_check = Some(check);
}
