//! Hot paths of the experiment engine: validating a full batch of events, applying one event to
//! a unit and its variant's moments, and analysing an experiment from its aggregates — against
//! the same analysis preceded by a scan of every unit's value (what a store without aggregates
//! would have to do), measured in the same run.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchyard_core::Timestamp;
use switchyard_core::manifest::load_str;
use switchyard_experiments::{
    CompiledExperiment, ExperimentData, Moments, UnitEvent, UnitValue, VariantData, analyze,
    validate_batch,
};

const EXPERIMENT: &str = r#"apiVersion: switchyard.dev/v1alpha1
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
    - name: order-value
      ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}
  guardrails:
    - {metric: revenue, maxDegradation: 0.1}
  minimumSampleSize: 500
"#;

/// Units per variant in the analysis benchmarks.
const UNITS: usize = 100_000;
const NOW: Timestamp = Timestamp(1_714_600_000_000);

fn experiment() -> CompiledExperiment {
    let set = load_str(EXPERIMENT, Path::new("e.yaml")).unwrap();
    CompiledExperiment::new(&set.experiments[0]).unwrap()
}

/// Per-unit values of one variant: deterministic (xorshift), ~15% (or 18%) converting.
fn units(seed: u64, rate: f64) -> Vec<BTreeMap<&'static str, UnitValue>> {
    let mut s = seed;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 1_000_000) as f64 / 1_000_000.0
    };
    (0..UNITS)
        .map(|_| {
            let bought = next() < rate;
            let revenue = if bought { 20.0 + 30.0 * next() } else { 0.0 };
            let before = 10.0 * next();
            BTreeMap::from([
                (
                    "purchased",
                    UnitValue {
                        x: f64::from(u8::from(bought)),
                        y: 0.0,
                        c: 0.0,
                    },
                ),
                (
                    "revenue",
                    UnitValue {
                        x: revenue,
                        y: 0.0,
                        c: before,
                    },
                ),
                (
                    "order-value",
                    UnitValue {
                        x: revenue,
                        y: f64::from(u8::from(bought)),
                        c: 0.0,
                    },
                ),
            ])
        })
        .collect()
}

/// The aggregates a store keeps, computed by scanning every unit.
fn scan(variants: &[(&str, Vec<BTreeMap<&'static str, UnitValue>>)]) -> ExperimentData {
    let variants = variants
        .iter()
        .map(|(name, units)| {
            let metrics = ["purchased", "revenue", "order-value"]
                .into_iter()
                .map(|m| (m.to_string(), Moments::of(units.iter().map(|u| u[m]))))
                .collect();
            let data = VariantData {
                units: units.len() as u64,
                metrics,
            };
            (name.to_string(), data)
        })
        .collect();
    ExperimentData {
        started_at: Timestamp(NOW.0 - 7 * 86_400_000),
        caps: Default::default(),
        variants,
    }
}

fn analysis(c: &mut Criterion) {
    let experiment = experiment();
    let raw = vec![("control", units(7, 0.15)), ("redesign", units(11, 0.18))];
    let data = scan(&raw);
    let mut group = c.benchmark_group("analysis");
    group.bench_function("from aggregates (2 x 100k units, 3 metrics)", |b| {
        b.iter(|| analyze(black_box(&experiment), black_box(&data), NOW).unwrap());
    });
    group.bench_function("scan 2 x 100k units, then analyse", |b| {
        b.iter(|| analyze(&experiment, &scan(black_box(&raw)), NOW).unwrap());
    });
    group.finish();
}

fn ingestion(c: &mut Criterion) {
    let experiment = experiment();
    let catalog = BTreeMap::from([(experiment.key().to_string(), experiment.clone())]);
    let events: Vec<_> = (0..1000)
        .map(|i| {
            json!({"id": format!("e{i}"), "experiment": "checkout-redesign", "unit": format!("u{}", i % 300),
                   "event": "purchase", "value": 12.5, "timestamp": "2024-05-01T12:00:00Z"})
        })
        .collect();
    let batch = json!({ "events": events });
    c.bench_function("validate a batch of 1000 events", |b| {
        b.iter(|| validate_batch(black_box(&batch), &catalog, NOW).unwrap());
    });
    let metric = experiment.metric("revenue").unwrap().definition.clone();
    let event = UnitEvent {
        name: "purchase",
        value: 12.5,
        at: NOW,
    };
    c.bench_function("apply one event to a unit and its variant's moments", |b| {
        let mut moments = Moments::default();
        let mut unit = UnitValue::default();
        b.iter(|| {
            let new = unit.apply(black_box(&metric), black_box(&event), Some(Timestamp(0)));
            moments.replace(unit, new);
            unit = new;
        });
        black_box(moments);
    });
}

criterion_group!(benches, analysis, ingestion);
criterion_main!(benches);
