//! Experiments in the store: events become per-variant aggregates in one transaction per batch,
//! idempotency keys are never counted twice, stops are recorded.

use std::collections::BTreeMap;

use switchyard_experiments::port::{ExperimentStatus, ExperimentStore, Ingested};
use switchyard_experiments::{CompiledExperiment, ValidEvent, validate_batch};

use super::*;

pub(super) const EXPERIMENT: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout-redesign}
spec:
  split: {flag: {unit: userId}}
  variants:
    - {name: control, weight: 50}
    - {name: redesign, weight: 50}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: revenue, continuous: {event: purchase}}
"#;

pub(super) fn compiled(set: &ManifestSet) -> BTreeMap<String, CompiledExperiment> {
    set.experiments
        .iter()
        .map(|e| (e.key().to_owned(), CompiledExperiment::new(e).unwrap()))
        .collect()
}

pub(super) fn batch(
    experiments: &BTreeMap<String, CompiledExperiment>,
    events: serde_json::Value,
) -> Vec<ValidEvent> {
    let checked = validate_batch(&json!({ "events": events }), experiments, at(10_000)).unwrap();
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    checked.events
}

/// A purchase of `unit` in experiment `key` at `time`.
fn purchase(key: &str, id: &str, unit: &str, value: f64, time: &str) -> serde_json::Value {
    json!({"id": id, "experiment": key, "unit": unit, "event": "purchase", "value": value,
           "timestamp": time})
}

/// The exposure of `unit` to `variant` of experiment `key` at `time`.
fn exposure(key: &str, id: &str, unit: &str, variant: &str, time: &str) -> serde_json::Value {
    json!({"id": id, "experiment": key, "unit": unit, "event": "$exposure",
           "variant": variant, "timestamp": time})
}

/// Validates `events` as of `now` and ingests them in one batch; every one must be counted.
async fn ingest_counted(
    lab: &dyn ExperimentStore,
    experiments: &BTreeMap<String, CompiledExperiment>,
    events: serde_json::Value,
    now: Timestamp,
) {
    let checked = validate_batch(&json!({ "events": events }), experiments, now).unwrap();
    assert!(checked.errors.is_empty(), "{:?}", checked.errors);
    let outcomes = lab
        .ingest(experiments, &checked.events, false, at(5_000))
        .await
        .unwrap();
    assert_eq!(outcomes, vec![Ingested::Counted; checked.events.len()]);
}

async fn events_become_aggregates_once_and_stops_are_recorded(backend: Backend) {
    let (fx, store) = open(backend).await;
    let lab = fx.experiments();
    let set = manifests(EXPERIMENT);
    store
        .apply(&set, &Author::system("user:test"), at(1_000))
        .await
        .unwrap();
    let experiments = compiled(&set);
    let record = lab.experiment("checkout-redesign").await.unwrap().unwrap();
    assert_eq!(record.status, ExperimentStatus::Running);
    assert_eq!(record.started_at, at(1_000));

    let events = batch(
        &experiments,
        json!([
            // Before exposure: the covariate of u1.
            {"id": "p1", "experiment": "checkout-redesign", "unit": "u1", "event": "purchase", "value": 5.0, "timestamp": "1970-01-01T00:00:01.500Z"},
            {"id": "x1", "experiment": "checkout-redesign", "unit": "u1", "event": "$exposure", "variant": "redesign", "timestamp": "1970-01-01T00:00:02Z"},
            {"id": "x2", "experiment": "checkout-redesign", "unit": "u2", "event": "$exposure", "variant": "control", "timestamp": "1970-01-01T00:00:02Z"},
            {"id": "e1", "experiment": "checkout-redesign", "unit": "u1", "event": "purchase", "value": 20.0, "timestamp": "1970-01-01T00:00:03Z"},
            {"id": "e2", "experiment": "checkout-redesign", "unit": "u1", "event": "purchase", "value": 10.0, "timestamp": "1970-01-01T00:00:04Z"},
            {"id": "x3", "experiment": "checkout-redesign", "unit": "u2", "event": "$exposure", "variant": "redesign"}
        ]),
    );
    let outcomes = lab
        .ingest(&experiments, &events, true, at(5_000))
        .await
        .unwrap();
    assert_eq!(outcomes[..5], vec![Ingested::Counted; 5][..]);
    assert!(
        matches!(&outcomes[5], Ingested::Rejected { message } if message.contains("assigned to variant `control`")),
        "{outcomes:?}"
    );

    // The same events again: nothing is counted twice.
    let again = lab
        .ingest(&experiments, &events[..5], false, at(6_000))
        .await
        .unwrap();
    assert_eq!(again, vec![Ingested::Duplicate; 5]);

    let data = lab.data("checkout-redesign").await.unwrap().unwrap();
    let redesign = &data.variants["redesign"];
    assert_eq!(redesign.units, 1);
    let revenue = redesign.metrics["revenue"];
    assert_eq!((revenue.n, revenue.sum_x, revenue.sum_x2), (1, 30.0, 900.0));
    assert_eq!(
        (revenue.sum_c, revenue.sum_xc),
        (5.0, 150.0),
        "pre-exposure covariate"
    );
    let purchased = redesign.metrics["purchased"];
    assert_eq!((purchased.sum_x, purchased.sum_c), (1.0, 1.0));
    let control = &data.variants["control"];
    assert_eq!(control.units, 1);
    assert_eq!(control.metrics["revenue"].sum_x, 0.0);

    assert!(
        lab.stop(
            "checkout-redesign",
            "guardrail `revenue` violated",
            &Author::system("guardrail"),
            at(7_000)
        )
        .await
        .unwrap()
    );
    assert!(
        !lab.stop(
            "checkout-redesign",
            "again",
            &Author::system("user:test"),
            at(8_000)
        )
        .await
        .unwrap(),
        "a stopped experiment stays stopped"
    );
    let record = lab.experiment("checkout-redesign").await.unwrap().unwrap();
    assert!(
        matches!(&record.status, ExperimentStatus::Stopped { reason, .. } if reason.contains("guardrail")),
        "{:?}",
        record.status
    );
    let late = batch(
        &experiments,
        json!([
            {"id": "x9", "experiment": "checkout-redesign", "unit": "u9", "event": "$exposure", "variant": "control"},
            {"id": "e9", "experiment": "checkout-redesign", "unit": "u1", "event": "purchase", "value": 1.0}
        ]),
    );
    let outcomes = lab
        .ingest(&experiments, &late, false, at(9_000))
        .await
        .unwrap();
    assert!(matches!(&outcomes[0], Ingested::Rejected { message } if message.contains("stopped")));
    assert_eq!(
        outcomes[1],
        Ingested::Counted,
        "late conversions of exposed units still count"
    );
    let logged = store
        .events(&EventQuery {
            kinds: vec![EventKind::ExperimentStopped],
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(logged.len(), 1);
}

/// A window counts only the events from its delay after the exposure until its end; a cap
/// counts a unit's value (and its covariate) at most at the cap, and the moments follow the
/// capped value through every later change.
async fn windows_and_caps_shape_what_each_unit_counts_for(backend: Backend) {
    let (fx, store) = open(backend).await;
    let lab = fx.experiments();
    let set = manifests(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: windowed}
spec:
  split: {flag: {unit: userId}}
  variants: [{name: control, weight: 50}, {name: new, weight: 50}]
  metrics:
    - {name: bought-within-a-day, conversion: {event: purchase}, window: {delay: 1h, duration: 1day}}
    - {name: revenue, continuous: {event: purchase}, cap: {value: 100}}
"#,
    );
    store
        .apply(&set, &Author::system("user:test"), at(1_000))
        .await
        .unwrap();
    let experiments = compiled(&set);
    let event =
        |id: &str, unit: &str, value: f64, time: &str| purchase("windowed", id, unit, value, time);
    let exposure =
        |id: &str, unit: &str| exposure("windowed", id, unit, "new", "1970-01-02T00:00:00Z");
    let events = json!([
        // Before exposure: capped covariate 100 (of 150).
        event("pre", "a", 150.0, "1970-01-01T12:00:00Z"),
        exposure("xa", "a"),
        exposure("xb", "b"),
        exposure("xc", "c"),
        // a: within the first hour (outside the window), then 60 + 70 = 130 revenue.
        event("a1", "a", 60.0, "1970-01-02T00:30:00Z"),
        event("a2", "a", 70.0, "1970-01-02T02:00:00Z"),
        // b: inside the window.
        event("b1", "b", 10.0, "1970-01-02T05:00:00Z"),
        // c: after the window ends (25 h after the exposure).
        event("c1", "c", 20.0, "1970-01-03T01:00:00Z"),
    ]);
    ingest_counted(lab.as_ref(), &experiments, events, at(3 * 86_400_000)).await;
    let data = lab.data("windowed").await.unwrap().unwrap();
    let new = &data.variants["new"];
    let bought = new.metrics["bought-within-a-day"];
    // a (02:00) and b converted within the window; c did not, a's 00:30 purchase is too early.
    assert_eq!((bought.n, bought.sum_x), (3, 2.0));
    let revenue = new.metrics["revenue"];
    // a: 130 capped at 100, b: 10, c: 20; a's covariate 150 capped at 100.
    assert_eq!(
        (revenue.sum_x, revenue.sum_x2),
        (130.0, 10_000.0 + 100.0 + 400.0)
    );
    assert_eq!((revenue.sum_c, revenue.sum_xc), (100.0, 10_000.0));
}

/// With a lookback, events before a unit's exposure make its covariate only within the
/// lookback, whether they arrive before the exposure (kept with their times across batches until
/// it) or after it; a percentile cap is the quantile of every exposed unit's value, read in one
/// query, and the recount caps each unit's value and covariate at it.
async fn a_lookback_and_a_percentile_cap_count_from_each_units_exposure(backend: Backend) {
    let (fx, store) = open(backend).await;
    let lab = fx.experiments();
    let set = manifests(
        r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: looked-back}
spec:
  split: {flag: {unit: userId}}
  variants: [{name: control, weight: 50}, {name: new, weight: 50}]
  metrics:
    - {name: revenue, continuous: {event: purchase}, cap: {percentile: 0.5}}
  analysis: {cupedLookback: 1day}
"#,
    );
    store
        .apply(&set, &Author::system("user:test"), at(1_000))
        .await
        .unwrap();
    let experiments = compiled(&set);
    let event = |id: &str, unit: &str, value: f64, time: &str| {
        purchase("looked-back", id, unit, value, time)
    };
    // Every exposure at 1970-01-05T00:00:00Z.
    let exposure = |id: &str, unit: &str, variant: &str| {
        exposure("looked-back", id, unit, variant, "1970-01-05T00:00:00Z")
    };
    let batches = [
        // a, before its exposure is known: 2.5 days before it (out), then 12 h before (in).
        json!([event("a-out", "a", 7.0, "1970-01-02T12:00:00Z")]),
        json!([event("a-in", "a", 3.0, "1970-01-04T12:00:00Z")]),
        json!([
            exposure("xa", "a", "new"),
            exposure("xb", "b", "new"),
            exposure("xc", "c", "control"),
            exposure("xd", "d", "control"),
            event("a1", "a", 50.0, "1970-01-05T01:00:00Z"),
            // b's pre-exposure events arrive after its exposure: 3.5 days (out), 1 h (in).
            event("b-out", "b", 11.0, "1970-01-01T12:00:00Z"),
            event("b-in", "b", 2.0, "1970-01-04T23:00:00Z"),
            event("b1", "b", 10.0, "1970-01-05T02:00:00Z"),
            event("d1", "d", 30.0, "1970-01-05T03:00:00Z"),
        ]),
    ];
    for events in batches {
        ingest_counted(lab.as_ref(), &experiments, events, at(6 * 86_400_000)).await;
    }
    let mut data = lab.data("looked-back").await.unwrap().unwrap();
    let new = data.variants["new"].metrics["revenue"];
    // a: 50 after, 3 within the lookback; b: 10 after, 2 within it.
    assert_eq!(
        (new.n, new.sum_x, new.sum_c, new.sum_xc),
        (2, 60.0, 5.0, 150.0 + 20.0)
    );
    let control = data.variants["control"].metrics["revenue"];
    assert_eq!((control.n, control.sum_x, control.sum_c), (2, 30.0, 0.0));

    let units = lab
        .exposed_units("looked-back", &["revenue".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        units.units,
        BTreeMap::from([("control".to_owned(), 2), ("new".to_owned(), 2)])
    );
    // c never had an event: no value, a zero.
    assert_eq!(units.values["revenue"].len(), 3);
    switchyard_experiments::data::percentile_caps(&experiments["looked-back"], &mut data, &units);
    // The median of 0, 10, 30, 50 is 20.
    assert_eq!(data.caps["revenue"], 20.0);
    let new = data.variants["new"].metrics["revenue"];
    assert_eq!(
        (new.n, new.sum_x, new.sum_x2, new.sum_c, new.sum_xc),
        (2, 30.0, 500.0, 5.0, 60.0 + 20.0)
    );
    let control = data.variants["control"].metrics["revenue"];
    assert_eq!((control.n, control.sum_x), (2, 20.0));
}

async fn snapshots_read_back_in_time_order(backend: Backend) {
    let (fx, store) = open(backend).await;
    let lab = fx.experiments();
    store
        .apply(
            &manifests(EXPERIMENT),
            &Author::system("user:test"),
            at(1_000),
        )
        .await
        .unwrap();
    for ms in [3_000, 2_000] {
        let snapshot = switchyard_experiments::Snapshot {
            at: at(ms),
            units: vec![("control".into(), ms / 1000)],
            points: Vec::new(),
        };
        lab.add_snapshot("checkout-redesign", &snapshot)
            .await
            .unwrap();
    }
    let read = lab.snapshots("checkout-redesign").await.unwrap();
    assert_eq!(
        read.iter().map(|s| s.at).collect::<Vec<_>>(),
        vec![at(2_000), at(3_000)]
    );
}

on_both_backends!(
    events_become_aggregates_once_and_stops_are_recorded,
    windows_and_caps_shape_what_each_unit_counts_for,
    a_lookback_and_a_percentile_cap_count_from_each_units_exposure,
    snapshots_read_back_in_time_order,
);
