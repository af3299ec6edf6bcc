//! Operator commands.

use switchyard_core::Timestamp;

use crate::plan::PlanStep;
use switchyard_core::manifest::app::CanaryStep;
use switchyard_core::ports::EventKind;

use super::steps::{advance, finish, override_interval, promote, set_weight};
use super::{
    Action, Approval, Command, Ending, PauseReason, Phase, Rollout, TransitionError, record,
};

pub(super) fn commanded(
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
    if let Phase::Scaling {
        then: super::AfterScaling::Finish { .. },
        ..
    } = r.phase
    {
        // Already ending; an abort (an emergency stop) asks for nothing more.
        return match command {
            Command::Abort { .. } => Ok(()),
            _ => Err(TransitionError::Ending),
        };
    }
    let at_gate = matches!(r.phase, Phase::AwaitingApproval { .. });
    match command {
        Command::Promote { .. } if at_gate => return Err(TransitionError::ApprovalRequired),
        Command::Promote { full: true } => {
            if let Some(gate) = r
                .steps
                .iter()
                .skip(r.step)
                .position(|s| matches!(s, PlanStep::Canary(CanaryStep::Approval(_))))
            {
                // Skip to the gate, which still needs its approval.
                record(
                    actions,
                    EventKind::Resumed,
                    actor,
                    format!("steps skipped by {actor} up to the approval gate"),
                    serde_json::json!({"step": r.step}),
                );
                r.step += gate;
                advance(r, actions, now);
            } else {
                promote(r, actions, actor, format!("promoted by {actor}"), now);
            }
        }
        Command::Promote { full: false } => {
            if matches!(r.phase, Phase::Promoting { .. }) {
                let why = format!("promotion window ended early by {actor}");
                r.phase = Phase::Promoting { until: now };
                r.reason = Some(why);
                super::steps::tick(r, actions, now);
                return Ok(());
            }
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
            finish(r, actions, Ending::Aborted, actor, why, now);
        }
        Command::Pause { duration } => {
            if matches!(r.phase, Phase::Promoting { .. }) {
                return Err(TransitionError::NotPaused { phase: "Promoting" });
            }
            if matches!(r.phase, Phase::Scaling { .. }) {
                return Err(TransitionError::Scaling);
            }
            let until = duration.map(|d| now.plus(d));
            r.phase = Phase::Paused {
                reason: PauseReason::Operator,
                until,
            };
            r.analysis = None;
            let how = duration.map_or(String::new(), |d| {
                format!(" for {}", switchyard_core::duration::format(d))
            });
            r.reason = Some(format!("paused by {actor}{how}"));
            record(
                actions,
                EventKind::Paused,
                actor,
                format!("paused by {actor}{how}"),
                serde_json::json!({"step": r.step}),
            );
        }
        Command::Resume { weight, interval } => resume(r, actions, weight, interval, actor, now)?,
        Command::Approve { reason } => {
            if !at_gate {
                return Err(TransitionError::NotAwaitingApproval {
                    phase: r.phase.name(),
                });
            }
            let required = matches!(r.steps.get(r.step), Some(PlanStep::Canary(CanaryStep::Approval(a))) if a.require_reason);
            let reason = reason.filter(|s| !s.trim().is_empty());
            if required && reason.is_none() {
                return Err(TransitionError::ReasonRequired);
            }
            let why = format!(
                "step {} approved by {actor}{}",
                r.step + 1,
                reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            record(
                actions,
                EventKind::Resumed,
                actor,
                why,
                serde_json::json!({"step": r.step, "reason": reason}),
            );
            r.approvals.push(Approval {
                step: r.step,
                actor: actor.to_string(),
                reason,
                at: now,
            });
            r.step += 1;
            advance(r, actions, now);
        }
    }
    Ok(())
}

fn resume(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    weight: Option<u8>,
    interval: Option<std::time::Duration>,
    actor: &str,
    now: Timestamp,
) -> Result<(), TransitionError> {
    let Phase::Paused { reason, .. } = r.phase else {
        return Err(TransitionError::NotPaused {
            phase: r.phase.name(),
        });
    };
    if let Some(w) = weight.filter(|w| *w > 100) {
        return Err(TransitionError::Weight(w));
    }
    if interval.is_some_and(|i| i.as_secs() < 1) {
        return Err(TransitionError::Interval);
    }
    let mut changes = Vec::new();
    if let Some(i) = interval {
        r.interval_override = Some(i);
        if let Some(bg) = r.background.as_mut() {
            override_interval(bg, Some(i), now);
        }
        changes.push(format!(
            "analysis interval {}",
            switchyard_core::duration::format(i)
        ));
    }
    if let Some(w) = weight {
        set_weight(r, actions, w, now);
        changes.push(format!("canary weight {w}%"));
    }
    let with = if changes.is_empty() {
        String::new()
    } else {
        format!(" with {}", changes.join(", "))
    };
    record(
        actions,
        EventKind::Resumed,
        actor,
        format!("resumed by {actor}{with}"),
        serde_json::json!({"step": r.step, "weight": weight, "interval_s": interval.map(|i| i.as_secs_f64())}),
    );
    r.reason = None;
    if reason != PauseReason::Operator {
        r.step += 1;
    }
    advance(r, actions, now);
    Ok(())
}
