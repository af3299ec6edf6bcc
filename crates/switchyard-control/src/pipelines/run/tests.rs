#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_core::manifest::PipelineSpec;

use super::*;

const SPEC: &str = "
stages:
  - name: staging
    targets: [shop-staging]
  - name: prod
    soak: 1m
    approval: {role: operator}
    onFailure: cascade
    waves:
      - targets: [shop-eu]
      - targets: [shop-us]
";

#[derive(Default)]
struct Fake {
    rollouts: BTreeMap<RolloutId, (String, bool)>,
    closed: BTreeMap<(usize, usize), Timestamp>,
}

impl Fake {
    fn ended(&mut self, id: RolloutId, phase: &str) {
        self.rollouts.insert(id, (phase.to_owned(), true));
    }
}

impl World for Fake {
    fn rollout(&self, id: RolloutId) -> Option<(&str, bool)> {
        self.rollouts.get(&id).map(|(p, e)| (p.as_str(), *e))
    }

    fn windows(&self, stage: usize, wave: usize) -> Result<(), (Vec<Closed>, Option<Timestamp>)> {
        match self.closed.get(&(stage, wave)) {
            Some(until) => Err((
                vec![Closed {
                    window: "business-hours".into(),
                    why: "outside its weekly windows".into(),
                    until: Some(*until),
                }],
                Some(*until),
            )),
            None => Ok(()),
        }
    }
}

fn run() -> Run {
    let spec: PipelineSpec = serde_yaml_ng::from_str(SPEC).unwrap();
    Run::new(
        "pipeline/shop".into(),
        Version::new("v2").unwrap(),
        &spec.stages,
        "alice",
        Timestamp(1_000),
    )
}

fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

/// Gives every `Deploy` (or `Undo`) of `actions` a rollout id from `next`.
fn started(run: &mut Run, actions: &[Action], next: &mut RolloutId) -> Vec<RolloutId> {
    let mut ids = Vec::new();
    for a in actions {
        let (Action::Deploy { stage, wave, app } | Action::Undo { stage, wave, app }) = a else {
            continue;
        };
        let t = run.stages[*stage].waves[*wave]
            .iter_mut()
            .find(|t| &t.app == app)
            .unwrap();
        *next += 1;
        if matches!(a, Action::Deploy { .. }) {
            t.rollout = Some(*next);
        } else {
            t.undo = Some(*next);
        }
        ids.push(*next);
    }
    ids
}

fn kinds(events: &[RunEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

#[test]
fn promotes_through_soak_approval_and_waves() {
    let mut run = run();
    let mut world = Fake::default();
    let mut next = 0;
    let (events, actions) = run.advance(&world, Timestamp(1_000));
    assert_eq!(kinds(&events), [EventKind::StageStarted]);
    assert_eq!(
        actions,
        [Action::Deploy {
            stage: 0,
            wave: 0,
            app: app("shop-staging")
        }]
    );
    let ids = started(&mut run, &actions, &mut next);
    // Nothing moves while the rollout runs.
    assert_eq!(run.advance(&world, Timestamp(2_000)), (vec![], vec![]));
    world.ended(ids[0], "Succeeded");
    let (events, actions) = run.advance(&world, Timestamp(3_000));
    assert_eq!(
        kinds(&events),
        [EventKind::StageSucceeded, EventKind::StageWaiting]
    );
    assert!(actions.is_empty());
    assert_eq!(
        run.stages[1].waiting,
        Some(Waiting::Soak {
            until: Timestamp(63_000)
        })
    );
    // Soaked: now the approval holds it, said once.
    let (events, _) = run.advance(&world, Timestamp(63_000));
    assert_eq!(kinds(&events), [EventKind::AwaitingApproval]);
    assert_eq!(run.advance(&world, Timestamp(64_000)).0, vec![]);
    run.stages[1].approval = Some(Decision {
        by: "bob".into(),
        reason: "looks good".into(),
        at: Timestamp(65_000),
    });
    // The first wave is outside its window until 100 s.
    world.closed.insert((1, 0), Timestamp(100_000));
    let (events, actions) = run.advance(&world, Timestamp(65_000));
    assert_eq!(kinds(&events), [EventKind::StageWaiting]);
    assert!(actions.is_empty());
    assert!(
        run.stages[1]
            .waiting
            .as_ref()
            .unwrap()
            .describe()
            .contains("until")
    );
    world.closed.clear();
    let (events, actions) = run.advance(&world, Timestamp(100_000));
    assert_eq!(kinds(&events), [EventKind::StageStarted]);
    assert_eq!(
        actions,
        [Action::Deploy {
            stage: 1,
            wave: 0,
            app: app("shop-eu")
        }]
    );
    let eu = started(&mut run, &actions, &mut next)[0];
    world.ended(eu, "Succeeded");
    let (_, actions) = run.advance(&world, Timestamp(101_000));
    assert_eq!(
        actions,
        [Action::Deploy {
            stage: 1,
            wave: 1,
            app: app("shop-us")
        }]
    );
    let us = started(&mut run, &actions, &mut next)[0];
    world.ended(us, "Succeeded");
    let (events, _) = run.advance(&world, Timestamp(102_000));
    assert_eq!(
        kinds(&events),
        [EventKind::StageSucceeded, EventKind::PipelineFinished]
    );
    assert_eq!(run.phase, RunPhase::Succeeded);
}

#[test]
fn a_failure_in_the_second_region_cascades_back_newest_first() {
    let mut run = run();
    let mut world = Fake::default();
    let mut next = 0;
    let (_, actions) = run.advance(&world, Timestamp(1_000));
    let staging = started(&mut run, &actions, &mut next)[0];
    world.ended(staging, "Succeeded");
    run.stages[1].approval = Some(Decision {
        by: "bob".into(),
        reason: "ok".into(),
        at: Timestamp(0),
    });
    run.advance(&world, Timestamp(2_000));
    let t = Timestamp(2_000).plus(Duration::from_secs(60));
    let (_, actions) = run.advance(&world, t);
    let eu = started(&mut run, &actions, &mut next)[0];
    world.ended(eu, "Succeeded");
    let (_, actions) = run.advance(&world, t);
    let us = started(&mut run, &actions, &mut next)[0];
    world.ended(us, "RolledBack");
    let (events, actions) = run.advance(&world, t);
    assert_eq!(kinds(&events), [EventKind::StageFailed]);
    assert!(
        events[0]
            .reason
            .contains("`shop-us` failed in stage `prod`"),
        "{}",
        events[0].reason
    );
    assert!(events[0].reason.contains("on failure: cascade"));
    // The first region is undone first; staging waits for it.
    assert_eq!(
        actions,
        [Action::Undo {
            stage: 1,
            wave: 0,
            app: app("shop-eu")
        }]
    );
    assert_eq!(run.phase, RunPhase::RollingBack);
    let undo_eu = started(&mut run, &actions, &mut next)[0];
    assert_eq!(run.advance(&world, t), (vec![], vec![]));
    world.ended(undo_eu, "Succeeded");
    let (events, actions) = run.advance(&world, t);
    assert_eq!(kinds(&events), [EventKind::StageFailed]);
    assert_eq!(
        actions,
        [Action::Undo {
            stage: 0,
            wave: 0,
            app: app("shop-staging")
        }]
    );
    let undo_staging = started(&mut run, &actions, &mut next)[0];
    world.ended(undo_staging, "Succeeded");
    let (events, _) = run.advance(&world, t);
    assert_eq!(
        kinds(&events),
        [EventKind::StageFailed, EventKind::PipelineFinished]
    );
    assert_eq!(run.phase, RunPhase::RolledBack);
    let statuses: Vec<TargetStatus> = run
        .stages
        .iter()
        .flat_map(|s| s.waves.iter().flatten().map(|t| t.status))
        .collect();
    assert_eq!(
        statuses,
        [
            TargetStatus::Reverted,
            TargetStatus::Reverted,
            TargetStatus::Failed
        ]
    );
}

#[test]
fn rollback_undoes_only_the_failed_stage_and_halt_undoes_nothing() {
    for (policy, phase, staging) in [
        (
            FailurePolicy::Rollback,
            RunPhase::Failed,
            TargetStatus::Succeeded,
        ),
        (
            FailurePolicy::Halt,
            RunPhase::Halted,
            TargetStatus::Succeeded,
        ),
    ] {
        let mut run = run();
        run.stages[1].spec.on_failure = policy;
        run.stages[1].spec.soak = None;
        run.stages[1].spec.approval = None;
        let mut world = Fake::default();
        let mut next = 0;
        let (_, actions) = run.advance(&world, Timestamp(1_000));
        let id = started(&mut run, &actions, &mut next)[0];
        world.ended(id, "Succeeded");
        let (_, actions) = run.advance(&world, Timestamp(2_000));
        let eu = started(&mut run, &actions, &mut next)[0];
        world.ended(eu, "Aborted");
        let (_, actions) = run.advance(&world, Timestamp(3_000));
        assert!(actions.is_empty(), "{policy:?}: {actions:?}");
        assert_eq!(run.phase, phase, "{policy:?}");
        assert_eq!(run.stages[0].waves[0][0].status, staging);
    }
}

#[test]
fn a_stage_that_fails_aborts_its_other_rollouts() {
    let spec: PipelineSpec =
        serde_yaml_ng::from_str("stages: [{name: prod, targets: [a, b]}]").unwrap();
    let mut run = Run::new(
        "pipeline/p".into(),
        Version::new("v2").unwrap(),
        &spec.stages,
        "x",
        Timestamp(0),
    );
    let mut world = Fake::default();
    let mut next = 0;
    let (_, actions) = run.advance(&world, Timestamp(0));
    let ids = started(&mut run, &actions, &mut next);
    world.ended(ids[0], "RolledBack");
    let (_, actions) = run.advance(&world, Timestamp(1));
    assert_eq!(
        actions,
        [Action::Abort {
            app: app("b"),
            rollout: ids[1]
        }]
    );
    assert_eq!(run.stages[0].waves[0][1].status, TargetStatus::Aborted);
    assert_eq!(run.phase, RunPhase::Failed);
}
