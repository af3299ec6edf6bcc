//! The controller over fake ports (runtime, router, provider, clock) and the real SQLite store
//! in memory: commands with preconditions, the per-rollout error policy, concurrent ticks, and
//! the traffic owner's claims.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::manifest::load_str;
use switchyard_core::ports::{Author, StateStore};
use switchyard_store::SqliteStore;
use tokio::sync::Notify;

use super::*;
use crate::testing::{
    AlwaysPasses, GatedProvider, NoTraffic, RecordingRouter, RecordingRuntime, TestClock,
};
use crate::traffic::{NoSplits, SplitClaims};

const START: u64 = 1_700_000_000_000;

fn app(name: &str, steps: &str) -> String {
    format!(
        "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {{name: {name}}}
spec:
  listen: 127.0.0.1:0
  runtime: {{process: {{command: [sh, '{{version}}']}}}}
  healthCheck: {{path: /health}}
  strategy: {{canary: {{steps: {steps}}}}}
---
"
    )
}

const TEMPLATE: &str = "apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: gated}
spec:
  metrics:
    - name: value
      provider: {builtin: {metric: error_rate}}
      successCondition: result < 1
      interval: 1s
      count: 1
";

struct World {
    store: SqliteStore,
    router: Arc<RecordingRouter>,
    clock: Arc<TestClock>,
    gate: Arc<Notify>,
    controller: Arc<Controller>,
}

async fn world(manifests: &str, claims: Arc<dyn SplitClaims>) -> World {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let set = load_str(manifests, Path::new("test.yaml")).unwrap();
    store
        .apply(&set, &Author::system("test"), Timestamp::from_millis(START))
        .await
        .unwrap();
    let router = Arc::new(RecordingRouter::default());
    let clock = Arc::new(TestClock::at(START));
    let gate = Arc::new(Notify::new());
    let controller = Arc::new(Controller::new(ControllerPorts {
        policy: crate::testing::policy(),
        store: Arc::new(store.clone()),
        runtime: Arc::new(RecordingRuntime::default()),
        traffic: Arc::new(TrafficOwner::new(router.clone(), claims)),
        metrics: Arc::new(NoTraffic),
        provider: Arc::new(GatedProvider {
            gate: Arc::clone(&gate),
            value: 0.0,
        }),
        smoke: Arc::new(AlwaysPasses),
        hooks: Arc::new(AlwaysPasses),
        clock: clock.clone(),
    }));
    World {
        store,
        router,
        clock,
        gate,
        controller,
    }
}

fn name(text: &str) -> AppName {
    AppName::new(text).unwrap()
}

fn version(text: &str) -> DeployRequest {
    DeployRequest {
        version: Some(Version::new(text).unwrap()),
        ..DeployRequest::default()
    }
}

impl World {
    /// v1 as the first release, then a rollout of v2.
    async fn roll_out(&self, app: &str) -> RolloutSnapshot {
        let app = name(app);
        let c = &self.controller;
        assert!(
            c.deploy(&app, &version("v1"), &Author::system("test"))
                .await
                .unwrap()
                .is_none()
        );
        c.deploy(&app, &version("v2"), &Author::system("test"))
            .await
            .unwrap()
            .unwrap()
    }

    async fn latest(&self, app: &str) -> RolloutSnapshot {
        self.controller.latest(&name(app)).await.unwrap().unwrap()
    }

    /// Waits (on the condition, not on time) until no rollout is being ticked but `left`.
    async fn ticks_settled(&self, left: usize) {
        for _ in 0..2000 {
            if self.controller.ticking.len() <= left {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("ticks did not finish");
    }
}

#[tokio::test]
async fn a_first_release_is_deployed_once_the_proxies_serve_it() {
    let w = world(&app("shop", "[{setWeight: 20}]"), Arc::new(NoSplits)).await;
    w.router.hold_acknowledgements();
    let deploy = {
        let c = Arc::clone(&w.controller);
        tokio::spawn(async move {
            c.deploy(&name("shop"), &version("v1"), &Author::system("test"))
                .await
        })
    };
    // Routed, but not yet acknowledged: the deploy waits.
    for _ in 0..2000 {
        if !w.router.weights(&name("shop")).0.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        w.router.weights(&name("shop")).0,
        vec![("v1".to_owned(), 100)]
    );
    tokio::task::yield_now().await;
    assert!(
        !deploy.is_finished(),
        "returned before the proxies served it"
    );
    w.router.acknowledge();
    assert!(deploy.await.unwrap().unwrap().is_none());
}

#[tokio::test]
async fn two_promotes_from_the_same_view_move_one_step_and_the_second_is_stale() {
    let w = world(
        &app(
            "shop",
            "[{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {}}, {setWeight: 100}]",
        ),
        Arc::new(NoSplits),
    )
    .await;
    let seen = w.roll_out("shop").await;
    assert_eq!((seen.rollout.step, seen.rollout.weight), (1, 20));
    let expected = Some(Expected {
        rollout: seen.id,
        step: Some(seen.rollout.step),
    });
    let promote = || Command::Promote { full: false };
    let shop = name("shop");
    let (alice, bob) = (Author::system("alice"), Author::system("bob"));
    let (first, second) = tokio::join!(
        w.controller.command(&shop, promote(), expected, &alice),
        w.controller.command(&shop, promote(), expected, &bob),
    );
    let (ok, stale) = match (first, second) {
        (Ok(ok), Err(stale)) | (Err(stale), Ok(ok)) => (ok, stale),
        other => panic!("one promote should win and one be stale: {other:?}"),
    };
    assert_eq!((ok.rollout.step, ok.rollout.weight), (3, 50));
    let ControllerError::Stale {
        expected_step,
        current_step,
        current,
        ..
    } = stale
    else {
        panic!("not stale: {stale}");
    };
    assert_eq!((expected_step, current_step), (Some(1), 3));
    assert_eq!(
        current.rollout.weight, 50,
        "the 409 carries the current state"
    );
    assert_eq!(
        w.latest("shop").await.rollout.weight,
        50,
        "20 % -> 50 %, not 100 %"
    );

    // Without an expectation (`--force`), the command applies to whatever is current.
    let forced = w
        .controller
        .command(&shop, promote(), None, &Author::system("carol"))
        .await;
    assert_eq!(forced.unwrap().rollout.weight, 100);
}

#[tokio::test]
async fn a_command_for_an_older_rollout_is_stale() {
    let w = world(
        &app("shop", "[{setWeight: 20}, {pause: {}}]"),
        Arc::new(NoSplits),
    )
    .await;
    let seen = w.roll_out("shop").await;
    let abort = Command::Abort { reason: None };
    let shop = name("shop");
    let expected = Some(Expected {
        rollout: seen.id + 1,
        step: None,
    });
    let err = w
        .controller
        .command(&shop, abort, expected, &Author::system("alice"))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Stale { .. }), "{err}");
    assert_eq!(w.latest("shop").await.rollout.phase.name(), "Paused");
}

#[tokio::test]
async fn a_rollout_whose_state_cannot_be_read_is_backed_off_and_the_others_go_on() {
    let manifests = app(
        "good",
        "[{setWeight: 20}, {pause: {duration: 10s}}, {setWeight: 60}, {pause: {}}]",
    ) + &app("bad", "[{setWeight: 20}, {pause: {}}]");
    let w = world(&manifests, Arc::new(NoSplits)).await;
    w.roll_out("good").await;
    let bad = w
        .store
        .create_rollout(
            &name("bad"),
            &Version::new("v9").unwrap(),
            "Paused",
            &serde_json::json!({"not": "a rollout"}),
            &[],
        )
        .await
        .unwrap();

    // A restart resumes the good rollout and reports the bad one; it does not fail.
    w.controller.recover().await.unwrap();
    let trouble = w
        .controller
        .trouble(bad)
        .expect("the bad rollout is marked");
    assert_eq!(trouble.failures, 1);
    assert!(
        trouble.error.contains("cannot be read"),
        "{}",
        trouble.error
    );

    w.clock.advance(Duration::from_secs(11));
    w.controller.tick().await.unwrap().finished().await;
    let good = w.latest("good").await;
    assert_eq!(
        (good.rollout.step, good.rollout.weight),
        (3, 60),
        "the good rollout went on"
    );
    assert_eq!(
        w.router.weights(&name("good")).0,
        [("v1".into(), 40), ("v2".into(), 60)]
    );
    let trouble = w.controller.trouble(bad).unwrap();
    assert_eq!(trouble.failures, 2, "retried once its delay passed");
    assert_eq!(trouble.retry_at, w.clock.now().plus(Duration::from_secs(2)));

    // Not due yet: not retried.
    let ticking = w.controller.tick().await.unwrap();
    assert_eq!(ticking.started(), 1, "only the good rollout is ticked");
    ticking.finished().await;
    assert_eq!(w.controller.trouble(bad).unwrap().failures, 2);
}

#[tokio::test]
async fn a_slow_metric_provider_holds_up_only_its_own_rollout() {
    let manifests = app(
        "slow",
        "[{setWeight: 10}, {analysis: {templates: [gated]}}, {setWeight: 30}]",
    ) + &app(
        "fast",
        "[{setWeight: 10}, {pause: {duration: 5s}}, {setWeight: 50}, {pause: {}}]",
    ) + TEMPLATE;
    let w = world(&manifests, Arc::new(NoSplits)).await;
    w.roll_out("slow").await;
    w.roll_out("fast").await;

    let first = w.controller.tick().await.unwrap();
    assert_eq!(first.started(), 2);
    // The fast rollout's tick ends; the slow one waits for its provider.
    w.ticks_settled(1).await;
    w.clock.advance(Duration::from_secs(6));
    let second = w.controller.tick().await.unwrap();
    assert_eq!(
        second.started(),
        1,
        "the slow rollout is still being ticked"
    );
    second.finished().await;
    assert_eq!(
        w.latest("fast").await.rollout.weight,
        50,
        "the fast rollout moved on"
    );
    assert_eq!(w.latest("slow").await.rollout.phase.name(), "Analyzing");

    w.gate.notify_one();
    first.finished().await;
    let slow = w.latest("slow").await;
    assert_eq!(
        (slow.rollout.phase.name(), slow.rollout.weight),
        ("Succeeded", 100)
    );
}

/// Claims every app for experiment `ab`.
struct Claimed;

impl SplitClaims for Claimed {
    fn splitting(&self, _: &AppName) -> Option<String> {
        Some("ab".into())
    }
}

#[tokio::test]
async fn no_release_takes_an_app_a_traffic_experiment_claims() {
    let w = world(&app("shop", "[{setWeight: 20}]"), Arc::new(Claimed)).await;
    let err = w
        .controller
        .deploy(&name("shop"), &version("v1"), &Author::system("test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ControllerError::ExperimentRunning { experiment, .. } if experiment == "ab"),
        "{err}"
    );
    assert_eq!(
        w.router.weights(&name("shop")),
        (vec![], None),
        "no route was written"
    );
}

#[tokio::test]
async fn a_rollout_whose_routes_are_not_in_force_waits_and_says_why() {
    let w = world(
        &app(
            "shop",
            "[{setWeight: 20}, {pause: {duration: 5s}}, {setWeight: 50}, {pause: {}}]",
        ),
        Arc::new(NoSplits),
    )
    .await;
    let id = w.roll_out("shop").await.id;
    w.controller.tick().await.unwrap().finished().await;
    assert_eq!(w.latest("shop").await.rollout.weight, 20);

    // The API server cannot be reached: the pause's deadline passes, the rollout stays.
    w.router.fail_to_apply(Some(
        "updating HTTPRoute shop: the API server cannot be reached",
    ));
    w.clock.advance(Duration::from_secs(6));
    w.controller.tick().await.unwrap().finished().await;
    let r = w.latest("shop").await.rollout;
    assert_eq!(
        (r.weight, r.phase.name()),
        (20, "Paused"),
        "never a silent pass"
    );
    let trouble = w
        .controller
        .trouble(id)
        .expect("the rollout says why it waits");
    assert!(
        trouble.error.contains("cannot be reached"),
        "{}",
        trouble.error
    );

    // Back: the next due tick moves on.
    w.router.fail_to_apply(None);
    w.clock.advance(Duration::from_secs(2));
    w.controller.tick().await.unwrap().finished().await;
    assert_eq!(w.latest("shop").await.rollout.weight, 50);
}
