use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use switchyard_core::expr::Value;

use switchyard_core::manifest::load_str;

use super::*;
use crate::plan::Plan;
use switchyard_core::Workload;
use switchyard_core::manifest::app::WebhookKind;

const T0: Timestamp = Timestamp(1_700_000_000_000);

const MANIFEST: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {static: {}}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {duration: 30s}
        - analysis: {templates: [errors]}
        - setWeight: 50
        - pause: {}
  rollbackPolicy: {errorRate: {max: 0.05}, window: 30s, interval: 5s, consecutiveFailures: 2, minRequests: 10}
---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 0.05
      interval: 10s
      count: 2
"#;

fn release(version: &str) -> Release {
    serde_json::from_value(serde_json::json!({
        "app": "shop", "version": version,
        "workload": {"static": {"addresses": ["127.0.0.1:1"], "startTimeout": "1s"}},
        "healthCheck": {"path": "/health", "interval": "1s", "timeout": "1s", "healthyThreshold": 1, "unhealthyThreshold": 1}
    }))
    .unwrap()
}

fn rollout() -> Rollout {
    let set = load_str(MANIFEST, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        app.spec.rollback_policy.clone(),
        T0,
    )
}

fn at(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

fn step(r: Rollout, e: Event, now: Timestamp) -> (Rollout, Vec<Action>) {
    transition(r, e, now).unwrap()
}

fn cmd(command: Command) -> Event {
    Event::Command {
        command,
        actor: "user:test".into(),
    }
}

fn ok(v: f64) -> Event {
    Event::Measured {
        run: RunRef::Step,
        index: 0,
        outcome: Ok(Observation {
            result: Value::Number(v),
            baseline: None,
            samples: Some(100),
        }),
    }
}

fn window(requests: u64, errors: u64) -> WindowStats {
    WindowStats {
        window: Duration::from_secs(30),
        requests,
        status_classes: [0, requests - errors, 0, 0, errors],
        ..WindowStats::default()
    }
}

fn started() -> Rollout {
    step(rollout(), Event::CanaryStarted, T0).0
}

#[test]
fn canary_start_runs_steps_until_the_first_wait() {
    let (r, actions) = step(rollout(), Event::CanaryStarted, T0);
    assert_eq!(r.weight, 10);
    assert_eq!(r.step, 1);
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Step,
            until: Some(at(30))
        }
    );
    assert!(actions.contains(&Action::SetWeight(10)));
    assert_eq!(r.traffic_since, Some(T0));
}

#[test]
fn failed_start_fails_without_touching_traffic() {
    let (r, actions) = step(
        rollout(),
        Event::CanaryFailed {
            error: "boom".into(),
        },
        T0,
    );
    assert_eq!(r.phase, Phase::Failed);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SetWeight(_) | Action::StopCanary))
    );
    assert!(r.reason.unwrap().contains("boom"));
}

#[test]
fn timed_pause_ends_at_its_deadline_and_not_before() {
    let r = started();
    let (r, actions) = step(r, Event::Tick, at(29));
    assert!(actions.is_empty());
    let (r, _) = step(r, Event::Tick, at(30));
    assert_eq!(r.phase, Phase::Analyzing);
    assert_eq!(r.measurements_due(at(30)), vec![(RunRef::Step, 0)]);
}

#[test]
fn successful_analysis_moves_on_and_indefinite_pause_waits_for_promote() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let (r, _) = step(r, ok(0.01), at(30));
    assert_eq!(r.phase, Phase::Analyzing);
    assert!(r.measurements_due(at(35)).is_empty());
    let (r, _) = step(r, ok(0.01), at(40));
    assert_eq!(r.weight, 50);
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Step,
            until: None
        }
    );
    let (r, _) = step(r, Event::Tick, at(10_000));
    assert_eq!(r.weight, 50, "an indefinite pause never times out");
    let (r, actions) = step(r, cmd(Command::Promote { full: false }), at(10_001));
    assert_eq!(r.phase, Phase::Succeeded);
    assert_eq!(r.weight, 100);
    assert!(actions.contains(&Action::MakeCanaryStable));
    assert!(actions.contains(&Action::StopStable));
}

#[test]
fn failed_analysis_rolls_back() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let (r, actions) = step(r, ok(0.2), at(30));
    assert_eq!(r.phase, Phase::RolledBack);
    assert_eq!(r.weight, 0);
    assert!(actions.contains(&Action::SetWeight(0)));
    assert!(actions.contains(&Action::StopCanary));
    assert!(
        r.reason
            .unwrap()
            .starts_with("analysis of step 3 failed: metric `error-rate`")
    );
}

#[test]
fn policy_needs_consecutive_breaches_and_enough_data() {
    let r = started();
    assert!(!r.policy_due(at(4)));
    assert!(r.policy_due(at(5)));
    let (r, _) = step(
        r,
        Event::PolicyWindows {
            canary: window(5, 5),
            stable: window(100, 0),
        },
        at(5),
    );
    assert_eq!(r.policy_breaches, 0, "5 requests is below minRequests");
    let (r, _) = step(
        r,
        Event::PolicyWindows {
            canary: window(100, 20),
            stable: window(100, 0),
        },
        at(10),
    );
    assert_eq!(r.policy_breaches, 1);
    let (r, _) = step(
        r,
        Event::PolicyWindows {
            canary: window(100, 1),
            stable: window(100, 0),
        },
        at(15),
    );
    assert_eq!(r.policy_breaches, 0, "a healthy check resets the count");
    let (r, _) = step(
        r,
        Event::PolicyWindows {
            canary: window(100, 20),
            stable: window(100, 0),
        },
        at(20),
    );
    let (r, actions) = step(
        r,
        Event::PolicyWindows {
            canary: window(100, 20),
            stable: window(100, 0),
        },
        at(25),
    );
    assert_eq!(r.phase, Phase::RolledBack);
    assert!(actions.contains(&Action::StopCanary));
    let reason = r.reason.unwrap();
    assert!(
        reason.contains("error rate 20.00% exceeds 5.00%"),
        "{reason}"
    );
}

#[test]
fn policy_is_not_checked_before_its_interval() {
    let r = started();
    let (r, _) = step(
        r,
        Event::PolicyWindows {
            canary: window(100, 50),
            stable: window(100, 0),
        },
        at(1),
    );
    assert_eq!(r.policy_breaches, 0);
}

#[test]
fn operator_pause_and_resume_reenters_the_step() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let (r, _) = step(r, cmd(Command::Pause { duration: None }), at(31));
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Operator,
            until: None
        }
    );
    assert_eq!(r.analysis, None);
    let (r, _) = step(
        r,
        cmd(Command::Resume {
            weight: None,
            interval: None,
        }),
        at(40),
    );
    assert_eq!(r.phase, Phase::Analyzing);
    assert_eq!(r.analysis.as_ref().unwrap().started_at, at(40));
}

#[test]
fn abort_sends_traffic_back() {
    let (r, actions) = step(started(), cmd(Command::Abort { reason: None }), at(1));
    assert_eq!(r.phase, Phase::Aborted);
    assert_eq!(r.weight, 0);
    assert!(actions.contains(&Action::StopCanary));
}

#[test]
fn commands_that_do_not_fit_are_errors() {
    let r = rollout();
    assert_eq!(
        transition(r.clone(), cmd(Command::Pause { duration: None }), T0).unwrap_err(),
        TransitionError::Starting { command: "pause" }
    );
    let (done, _) = step(started(), cmd(Command::Abort { reason: None }), at(1));
    assert!(matches!(
        transition(
            done,
            cmd(Command::Resume {
                weight: None,
                interval: None
            }),
            at(2)
        ),
        Err(TransitionError::Ended { .. })
    ));
    let (analyzing, _) = step(started(), Event::Tick, at(30));
    assert_eq!(
        transition(
            analyzing,
            cmd(Command::Resume {
                weight: None,
                interval: None
            }),
            at(31)
        )
        .unwrap_err(),
        TransitionError::NotPaused { phase: "Analyzing" }
    );
    assert!(
        transition(r, cmd(Command::Abort { reason: None }), T0).is_ok(),
        "a starting canary can be aborted"
    );
}

#[test]
fn full_promotion_skips_every_step() {
    let (r, _) = step(started(), cmd(Command::Promote { full: true }), at(1));
    assert_eq!(r.phase, Phase::Succeeded);
    assert_eq!(r.weight, 100);
}

#[test]
fn state_round_trips_through_json() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let json = serde_json::to_value(&r).unwrap();
    let back: Rollout = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

fn arb_event() -> impl Strategy<Value = (Event, u64)> {
    let e = prop_oneof![
        Just(Event::CanaryStarted),
        Just(Event::CanaryFailed { error: "x".into() }),
        Just(Event::Scaled { result: Ok(()) }),
        Just(Event::Scaled {
            result: Err("no port".into())
        }),
        Just(Event::Tick),
        (0.0f64..0.3).prop_map(ok),
        (0u64..200, 0u64..200).prop_map(|(n, e)| Event::PolicyWindows {
            canary: window(n.max(e), e.min(n)),
            stable: window(100, 0)
        }),
        Just(cmd(Command::Promote { full: false })),
        Just(cmd(Command::Promote { full: true })),
        Just(cmd(Command::Abort { reason: None })),
        Just(cmd(Command::Pause { duration: None })),
        Just(cmd(Command::Resume {
            weight: None,
            interval: None
        })),
        (0u8..=100).prop_map(|w| cmd(Command::Resume {
            weight: Some(w),
            interval: None
        })),
        Just(cmd(Command::Pause {
            duration: Some(Duration::from_secs(5))
        })),
        Just(cmd(Command::Approve {
            reason: Some("ok".into())
        })),
        Just(cmd(Command::Approve { reason: None })),
        (0usize..2, 0.0f64..0.3).prop_map(|(i, v)| Event::Measured {
            run: if i == 0 {
                RunRef::Step
            } else {
                RunRef::Background
            },
            index: 0,
            outcome: Ok(Observation {
                result: Value::Number(v),
                baseline: None,
                samples: Some(100)
            }),
        }),
    ];
    (e, 0u64..20)
}

proptest! {
    #[test]
    fn invariants_hold_for_any_event_sequence(kind in 0u8..4, events in proptest::collection::vec(arb_event(), 0..40)) {
        let mut r = match kind {
            0 => rollout(),
            1 => rich_rollout(),
            2 => rolling_rollout(),
            _ => scaled_canary_rollout(),
        };
        let mut now = T0;
        for (event, dt) in events {
            now = now.plus(Duration::from_secs(dt));
            let before = r.clone();
            if let Ok((next, actions)) = transition(r.clone(), event, now) {
                {
                    prop_assert!(next.weight <= 100);
                    if before.phase.is_terminal() {
                        prop_assert_eq!(&next, &before, "no transition out of a terminal phase");
                        prop_assert!(actions.is_empty());
                    }
                    if matches!(next.phase, Phase::RolledBack | Phase::Aborted | Phase::Failed) {
                        prop_assert_eq!(next.weight, 0, "rolled back routes everything to stable");
                        if next.phase != Phase::Failed || before.phase != Phase::Pending {
                            prop_assert!(
                                next.stable_instances() == next.stable.instances()
                                    || next.reason.as_deref().is_some_and(|w| w.contains("could not be restored")),
                                "stable is back at full size: {:?}", next.instances
                            );
                        }
                    }
                    if matches!(next.phase, Phase::Succeeded | Phase::Promoting { .. }) {
                        prop_assert_eq!(next.canary_instances(), next.canary.instances(), "promoted at full size");
                    }
                    if matches!(next.phase, Phase::Succeeded | Phase::Promoting { .. }) {
                        prop_assert_eq!(next.weight, 100);
                    }
                    if next.phase == Phase::Succeeded && before.phase != Phase::Succeeded {
                        prop_assert!(actions.contains(&Action::MakeCanaryStable));
                    }
                    prop_assert!(next.step <= next.steps.len());
                    if next.phase == Phase::Pending {
                        prop_assert_eq!(next.weight, 0);
                    }
                    // The last weight action is the weight the state claims.
                    if let Some(Action::SetWeight(w)) = actions.iter().rev().find(|a| matches!(a, Action::SetWeight(_))) {
                        prop_assert_eq!(*w, next.weight);
                    }
                    r = next;
                }
            }
        }
    }
}

const RICH: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {static: {}}
  strategy:
    canary:
      scaleDownDelay: 60s
      analysis: {templates: [errors], startingStep: 1}
      steps:
        - setWeight: 10
        - approval: {timeout: 10m}
        - bake: {duration: 2m, templates: [errors]}
        - setWeight: 40
        - approval: {requireReason: false, timeout: 1m, onTimeout: approve}
  rollbackPolicy: {errorRate: {max: 0.05}, interval: 5s, consecutiveFailures: 1, minRequests: 10, bakeTime: 30s}
---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 0.05
      interval: 10s
      count: 100
"#;

fn rich_rollout() -> Rollout {
    let set = load_str(RICH, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        app.spec.rollback_policy.clone(),
        T0,
    )
}

fn approve(reason: Option<&str>) -> Event {
    cmd(Command::Approve {
        reason: reason.map(String::from),
    })
}

#[test]
fn approval_gate_needs_approve_with_a_reason() {
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    assert_eq!(r.weight, 10);
    assert_eq!(
        r.phase,
        Phase::AwaitingApproval {
            until: Some(at(600))
        }
    );
    assert_eq!(
        transition(r.clone(), cmd(Command::Promote { full: false }), at(1)).unwrap_err(),
        TransitionError::ApprovalRequired
    );
    assert_eq!(
        transition(r.clone(), cmd(Command::Promote { full: true }), at(1)).unwrap_err(),
        TransitionError::ApprovalRequired
    );
    assert_eq!(
        transition(r.clone(), approve(None), at(1)).unwrap_err(),
        TransitionError::ReasonRequired
    );
    assert_eq!(
        transition(r.clone(), approve(Some("  ")), at(1)).unwrap_err(),
        TransitionError::ReasonRequired
    );
    let (r, _) = step(r, approve(Some("checked the dashboards")), at(2));
    assert_eq!(r.approvals.len(), 1);
    assert_eq!(
        r.approvals[0].reason.as_deref(),
        Some("checked the dashboards")
    );
    assert_eq!(r.phase, Phase::Baking { until: at(122) });
}

#[test]
fn approval_timeout_aborts_by_default_and_approves_when_configured() {
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    let (r2, _) = step(r.clone(), Event::Tick, at(599));
    assert!(matches!(r2.phase, Phase::AwaitingApproval { .. }));
    let (r2, actions) = step(r2, Event::Tick, at(600));
    assert_eq!(r2.phase, Phase::Aborted);
    assert!(actions.contains(&Action::StopCanary));
    // The second gate approves itself on timeout and needs no reason.
    let (r, _) = step(r, approve(Some("go")), at(1));
    let (r, _) = step(r, Event::Tick, at(121));
    assert_eq!(r.weight, 40);
    assert_eq!(
        r.phase,
        Phase::AwaitingApproval {
            until: Some(at(181))
        }
    );
    let (r, _) = step(r, Event::Tick, at(181));
    assert!(matches!(r.phase, Phase::Promoting { .. }));
}

#[test]
fn bake_holds_until_its_deadline_and_fails_on_a_bad_measurement() {
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    let (r, _) = step(r, approve(Some("go")), at(1));
    assert_eq!(
        r.measurements_due(at(1)),
        vec![(RunRef::Step, 0), (RunRef::Background, 0)]
    );
    let (baked, _) = step(r.clone(), ok(0.01), at(1));
    assert!(
        matches!(baked.phase, Phase::Baking { .. }),
        "a good measurement does not end a bake"
    );
    let (baked, _) = step(baked, Event::Tick, at(121));
    assert_eq!(baked.weight, 40);
    let (failed, actions) = step(r, ok(0.5), at(2));
    assert_eq!(failed.phase, Phase::RolledBack);
    assert!(actions.contains(&Action::SetWeight(0)));
}

#[test]
fn background_analysis_failure_rolls_back_from_any_step() {
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    assert!(
        r.background.is_some(),
        "background analysis starts at step 1"
    );
    assert_eq!(r.measurements_due(T0), vec![(RunRef::Background, 0)]);
    let bad = Event::Measured {
        run: RunRef::Background,
        index: 0,
        outcome: Ok(Observation {
            result: Value::Number(0.3),
            baseline: None,
            samples: Some(50),
        }),
    };
    let (r, _) = step(r, bad, at(1));
    assert_eq!(r.phase, Phase::RolledBack);
    assert!(r.reason.unwrap().starts_with("background analysis failed"));
}

#[test]
fn promotion_window_keeps_checking_and_switches_back_on_a_breach() {
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    let (r, actions) = step(r, cmd(Command::Abort { reason: None }), at(1));
    assert_eq!(r.phase, Phase::Aborted);
    assert!(actions.contains(&Action::StopCanary));
    // Through every step to the promotion window.
    let (r, _) = step(rich_rollout(), Event::CanaryStarted, T0);
    let (r, _) = step(r, approve(Some("go")), at(1));
    let (r, _) = step(r, Event::Tick, at(121));
    let (r, _) = step(r, approve(None), at(122));
    assert_eq!(
        r.phase,
        Phase::Promoting { until: at(182) },
        "max(scaleDownDelay 60s, bakeTime 30s)"
    );
    assert_eq!(r.weight, 100);
    let (ok_r, actions) = step(r.clone(), Event::Tick, at(182));
    assert_eq!(ok_r.phase, Phase::Succeeded);
    assert!(actions.contains(&Action::MakeCanaryStable) && actions.contains(&Action::StopStable));
    let breach = Event::PolicyWindows {
        canary: window(100, 20),
        stable: window(0, 0),
    };
    let (back, actions) = step(r, breach, at(130));
    assert_eq!(back.phase, Phase::RolledBack);
    assert!(actions.contains(&Action::SetWeight(0)));
    assert!(!actions.contains(&Action::MakeCanaryStable));
}

#[test]
fn timed_operator_pause_resumes_by_itself() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let (r, _) = step(
        r,
        cmd(Command::Pause {
            duration: Some(Duration::from_secs(20)),
        }),
        at(31),
    );
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Operator,
            until: Some(at(51))
        }
    );
    let (r, _) = step(r, Event::Tick, at(51));
    assert_eq!(r.phase, Phase::Analyzing, "the paused step starts again");
}

#[test]
fn resume_with_a_new_weight_and_interval() {
    let (r, _) = step(started(), Event::Tick, at(30));
    let (r, _) = step(r, cmd(Command::Pause { duration: None }), at(31));
    let bad = cmd(Command::Resume {
        weight: Some(101),
        interval: None,
    });
    assert_eq!(
        transition(r.clone(), bad, at(32)).unwrap_err(),
        TransitionError::Weight(101)
    );
    let new = cmd(Command::Resume {
        weight: Some(5),
        interval: Some(Duration::from_secs(3)),
    });
    let (r, actions) = step(r, new, at(40));
    assert_eq!(r.weight, 5);
    assert!(actions.contains(&Action::SetWeight(5)));
    assert_eq!(r.phase, Phase::Analyzing);
    let run = r.analysis.as_ref().unwrap();
    assert_eq!(run.metrics[0].spec.interval, Some(Duration::from_secs(3)));
    let (r, _) = step(r, ok(0.01), at(40));
    assert_eq!(
        r.measurements_due(at(43)),
        vec![(RunRef::Step, 0)],
        "the new interval applies"
    );
}

#[test]
fn header_route_and_mirror_are_set_by_steps_and_cleared_at_the_end() {
    let text = MANIFEST.replace(
        "        - setWeight: 10\n",
        "        - setHeaderRoute: {match: [{header: X-Canary, exact: always}]}\n        - setMirror: {percent: 20}\n        - setWeight: 10\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    let r = Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        None,
        T0,
    );
    let (r, actions) = step(r, Event::CanaryStarted, T0);
    assert_eq!(r.header_route.len(), 1);
    assert_eq!(r.mirror, 20);
    assert!(actions.contains(&Action::Reroute));
    let (r, actions) = step(r, cmd(Command::Abort { reason: None }), at(1));
    assert!(r.header_route.is_empty());
    assert_eq!(r.mirror, 0);
    assert!(actions.contains(&Action::Reroute));
}

const BLUE_GREEN: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {static: {}}
  strategy:
    blueGreen:
      previewListen: 127.0.0.1:8081
      smokeTests: [{path: /health}]
      autoPromotionAfter: 10s
      postPromotionAnalysis: {templates: [errors]}
      scaleDownDelay: 1m
---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: errors}
spec:
  metrics:
    - name: error-rate
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 0.05
"#;

fn blue_green() -> Rollout {
    let set = load_str(BLUE_GREEN, Path::new("bg.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        None,
        T0,
    )
}

#[test]
fn blue_green_previews_smoke_tests_switches_and_keeps_blue_warm() {
    let (r, actions) = step(blue_green(), Event::CanaryStarted, T0);
    assert!(r.preview);
    assert_eq!(r.weight, 0, "the preview takes no public traffic");
    assert_eq!(r.phase, Phase::SmokeTesting);
    assert!(actions.contains(&Action::Reroute));
    let (failed, actions) = step(
        r.clone(),
        Event::SmokeTested {
            result: Err("GET /health answered 500".into()),
        },
        at(1),
    );
    assert_eq!(failed.phase, Phase::RolledBack);
    assert!(!failed.preview && actions.contains(&Action::StopCanary));
    assert!(
        failed
            .reason
            .unwrap()
            .contains("smoke test failed: GET /health answered 500")
    );
    let (r, _) = step(r, Event::SmokeTested { result: Ok(()) }, at(1));
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Step,
            until: Some(at(11))
        }
    );
    let (r, actions) = step(r, Event::Tick, at(11));
    assert_eq!(r.weight, 100, "the switch");
    assert!(actions.contains(&Action::SetWeight(100)));
    assert_eq!(r.phase, Phase::Analyzing, "post-promotion analysis");
    let (back, actions) = step(r.clone(), ok(0.5), at(12));
    assert_eq!(back.phase, Phase::RolledBack);
    assert_eq!(back.weight, 0, "switched back to blue");
    assert!(actions.contains(&Action::SetWeight(0)) && !actions.contains(&Action::StopStable));
    let (r, actions) = step(r, ok(0.0), at(12));
    assert_eq!(r.phase, Phase::Promoting { until: at(72) });
    assert!(!r.preview);
    assert!(
        !actions.contains(&Action::StopStable),
        "blue stays warm for scaleDownDelay"
    );
    let (r, actions) = step(r, Event::Tick, at(72));
    assert_eq!(r.phase, Phase::Succeeded);
    assert!(actions.contains(&Action::StopStable));
}

#[test]
fn blue_green_without_auto_promotion_waits_for_promote() {
    let text = BLUE_GREEN.replace("      autoPromotionAfter: 10s\n", "");
    let set = load_str(&text, Path::new("bg.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    let r = Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        None,
        T0,
    );
    let (r, _) = step(r, Event::CanaryStarted, T0);
    let (r, _) = step(r, Event::SmokeTested { result: Ok(()) }, at(1));
    let (r, _) = step(r, Event::Tick, at(100_000));
    assert_eq!(
        r.phase,
        Phase::Paused {
            reason: PauseReason::Step,
            until: None
        }
    );
    let (r, _) = step(r, cmd(Command::Promote { full: false }), at(100_001));
    assert_eq!(r.weight, 100);
}

#[test]
fn a_judge_against_baseline_brings_a_copy_of_stable_that_leaves_with_the_rollout() {
    let text = MANIFEST.replace(
        "      provider: {builtin: {metric: error_rate}}\n      successCondition: result < 0.05\n      interval: 10s\n      count: 2\n",
        "      judge: {compare: error_rate, against: baseline}\n      interval: 10s\n",
    );
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    let mut canary = release("v2");
    canary.workload = serde_json::from_value(serde_json::json!({"process": {"argv": ["x"], "env": {}, "workingDir": null, "instances": 3, "startTimeout": "1s", "stopTimeout": "1s"}})).unwrap();
    let mut stable = release("v1");
    stable.workload = serde_json::from_value(serde_json::json!({"process": {"argv": ["y"], "env": {}, "workingDir": null, "instances": 5, "startTimeout": "1s", "stopTimeout": "1s"}})).unwrap();
    let r = Rollout::new(
        stable,
        canary,
        Plan::of(&app.spec.strategy, 1, 1),
        templates,
        None,
        T0,
    );
    let baseline = r.baseline.clone().expect("a baseline release");
    assert_eq!(baseline.version.as_str(), "v1-baseline");
    assert!(
        matches!(baseline.workload, Workload::Process { instances: 3, ref argv, .. } if argv == &["y".to_string()])
    );
    let (r, _) = step(r, Event::CanaryStarted, T0);
    let (_, actions) = step(r, cmd(Command::Abort { reason: None }), at(1));
    assert!(actions.contains(&Action::StopBaseline));
    // Static releases cannot be copied: the judge compares against stable.
    let r = Rollout::new(
        release("v1"),
        release("v2"),
        Plan::of(&app.spec.strategy, 1, 1),
        BTreeMap::new(),
        None,
        T0,
    );
    assert!(r.baseline.is_none());
}

fn hooked(kinds: &[&str]) -> Rollout {
    let hooks: Vec<switchyard_core::manifest::app::Webhook> = kinds
        .iter()
        .map(|k| serde_json::from_value(serde_json::json!({"name": format!("h-{k}"), "type": k, "url": "http://127.0.0.1:9/x"})).unwrap())
        .collect();
    rollout().with_webhooks(hooks)
}

fn hook(kind: WebhookKind, ok: bool) -> Event {
    Event::WebhookResult {
        kind,
        result: if ok {
            Ok(())
        } else {
            Err("answered 503".into())
        },
    }
}

#[test]
fn confirm_and_pre_rollout_gates_hold_traffic_until_they_pass() {
    let (r, _) = step(
        hooked(&["confirm-rollout", "pre-rollout"]),
        Event::CanaryStarted,
        T0,
    );
    assert_eq!(
        r.phase,
        Phase::AwaitingWebhook {
            kind: WebhookKind::ConfirmRollout,
            next_at: T0
        }
    );
    assert_eq!(r.weight, 0);
    assert_eq!(r.webhooks_due(T0), vec![WebhookKind::ConfirmRollout]);
    let (r, actions) = step(r, hook(WebhookKind::ConfirmRollout, false), T0);
    assert_eq!(
        r.phase,
        Phase::AwaitingWebhook {
            kind: WebhookKind::ConfirmRollout,
            next_at: at(5)
        }
    );
    assert_eq!(actions.len(), 1, "the first refusal is recorded");
    let (r, actions) = step(r, hook(WebhookKind::ConfirmRollout, false), at(5));
    assert!(actions.is_empty(), "repeated refusals are not");
    let (r, _) = step(r, hook(WebhookKind::ConfirmRollout, true), at(10));
    assert!(matches!(
        r.phase,
        Phase::AwaitingWebhook {
            kind: WebhookKind::PreRollout,
            ..
        }
    ));
    let (failed, actions) = step(r.clone(), hook(WebhookKind::PreRollout, false), at(11));
    assert_eq!(failed.phase, Phase::RolledBack);
    assert!(actions.contains(&Action::PostRollout));
    let (r, _) = step(r, hook(WebhookKind::PreRollout, true), at(11));
    assert_eq!(r.weight, 10);
}

#[test]
fn confirm_promotion_gates_the_promotion() {
    let (r, _) = step(
        hooked(&["confirm-promotion", "post-rollout"]),
        Event::CanaryStarted,
        T0,
    );
    let (r, _) = step(r, cmd(Command::Promote { full: true }), at(1));
    assert!(matches!(
        r.phase,
        Phase::AwaitingWebhook {
            kind: WebhookKind::ConfirmPromotion,
            ..
        }
    ));
    assert_eq!(r.weight, 10, "no promotion before the confirmation");
    let (r, actions) = step(r, hook(WebhookKind::ConfirmPromotion, true), at(2));
    assert_eq!(r.phase, Phase::Succeeded);
    assert!(actions.contains(&Action::MakeCanaryStable) && actions.contains(&Action::PostRollout));
}

#[test]
fn a_rollback_hook_answering_2xx_rolls_back() {
    let (r, _) = step(hooked(&["rollback"]), Event::CanaryStarted, T0);
    assert_eq!(r.webhooks_due(T0), vec![WebhookKind::Rollback]);
    let (r, _) = step(r, hook(WebhookKind::Rollback, false), T0);
    assert!(r.webhooks_due(at(4)).is_empty());
    assert_eq!(r.webhooks_due(at(5)), vec![WebhookKind::Rollback]);
    let (r, _) = step(r, hook(WebhookKind::Rollback, true), at(5));
    assert_eq!(r.phase, Phase::RolledBack);
    assert_eq!(r.weight, 0);
}

fn process_release(version: &str, instances: u32) -> Release {
    serde_json::from_value(serde_json::json!({
        "app": "shop", "version": version,
        "workload": {"process": {"argv": ["app"], "env": {}, "workingDir": null, "instances": instances, "startTimeout": "1s", "stopTimeout": "1s"}},
        "healthCheck": {"path": "/health", "interval": "1s", "timeout": "1s", "healthyThreshold": 1, "unhealthyThreshold": 1}
    }))
    .unwrap()
}

fn rollout_of(manifest: &str, stable: u32, canary: u32) -> Rollout {
    let text = format!("{manifest}---\n{}", MANIFEST.split("---\n").nth(1).unwrap());
    let set = load_str(&text, Path::new("m.yaml")).unwrap();
    let app = &set.apps[0];
    let templates = set
        .templates
        .iter()
        .map(|t| (t.metadata.name.to_string(), t.spec.clone()))
        .collect();
    Rollout::new(
        process_release("v1", stable),
        process_release("v2", canary),
        Plan::of(&app.spec.strategy, canary, stable),
        templates,
        app.spec.rollback_policy.clone(),
        T0,
    )
}

const ROLLING: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {process: {command: [app], instances: 3}}
  strategy:
    rolling: {maxSurge: 1, maxUnavailable: 0, analysis: {templates: [errors]}}
  rollbackPolicy: {errorRate: {max: 0.05}, window: 30s, interval: 5s, consecutiveFailures: 1, minRequests: 10}
"#;

fn rolling_rollout() -> Rollout {
    rollout_of(ROLLING, 3, 3)
}

const SCALED_CANARY: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  runtime: {process: {command: [app], instances: 4}}
  strategy:
    canary:
      steps:
        - setCanaryScale: {replicas: 1}
        - setWeight: 25
        - pause: {}
        - setCanaryScale: {weight: 50}
        - analysis: {templates: [errors]}
"#;

fn scaled_canary_rollout() -> Rollout {
    rollout_of(SCALED_CANARY, 4, 4)
}

fn scaling_target(r: &Rollout) -> ScaleTarget {
    match &r.phase {
        Phase::Scaling { target, .. } => *target,
        other => panic!("not scaling: {other:?}"),
    }
}

fn scaled() -> Event {
    Event::Scaled { result: Ok(()) }
}

#[test]
fn a_rolling_update_runs_its_batches_with_analysis_between() {
    let r = rolling_rollout();
    assert_eq!(
        r.canary_instances(),
        0,
        "nothing of the new release runs yet"
    );
    assert_eq!(r.canary_now().instances(), 0);
    let (r, _) = step(r, Event::CanaryStarted, T0);
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 1,
            stable: 2,
            weight: 33
        }
    );
    assert_eq!(r.weight, 0, "traffic moves once the instances are ready");
    let (r, actions) = step(r, scaled(), at(1));
    assert_eq!((r.canary_instances(), r.stable_instances()), (1, 2));
    assert_eq!(r.weight, 33);
    assert!(actions.contains(&Action::SetWeight(33)));
    assert_eq!(r.phase, Phase::Analyzing, "analysis after the batch");
    let (r, _) = step(r, ok(0.0), at(1));
    let (r, _) = step(r, ok(0.0), at(11));
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 2,
            stable: 1,
            weight: 67
        }
    );
    let (r, _) = step(r, scaled(), at(12));
    let (r, _) = step(r, ok(0.0), at(12));
    let (r, _) = step(r, ok(0.0), at(22));
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 3,
            stable: 0,
            weight: 100
        }
    );
    let (r, _) = step(r, scaled(), at(23));
    let (r, _) = step(r, ok(0.0), at(23));
    let (r, actions) = step(r, ok(0.0), at(33));
    assert_eq!(r.phase, Phase::Succeeded);
    assert_eq!(r.weight, 100);
    assert!(actions.contains(&Action::MakeCanaryStable));
    assert!(actions.contains(&Action::StopStable));
}

#[test]
fn a_failed_rolling_analysis_restores_the_old_release_before_it_ends() {
    let (r, _) = step(rolling_rollout(), Event::CanaryStarted, T0);
    let (r, _) = step(r, scaled(), at(1));
    let (r, actions) = step(r, ok(0.5), at(1));
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 1,
            stable: 3,
            weight: 33
        },
        "old instances come back first; traffic stays where it is"
    );
    assert!(!actions.contains(&Action::StopCanary));
    assert!(!r.phase.is_terminal());
    assert!(matches!(
        transition(r.clone(), cmd(Command::Pause { duration: None }), at(2)),
        Err(TransitionError::Ending)
    ));
    let (same, actions) = step(r.clone(), cmd(Command::Abort { reason: None }), at(2));
    assert_eq!(same, r, "an abort while rolling back asks for nothing more");
    assert!(actions.is_empty());
    let (r, actions) = step(r, scaled(), at(3));
    assert_eq!(r.phase, Phase::RolledBack);
    assert_eq!(r.weight, 0);
    assert_eq!(r.stable_instances(), 3);
    assert!(actions.contains(&Action::SetWeight(0)));
    assert!(actions.contains(&Action::StopCanary));
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("analysis of step 2 failed")
    );
}

#[test]
fn new_instances_that_do_not_start_roll_back() {
    let (r, _) = step(rolling_rollout(), Event::CanaryStarted, T0);
    let (r, _) = step(r, scaled(), at(1));
    let (r, _) = step(r, ok(0.0), at(1));
    let (r, _) = step(r, ok(0.0), at(11));
    let (r, _) = step(
        r,
        Event::Scaled {
            result: Err("v2: exited".into()),
        },
        at(12),
    );
    // The failed batch may have stopped old instances already: stable is restored.
    assert_eq!(scaling_target(&r).stable, 3);
    let (r, _) = step(
        r,
        Event::Scaled {
            result: Err("v1: no port".into()),
        },
        at(13),
    );
    assert_eq!(r.phase, Phase::RolledBack);
    let why = r.reason.unwrap();
    assert!(
        why.contains("v2: exited") && why.contains("could not be restored"),
        "{why}"
    );
}

#[test]
fn pausing_while_instances_change_is_refused() {
    let (r, _) = step(rolling_rollout(), Event::CanaryStarted, T0);
    assert!(matches!(
        transition(r, cmd(Command::Pause { duration: None }), at(1)),
        Err(TransitionError::Scaling)
    ));
}

#[test]
fn set_canary_scale_sizes_the_canary_apart_from_its_weight() {
    let (r, _) = step(scaled_canary_rollout(), Event::CanaryStarted, T0);
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 1,
            stable: 4,
            weight: 0
        }
    );
    let (r, _) = step(r, scaled(), at(1));
    assert_eq!(r.canary_instances(), 1);
    assert_eq!(r.weight, 25);
    assert!(matches!(r.phase, Phase::Paused { .. }));
    let (r, _) = step(r, cmd(Command::Promote { full: false }), at(2));
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 2,
            stable: 4,
            weight: 25
        },
        "50% of 4 instances"
    );
    let (r, _) = step(r, scaled(), at(3));
    assert_eq!(r.phase, Phase::Analyzing);
    let (r, _) = step(r, ok(0.0), at(3));
    let (r, actions) = step(r, ok(0.0), at(13));
    assert_eq!(
        scaling_target(&r),
        ScaleTarget {
            canary: 4,
            stable: 4,
            weight: 25
        },
        "the canary grows back before it takes all traffic"
    );
    assert!(!actions.contains(&Action::SetWeight(100)));
    let (r, actions) = step(r, scaled(), at(14));
    assert_eq!(r.phase, Phase::Succeeded);
    assert!(actions.contains(&Action::SetWeight(100)));
    assert_eq!(r.canary_instances(), 4);
}

#[test]
fn an_aborted_scaled_canary_ends_at_once() {
    let (r, _) = step(scaled_canary_rollout(), Event::CanaryStarted, T0);
    let (r, _) = step(r, scaled(), at(1));
    let (r, actions) = step(r, cmd(Command::Abort { reason: None }), at(2));
    assert_eq!(r.phase, Phase::Aborted, "stable never shrank");
    assert!(actions.contains(&Action::StopCanary));
}

/// The app of [`MANIFEST`] with its first four steps replaced by one adaptive step.
fn adaptive_rollout() -> Rollout {
    let steps = "        - setWeight: 10\n        - pause: {duration: 30s}\n        - analysis: {templates: [errors]}\n        - setWeight: 50\n";
    let adaptive = "        - adaptive: {maxWeight: 40, errorBudget: 50, interval: 5s}\n";
    let app = MANIFEST.split("---\n").next().unwrap();
    assert!(app.contains(steps));
    rollout_of(&app.replace(steps, adaptive), 1, 1)
}

/// One look of the adaptive step: `canary` and `baseline` as (requests, errors).
fn look(now: Timestamp, canary: (u64, u64), baseline: (u64, u64)) -> Event {
    let arm = |(requests, errors)| switchyard_analysis::judge::ArmInterval {
        requests,
        errors,
        latency: Vec::new(),
    };
    Event::Judged {
        run: RunRef::Step,
        index: 0,
        interval: Box::new(IntervalObservation {
            at_ms: now.as_millis(),
            canary: arm(canary),
            baseline: arm(baseline),
        }),
        totals: Box::default(),
    }
}

/// The judge's weight reaches the route: the step starts at minWeight, each look sets the
/// weight the judge chose (never above maxWeight), and a canary shown worse rolls back.
#[test]
fn an_adaptive_step_sets_the_weight_its_judge_chooses_and_rolls_back_a_worse_canary() {
    let (mut r, actions) = step(adaptive_rollout(), Event::CanaryStarted, T0);
    assert_eq!((r.weight, &r.phase), (1, &Phase::Analyzing));
    assert!(actions.contains(&Action::SetWeight(1)));
    assert_eq!(r.measurements_due(T0), vec![(RunRef::Step, 0)]);
    // Healthy looks, 1,000 requests per 5 s look at exactly 1 % errors: the weight grows.
    let mut weights = vec![r.weight];
    for i in 1..=40u64 {
        let w = u64::from(r.weight);
        let (r2, _) = step(
            r,
            look(at(5 * i), (10 * w, w / 10), (1000 - 10 * w, 10 - w / 10)),
            at(5 * i),
        );
        r = r2;
        weights.push(r.weight);
    }
    assert_eq!(r.phase, Phase::Analyzing, "{weights:?}");
    assert!(weights.iter().all(|&w| w <= 40), "{weights:?}");
    assert!(*weights.last().unwrap() > 10, "{weights:?}");
    // A canary failing a third of its requests is rolled back within a few looks.
    for i in 41..=60u64 {
        let w = u64::from(r.weight);
        let (r2, _) = step(
            r,
            look(at(5 * i), (10 * w, 10 * w / 3), (1000 - 10 * w, 10)),
            at(5 * i),
        );
        r = r2;
        if r.phase.is_terminal() {
            break;
        }
    }
    assert_eq!(r.phase, Phase::RolledBack);
    assert_eq!(r.weight, 0);
    assert!(
        r.reason.as_deref().unwrap().contains("adaptive-canary"),
        "{:?}",
        r.reason
    );
}
