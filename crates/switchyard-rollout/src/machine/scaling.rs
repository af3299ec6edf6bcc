//! Waiting for instances: entering [`Phase::Scaling`] and what the controller's report of the
//! scaling does (the next step, the promotion or the end it was waiting for, or a rollback).

use switchyard_core::Timestamp;
use switchyard_core::ports::EventKind;

use super::steps::{advance, end, finish, promote, set_weight};
use super::{Action, AfterScaling, Ending, Phase, Rollout, ScaleTarget, record};

/// Waits for the controller to bring the releases to `target`.
pub(super) fn begin_scaling(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    target: ScaleTarget,
    then: AfterScaling,
    why: String,
) {
    record(
        actions,
        EventKind::StepStarted,
        "controller",
        why,
        serde_json::json!({"step": r.step, "target": target}),
    );
    r.phase = Phase::Scaling { target, then };
}

/// The controller scaled the releases (or could not).
pub(super) fn scaled(
    r: &mut Rollout,
    actions: &mut Vec<Action>,
    result: Result<(), String>,
    now: Timestamp,
) {
    let Phase::Scaling { target, then } = r.phase.clone() else {
        return;
    };
    match result {
        Ok(()) => {
            r.instances.canary = (target.canary != r.canary.instances()).then_some(target.canary);
            r.instances.stable = (target.stable != r.stable.instances()).then_some(target.stable);
            // The routes must follow the new instance counts even when the weight stays.
            actions.push(Action::Reroute);
            set_weight(r, actions, target.weight, now);
            match then {
                AfterScaling::NextStep => {
                    r.step += 1;
                    advance(r, actions, now);
                }
                AfterScaling::Promote { actor, why } => promote(r, actions, &actor, why, now),
                AfterScaling::Finish {
                    outcome,
                    actor,
                    why,
                } => end(r, actions, outcome, &actor, why, now),
            }
        }
        Err(error) => match then {
            AfterScaling::NextStep | AfterScaling::Promote { .. } => {
                let why = format!("instances could not be scaled: {error}");
                finish(r, actions, Ending::RolledBack, "controller", why, now);
            }
            AfterScaling::Finish {
                outcome,
                actor,
                why,
            } => {
                let why = format!(
                    "{why}; {} could not be restored to full size: {error}",
                    r.stable.label()
                );
                end(r, actions, outcome, &actor, why, now);
            }
        },
    }
}
