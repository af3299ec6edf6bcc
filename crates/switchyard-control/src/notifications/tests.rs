//! Who gets what, and how deliveries go: events appended to a real (in-memory SQLite) store,
//! rendered into its outbox, sent to a recording sender that fails as told.

use std::sync::Mutex;

use serde_json::json;
use switchyard_core::Timestamp;
use switchyard_core::manifest::load_str;
use switchyard_core::ports::{Author, EventKind, NewEvent, NotificationStore};
use switchyard_store::SqliteStore;

use super::*;
use crate::testing::TestClock;

const MANIFESTS: &str = "apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop, labels: {environment: production}}
spec:
  listen: 127.0.0.1:0
  notifiers: [hooks, chat]
  runtime: {process: {command: [sh]}}
  strategy: {canary: {steps: [{setWeight: 50}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: quiet}
spec:
  listen: 127.0.0.1:0
  runtime: {process: {command: [sh]}}
  strategy: {canary: {steps: [{setWeight: 50}]}}
---
apiVersion: switchyard.dev/v1alpha1
kind: Pipeline
metadata: {name: fleet}
spec:
  notifiers: [hooks]
  stages: [{name: prod, targets: [shop]}]
---
apiVersion: switchyard.dev/v1alpha1
kind: Notifier
metadata: {name: hooks}
spec:
  webhook: {url: 'https://hooks.example/in', secretEnv: HOOK_KEY}
  dashboardUrl: https://sy.example
---
apiVersion: switchyard.dev/v1alpha1
kind: Notifier
metadata: {name: chat}
spec:
  slack: {url: 'https://slack.example/in'}
  events: [rollout.rolled_back]
---
apiVersion: switchyard.dev/v1alpha1
kind: Notifier
metadata: {name: flags}
spec:
  webhook: {url: 'https://flags.example/in'}
  events: [flag.changed, experiment.stopped]
";

/// One send: the URL, the headers and the body.
type Sent = (String, Vec<(String, String)>, String);

/// Records every send; fails the URLs in `failing`.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<Sent>>,
    failing: Mutex<Vec<String>>,
    /// Sends to this URL wait until it is released.
    hold: Mutex<Option<(String, Arc<tokio::sync::Notify>)>>,
}

#[async_trait::async_trait]
impl NotificationSender for Recorder {
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap()
            .push((url.to_owned(), headers.to_vec(), body.to_owned()));
        let held = self.hold.lock().unwrap().clone();
        if let Some((_, release)) = held.filter(|(u, _)| u == url) {
            release.notified().await;
        }
        if self.failing.lock().unwrap().iter().any(|u| u == url) {
            return Err(format!("{url} answered 503 Service Unavailable"));
        }
        Ok(())
    }
}

fn event(kind: EventKind, app: Option<&str>, data: serde_json::Value) -> NewEvent {
    NewEvent {
        at: Timestamp(5_000),
        app: app.map(|a| AppName::new(a).unwrap()),
        rollout: None,
        kind,
        actor: "alice".into(),
        source: None,
        reason: format!("{} happened", kind.as_str()),
        data,
    }
}

async fn setup() -> (
    SqliteStore,
    Arc<Recorder>,
    Arc<TestClock>,
    Arc<Notifications>,
) {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let state: Arc<dyn StateStore> = Arc::new(store.clone());
    let set = load_str(MANIFESTS, std::path::Path::new("m.yaml")).unwrap();
    state
        .apply(&set, &Author::system("test"), Timestamp(1_000))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let clock = Arc::new(TestClock::at(10_000));
    let service = Arc::new(Notifications::new(
        state,
        Arc::new(store.clone()),
        Arc::clone(&recorder) as Arc<dyn NotificationSender>,
        Arc::clone(&clock) as Arc<dyn Clock>,
        "http://127.0.0.1:7070".into(),
        Arc::new(|name: &str| (name == "HOOK_KEY").then(|| "k".to_owned())),
    ));
    (store, recorder, clock, service)
}

/// Delivers what is due and waits for the attempts; returns how many were delivered.
async fn deliver(service: &Arc<Notifications>) -> usize {
    let mut delivered = 0;
    for task in service.deliver().await.unwrap() {
        delivered += usize::from(task.await.unwrap());
    }
    delivered
}

#[tokio::test]
async fn each_notifier_gets_what_its_apps_pipelines_and_filter_let_through() {
    let (store, recorder, _clock, service) = setup().await;
    // The first pass places the cursor after the apply: history is not told.
    assert_eq!(service.dispatch().await.unwrap(), 0);
    let state: &dyn StateStore = &store;
    state
        .append_events(&[
            event(
                EventKind::RolloutStarted,
                Some("shop"),
                json!({"version": "v2"}),
            ),
            event(
                EventKind::RolloutStarted,
                Some("quiet"),
                json!({"version": "v2"}),
            ),
            event(EventKind::RolledBack, Some("shop"), json!({})),
            event(
                EventKind::PipelineStarted,
                None,
                json!({"subject": "pipeline/fleet", "run": 1, "version": "v2"}),
            ),
            event(EventKind::FlagChanged, None, json!({"key": "new-checkout"})),
            event(EventKind::ExperimentStopped, None, json!({})),
            event(EventKind::Measurement, Some("shop"), json!({})),
        ])
        .await
        .unwrap();
    assert_eq!(service.dispatch().await.unwrap(), 6);
    // Nothing is queued twice.
    assert_eq!(service.dispatch().await.unwrap(), 0);
    let queued = store.notifications(None, 100).await.unwrap();
    let mut got: Vec<(String, String)> = queued
        .iter()
        .map(|n| (n.notification.notifier.clone(), n.notification.kind.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("chat", "rollout.rolled_back"),
            ("flags", "experiment.stopped"),
            ("flags", "flag.changed"),
            ("hooks", "pipeline.started"),
            ("hooks", "rollout.rolled_back"),
            ("hooks", "rollout.started"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(deliver(&service).await, 6);
    let sent = recorder.sent.lock().unwrap().clone();
    let hook = sent
        .iter()
        .find(|(url, _, body)| url == "https://hooks.example/in" && body.contains("rolled_back"))
        .unwrap();
    let header = |name: &str| {
        hook.1
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("x-switchyard-signature-256"),
        Some(render::signature(b"k", hook.2.as_bytes()))
    );
    assert!(header("idempotency-key").unwrap().starts_with("hooks-"));
    let body: serde_json::Value = serde_json::from_str(&hook.2).unwrap();
    assert_eq!(body["environment"], "production");
    assert!(
        body["links"]["dashboard"]
            .as_str()
            .unwrap()
            .starts_with("https://sy.example/ui/apps/shop")
    );
    let flags = sent
        .iter()
        .find(|(url, _, _)| url == "https://flags.example/in")
        .unwrap();
    assert!(
        !flags
            .1
            .iter()
            .any(|(n, _)| n == "x-switchyard-signature-256"),
        "no key, no signature"
    );
}

#[tokio::test]
async fn failed_deliveries_back_off_then_give_up_and_a_missing_key_is_a_failure() {
    let (store, recorder, clock, service) = setup().await;
    service.dispatch().await.unwrap();
    let state: &dyn StateStore = &store;
    state
        .append_events(&[event(EventKind::RolledBack, Some("shop"), json!({}))])
        .await
        .unwrap();
    recorder
        .failing
        .lock()
        .unwrap()
        .push("https://slack.example/in".into());
    let service = Arc::new(Notifications {
        secrets: Arc::new(|_: &str| None),
        in_flight: Default::default(),
        ..Arc::into_inner(service).unwrap()
    });
    service.dispatch().await.unwrap();
    assert_eq!(deliver(&service).await, 0);
    let pending = store.notifications(Some("pending"), 10).await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:#?}");
    for n in &pending {
        assert_eq!(n.attempts, 1);
        assert_eq!(
            n.next_attempt_at,
            Timestamp(11_000),
            "1 s after the first failure"
        );
    }
    let hooks = pending
        .iter()
        .find(|n| n.notification.notifier == "hooks")
        .unwrap();
    assert_eq!(
        hooks.last_error.as_deref(),
        Some("the signing key `HOOK_KEY` is not set in the daemon's environment")
    );
    // Not due before its time; then 2 s, 4 s, ... until given up.
    assert!(service.deliver().await.unwrap().is_empty());
    assert_eq!(
        store.notifications(Some("pending"), 10).await.unwrap()[0].attempts,
        1
    );
    for _ in 1..MAX_ATTEMPTS {
        clock.advance(Duration::from_secs(300));
        deliver(&service).await;
    }
    let failed = store.notifications(Some("failed"), 10).await.unwrap();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|n| n.attempts == MAX_ATTEMPTS));
    assert_eq!(
        store.notification_counts().await.unwrap(),
        [
            ("chat".to_owned(), "failed".to_owned(), 1),
            ("hooks".to_owned(), "failed".to_owned(), 1)
        ]
    );
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(3), Duration::from_secs(4));
    assert_eq!(backoff(11), Duration::from_secs(300));
}

#[tokio::test]
async fn a_receiver_that_hangs_holds_up_only_its_own_notifications() {
    let (store, recorder, _clock, service) = setup().await;
    service.dispatch().await.unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    *recorder.hold.lock().unwrap() =
        Some(("https://hooks.example/in".into(), Arc::clone(&release)));
    let state: &dyn StateStore = &store;
    state
        .append_events(&[event(EventKind::RolledBack, Some("shop"), json!({}))])
        .await
        .unwrap();
    service.dispatch().await.unwrap();
    let mut tasks = service.deliver().await.unwrap();
    assert_eq!(tasks.len(), 2);
    // Slack's answer is recorded while the webhook still hangs.
    let mut done = Vec::new();
    while done.is_empty() {
        tokio::task::yield_now().await;
        let (finished, running): (Vec<_>, Vec<_>) =
            tasks.into_iter().partition(|t| t.is_finished());
        done = finished;
        tasks = running;
    }
    assert!(done.pop().unwrap().await.unwrap());
    let delivered = store.notifications(Some("delivered"), 10).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].notification.notifier, "chat");
    // The hanging one is not started a second time.
    assert!(service.deliver().await.unwrap().is_empty());
    release.notify_one();
    assert!(tasks.pop().unwrap().await.unwrap());
    assert_eq!(
        store
            .notifications(Some("delivered"), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(recorder.sent.lock().unwrap().len(), 2);
}
