#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use switchyard_core::manifest::load_str;

use super::*;

const NOW: Timestamp = Timestamp(1_714_564_800_000); // 2024-05-01T12:00:00Z

const EXPERIMENTS: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout}
spec:
  split: {flag: {}}
  variants: [{name: control, weight: 1}, {name: redesign, weight: 1}]
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - name: revenue-per-visit
      ratio: {numerator: {sum: purchase}, denominator: {count: visit}}
---
apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: shop}
spec:
  split: {traffic: {app: shop, unit: {header: x-user}}}
  variants: [{name: v1, weight: 1, version: v1}, {name: v2, weight: 1, version: v2}]
  metrics: [{name: $errors}]
"#;

fn catalog() -> BTreeMap<String, CompiledExperiment> {
    load_str(EXPERIMENTS, Path::new("e.yaml"))
        .unwrap()
        .experiments
        .iter()
        .map(|e| (e.key().to_owned(), CompiledExperiment::new(e).unwrap()))
        .collect()
}

fn event(id: &str, name: &str) -> Value {
    json!({"id": id, "experiment": "checkout", "unit": "user-1", "event": name})
}

fn check(events: Vec<Value>) -> ValidatedBatch {
    validate_batch(&json!({ "events": events }), &catalog(), NOW).unwrap()
}

fn only_error(events: Vec<Value>) -> EventError {
    let batch = check(events);
    assert!(batch.events.is_empty(), "{batch:?}");
    assert_eq!(batch.errors.len(), 1, "{batch:?}");
    batch.errors.into_iter().next().unwrap()
}

fn with(mut value: Value, field: &str, v: Value) -> Value {
    value[field] = v;
    value
}

#[test]
fn exposures_and_metric_events_are_accepted_with_defaults() {
    let exposure = with(event("e1", "$exposure"), "variant", json!("redesign"));
    let purchase = with(
        with(event("e2", "purchase"), "value", json!(12.5)),
        "timestamp",
        json!("2024-05-01T13:59:00+02:00"),
    );
    let visit = event("e3", "visit");
    let batch = check(vec![exposure, purchase, visit]);
    assert!(batch.errors.is_empty(), "{:?}", batch.errors);
    assert_eq!(batch.events.len(), 3);
    assert_eq!(
        batch.events[0].kind,
        EventKind::Exposure {
            variant: "redesign".into()
        }
    );
    assert_eq!(batch.events[0].at, NOW, "no timestamp: received now");
    assert_eq!(
        batch.events[1].kind,
        EventKind::Metric {
            event: "purchase".into(),
            value: 12.5,
            variant: None
        }
    );
    assert_eq!(batch.events[1].at, Timestamp(NOW.0 - 60_000));
    let visit = batch.events[2].unit_event().unwrap();
    assert_eq!(
        (visit.name, visit.value),
        ("visit", 1.0),
        "value defaults to 1"
    );
    assert!(batch.events[0].unit_event().is_none());
    let json = serde_json::to_value(&batch.events[0]).unwrap();
    assert_eq!(json["type"], "exposure");
    assert_eq!(json["variant"], "redesign");
}

#[test]
fn each_problem_names_its_field() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(event("e", "purchase"), "experiment", json!("nope")),
            "/events/0/experiment",
            "unknown experiment `nope`",
        ),
        (
            with(event("e", "purchase"), "variant", json!("blue")),
            "/events/0/variant",
            "has no variant `blue`; its variants are `control`, `redesign`",
        ),
        (
            event("e", "click"),
            "/events/0/event",
            "no metric of experiment `checkout` reads event `click`; it reads `purchase`, `visit`",
        ),
        (
            with(event("e", "purchase"), "value", json!("12")),
            "/events/0/value",
            "expected a number, got a string",
        ),
        (
            with(event("e", "purchase"), "unit", json!(42)),
            "/events/0/unit",
            "expected a string, got a number",
        ),
        (
            with(event("e", "purchase"), "unit", json!("")),
            "/events/0/unit",
            "must not be empty",
        ),
        (
            with(event("e", "purchase"), "id", json!("x".repeat(129))),
            "/events/0/id",
            "at most 128 characters",
        ),
        (
            with(
                event("e", "purchase"),
                "timestamp",
                json!("2024-05-01T12:06:00Z"),
            ),
            "/events/0/timestamp",
            "360 s in the future",
        ),
        (
            with(event("e", "purchase"), "timestamp", json!("yesterday")),
            "/events/0/timestamp",
            "not an RFC 3339 date-time",
        ),
        (
            with(event("e", "purchase"), "colour", json!("red")),
            "/events/0/colour",
            "unknown field `colour`",
        ),
        (
            with(event("e", "purchase"), "a/b", json!(1)),
            "/events/0/a~1b",
            "unknown field `a/b`",
        ),
        (
            event("e", "$exposure"),
            "/events/0/variant",
            "an exposure needs the `variant`",
        ),
        (
            event("e", "$request"),
            "/events/0/event",
            "recorded by the proxy",
        ),
        (
            json!({"experiment": "checkout", "unit": "u", "event": "visit"}),
            "/events/0/id",
            "missing field `id`",
        ),
        (
            json!("purchase"),
            "/events/0",
            "expected an event object, got a string",
        ),
    ];
    for (value, pointer, message) in cases {
        let e = only_error(vec![value]);
        assert_eq!(e.index, 0);
        assert_eq!(e.pointer, pointer, "{message}");
        assert!(
            e.message.contains(message),
            "{pointer}: {} lacks {message:?}",
            e.message
        );
    }
}

#[test]
fn five_minutes_of_clock_skew_are_accepted() {
    let at = |text: &str| with(event("e", "visit"), "timestamp", json!(text));
    assert!(check(vec![at("2024-05-01T12:05:00Z")]).errors.is_empty());
    assert_eq!(check(vec![at("2024-05-01T12:05:00.001Z")]).errors.len(), 1);
    assert!(
        check(vec![at("2020-01-01T00:00:00Z")]).errors.is_empty(),
        "the past is fine"
    );
}

#[test]
fn every_problem_of_an_event_is_reported() {
    let bad =
        json!({"id": 7, "experiment": "checkout", "unit": "u", "event": "$exposure", "value": 3});
    let batch = check(vec![bad]);
    let pointers: Vec<&str> = batch.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        ["/events/0/id", "/events/0/value", "/events/0/variant"]
    );
}

#[test]
fn builtin_events_and_exposures_of_traffic_experiments() {
    let request = json!({"id": "r", "experiment": "shop", "unit": "u", "event": "$server_error"});
    let e = only_error(vec![request]);
    assert!(e.message.contains("recorded by the proxy"), "{}", e.message);
    let exposure = json!({"id": "x", "experiment": "shop", "unit": "u", "event": "$exposure", "variant": "v2"});
    assert_eq!(check(vec![exposure]).events.len(), 1);
    let other = json!({"id": "o", "experiment": "shop", "unit": "u", "event": "purchase"});
    let e = only_error(vec![other]);
    assert!(
        e.message.contains("it reads no client events"),
        "{}",
        e.message
    );
}

#[test]
fn duplicate_ids_in_a_batch_count_once() {
    let batch = check(vec![
        event("a", "visit"),
        event("b", "visit"),
        event("a", "purchase"),
        with(event("c", "visit"), "experiment", json!("nope")),
        event("c", "visit"),
    ]);
    let accepted: Vec<(usize, &str)> = batch
        .events
        .iter()
        .map(|e| (e.index, e.id.as_str()))
        .collect();
    assert_eq!(accepted, [(0, "a"), (1, "b")]);
    let errors: Vec<(&str, &str)> = batch
        .errors
        .iter()
        .map(|e| (e.pointer.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (
                "/events/2/id",
                "duplicate id `a`: the same event is at /events/0"
            ),
            ("/events/3/experiment", "unknown experiment `nope`"),
            (
                "/events/4/id",
                "duplicate id `c`: the same event is at /events/3"
            ),
        ]
    );
}

#[test]
fn every_event_is_either_accepted_or_refused() {
    let events: Vec<Value> = (0..50)
        .map(|i| match i % 5 {
            0 => event(&format!("e{i}"), "visit"),
            1 => event(&format!("e{i}"), "click"),
            2 => with(event(&format!("e{i}"), "purchase"), "value", json!(i)),
            3 => event(&format!("e{}", i - 3), "visit"),
            _ => json!(null),
        })
        .collect();
    let batch = check(events);
    let mut seen: Vec<usize> = batch.events.iter().map(|e| e.index).collect();
    let refused: std::collections::BTreeSet<usize> = batch.errors.iter().map(|e| e.index).collect();
    assert!(seen.iter().all(|i| !refused.contains(i)));
    seen.extend(refused);
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<_>>());
}

#[test]
fn malformed_batches_are_refused_whole() {
    let cat = catalog();
    let run = |body: Value| validate_batch(&body, &cat, NOW).unwrap_err();
    assert_eq!(run(json!([1])), BatchError::NotAnObject);
    assert_eq!(run(json!({})), BatchError::MissingEvents);
    assert_eq!(run(json!({"events": {}})), BatchError::EventsNotAnArray);
    let e = run(json!({"events": [], "extra": 1}));
    assert_eq!(e, BatchError::UnknownField("extra".into()));
    assert_eq!(e.pointer(), "/extra");
    let big: Vec<Value> = (0..=MAX_BATCH_EVENTS)
        .map(|i| event(&i.to_string(), "visit"))
        .collect();
    let e = run(json!({ "events": big }));
    assert_eq!(
        e,
        BatchError::TooLarge {
            count: 1001,
            max: 1000
        }
    );
    assert_eq!(
        e.to_string(),
        "a batch holds at most 1000 events, got 1001: split it"
    );
    assert_eq!(e.pointer(), "/events");
    let full: Vec<Value> = (0..MAX_BATCH_EVENTS)
        .map(|i| event(&i.to_string(), "visit"))
        .collect();
    assert_eq!(check(full).events.len(), MAX_BATCH_EVENTS);
    assert!(check(Vec::new()).events.is_empty());
}

#[test]
fn a_slice_is_a_catalog_too() {
    let list: Vec<CompiledExperiment> = catalog().into_values().collect();
    let body = json!({"events": [event("e", "visit")]});
    assert_eq!(
        validate_batch(&body, list.as_slice(), NOW)
            .unwrap()
            .events
            .len(),
        1
    );
}

/// Arbitrary JSON, biased towards the batch's own field names and values.
fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let word = prop::sample::select(vec![
        "events",
        "id",
        "experiment",
        "unit",
        "event",
        "value",
        "variant",
        "timestamp",
        "checkout",
        "shop",
        "purchase",
        "visit",
        "$exposure",
        "$request",
        "control",
        "redesign",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00+02:00",
        "9999-12-31T23:59:59Z",
        "",
        "é/~",
    ])
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word.clone().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(word.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn arbitrary_bodies_never_panic_and_every_event_is_accounted_for(body in json_value()) {
        let cat = catalog();
        let wrapped = serde_json::json!({"events": [body, body]});
        for candidate in [body, wrapped] {
            if let Ok(batch) = validate_batch(&candidate, &cat, NOW) {
                let n = candidate["events"].as_array().map_or(0, Vec::len);
                let mut seen: std::collections::BTreeSet<usize> =
                    batch.events.iter().map(|e| e.index).collect();
                seen.extend(batch.errors.iter().map(|e| e.index));
                proptest::prop_assert_eq!(seen.len(), n);
            }
        }
    }
}
