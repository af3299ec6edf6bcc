use serde_json::json;

use super::*;

fn notice(event_kind: EventKind, kind: NotificationKind) -> Notice {
    Notice {
        kind,
        event_kind,
        event: 42,
        key: "ops-42".into(),
        at: "2026-12-07T10:00:00.000Z".into(),
        app: Some("shop-us".into()),
        environment: Some("production".into()),
        version: Some("v3".into()),
        stable: Some("v2".into()),
        undo: false,
        rollout: Some(7),
        subject: None,
        run: None,
        stage: None,
        actor: "policy".into(),
        reason: "error rate 1.000 above 0.05 <for> 3 checks".into(),
        data: json!({}),
        links: vec![
            ("incident", "https://sy.example/ui/incidents/7".into()),
            (
                "report",
                "https://sy.example/api/v1/incidents/7/report".into(),
            ),
        ],
    }
}

#[test]
fn the_webhook_body_says_what_why_and_where_to_look() {
    let body = notice(EventKind::RolledBack, NotificationKind::RolloutRolledBack).webhook();
    assert_eq!(body["id"], "ops-42");
    assert_eq!(body["type"], "rollout.rolled_back");
    assert_eq!(body["title"], "shop-us v3: rolled back");
    assert_eq!(body["stable"], "v2");
    assert_eq!(
        body["links"]["incident"],
        "https://sy.example/ui/incidents/7"
    );
}

#[test]
fn slack_gets_block_kit_with_the_reason_escaped_and_a_button() {
    let body = notice(EventKind::RolledBack, NotificationKind::RolloutRolledBack).slack();
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains(":rotating_light: shop-us v3")
    );
    assert_eq!(
        blocks[1]["text"]["text"],
        "*Why:* error rate 1.000 above 0.05 &lt;for&gt; 3 checks"
    );
    let actions = blocks.last().unwrap();
    assert_eq!(actions["type"], "actions");
    assert_eq!(
        actions["elements"][0]["url"],
        "https://sy.example/ui/incidents/7"
    );
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("shop-us v3: rolled back")
    );
}

#[test]
fn cdevents_name_the_version_traffic_went_back_to_and_skip_what_they_cannot_say() {
    let n = notice(EventKind::RolledBack, NotificationKind::RolloutRolledBack);
    let ce = n.cdevent("/switchyard/prod").unwrap();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["type"], "dev.cdevents.service.rolledback.0.2.0");
    assert_eq!(ce["data"]["context"]["version"], "0.4.1");
    assert_eq!(
        ce["data"]["subject"]["content"]["artifactId"],
        "pkg:generic/shop-us@v2"
    );
    assert_eq!(
        ce["data"]["subject"]["content"]["environment"]["id"],
        "production"
    );
    let mut first = notice(EventKind::Promoted, NotificationKind::RolloutPromoted);
    first.rollout = None;
    assert_eq!(
        first.cdevent("/s").unwrap()["type"],
        "dev.cdevents.service.deployed.0.2.0"
    );
    let mut undo = notice(EventKind::Promoted, NotificationKind::RolloutPromoted);
    undo.undo = true;
    let ce = undo.cdevent("/s").unwrap();
    assert_eq!(ce["type"], "dev.cdevents.service.rolledback.0.2.0");
    assert_eq!(
        ce["data"]["subject"]["content"]["artifactId"],
        "pkg:generic/shop-us@v3"
    );
    let step = notice(EventKind::StepStarted, NotificationKind::RolloutStep);
    assert_eq!(step.cdevent("/s"), None);
    assert_eq!(body(&step, SinkKind::CdEvents, None), None);
}

#[test]
fn a_finished_pipeline_run_says_its_outcome() {
    let mut n = notice(
        EventKind::PipelineFinished,
        NotificationKind::PipelineFinished,
    );
    n.subject = Some("pipeline/shop".into());
    n.run = Some(3);
    n.data = json!({"phase": "RolledBack"});
    n.links = vec![(
        "pipeline",
        "https://sy.example/api/v1/pipelines/shop".into(),
    )];
    let ce = n.cdevent("/s").unwrap();
    let subject = &ce["data"]["subject"];
    assert_eq!(subject["id"], "pipeline/shop/runs/3");
    assert_eq!(subject["content"]["outcome"], "failure");
    assert_eq!(
        subject["content"]["url"],
        "https://sy.example/api/v1/pipelines/shop"
    );
}

#[test]
fn approval_steps_are_their_own_kind() {
    assert_eq!(
        kind_of(
            EventKind::StepStarted,
            &json!({"step": 2, "awaiting": "approval"})
        ),
        Some(NotificationKind::RolloutAwaitingApproval)
    );
    assert_eq!(
        kind_of(EventKind::StepStarted, &json!({"step": 2})),
        Some(NotificationKind::RolloutStep)
    );
    assert_eq!(kind_of(EventKind::Measurement, &json!({})), None);
}

#[test]
fn the_signature_is_the_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
