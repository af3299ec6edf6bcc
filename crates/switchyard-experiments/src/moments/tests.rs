#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::{EventAggregate, EventName, MetricDefinition};

use super::*;

fn event(name: &str) -> EventName {
    EventName::new(name).unwrap()
}

fn conversion() -> MetricDefinition {
    MetricDefinition::Conversion {
        event: event("purchase"),
    }
}

fn continuous() -> MetricDefinition {
    MetricDefinition::Continuous {
        event: event("purchase"),
    }
}

fn ratio() -> MetricDefinition {
    MetricDefinition::Ratio {
        numerator: EventAggregate::Sum(event("purchase")),
        denominator: EventAggregate::Count(event("visit")),
    }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn ev(name: &str, value: f64, ms: u64) -> UnitEvent<'_> {
    UnitEvent {
        name,
        value,
        at: at(ms),
    }
}

#[test]
fn conversions_are_zero_or_one_and_earlier_events_feed_the_covariate() {
    let m = conversion();
    let v = UnitValue::default()
        .apply(&m, &ev("purchase", 30.0, 5), Some(at(10)))
        .apply(&m, &ev("purchase", 20.0, 10), Some(at(10)))
        .apply(&m, &ev("purchase", 20.0, 11), Some(at(10)))
        .apply(&m, &ev("visit", 1.0, 12), Some(at(10)));
    assert_eq!(
        v,
        UnitValue {
            x: 1.0,
            y: 0.0,
            c: 1.0
        }
    );
    // Not exposed yet: everything is pre-exposure.
    let v = UnitValue::default().apply(&m, &ev("purchase", 1.0, 50), None);
    assert_eq!(
        v,
        UnitValue {
            x: 0.0,
            y: 0.0,
            c: 1.0
        }
    );
}

#[test]
fn continuous_metrics_sum_values_and_ratios_sum_or_count_each_side() {
    let m = continuous();
    let v = UnitValue::default()
        .apply(&m, &ev("purchase", 12.5, 20), Some(at(10)))
        .apply(&m, &ev("purchase", 7.5, 30), Some(at(10)))
        .apply(&m, &ev("purchase", 4.0, 1), Some(at(10)));
    assert_eq!(
        v,
        UnitValue {
            x: 20.0,
            y: 0.0,
            c: 4.0
        }
    );
    let m = ratio();
    let v = UnitValue::default()
        .apply(&m, &ev("visit", 9.0, 20), Some(at(10)))
        .apply(&m, &ev("visit", 9.0, 21), Some(at(10)))
        .apply(&m, &ev("purchase", 30.0, 22), Some(at(10)))
        .apply(&m, &ev("purchase", 30.0, 2), Some(at(10)));
    assert_eq!(
        v,
        UnitValue {
            x: 30.0,
            y: 2.0,
            c: 0.0
        }
    );
    // The same event on both sides: average order value.
    let aov = MetricDefinition::Ratio {
        numerator: EventAggregate::Sum(event("purchase")),
        denominator: EventAggregate::Count(event("purchase")),
    };
    let v = UnitValue::default()
        .apply(&aov, &ev("purchase", 30.0, 20), Some(at(10)))
        .apply(&aov, &ev("purchase", 10.0, 20), Some(at(10)));
    assert_eq!(
        v,
        UnitValue {
            x: 40.0,
            y: 2.0,
            c: 0.0
        }
    );
}

#[test]
fn removing_from_nothing_is_refused_and_changes_nothing() {
    let mut m = Moments::default();
    assert_eq!(m.remove(UnitValue::default()), Err(MomentsError::Empty));
    assert_eq!(m, Moments::default());
    m.add(UnitValue {
        x: 2.0,
        y: 1.0,
        c: 3.0,
    });
    m.remove(UnitValue {
        x: 2.0,
        y: 1.0,
        c: 3.0,
    })
    .unwrap();
    assert_eq!(m, Moments::default());
}

#[test]
fn units_without_values_are_zeros() {
    let m = Moments::of([UnitValue {
        x: 2.0,
        y: 0.0,
        c: 0.0,
    }])
    .with_units(4);
    let explicit = Moments::of([
        UnitValue {
            x: 2.0,
            y: 0.0,
            c: 0.0,
        },
        UnitValue::default(),
        UnitValue::default(),
        UnitValue::default(),
    ]);
    assert_eq!(m, explicit);
    assert_eq!(m.mean_x(), Some(0.5));
    assert_eq!(m.with_units(1).n, 4, "never fewer units than values");
}

#[derive(Debug, Clone)]
enum Op {
    Expose {
        unit: usize,
        ms: u64,
    },
    Event {
        unit: usize,
        name: &'static str,
        value: f64,
        ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let unit = 0..12usize;
    prop_oneof![
        (unit.clone(), 0..1000u64).prop_map(|(unit, ms)| Op::Expose { unit, ms }),
        // Multiples of 1/8 are exact in binary, so both sides of the comparison are exact sums
        // and any difference is a logic error, not rounding.
        (
            unit,
            prop::sample::select(vec!["purchase", "visit", "other"]),
            -800i32..800,
            0..1000u64
        )
            .prop_map(|(unit, name, eighths, ms)| Op::Event {
                unit,
                name,
                value: f64::from(eighths) / 8.0,
                ms,
            }),
    ]
}

/// Each unit's value from its whole history, computed without `apply`.
fn recomputed(metric: &MetricDefinition, ops: &[Op]) -> Moments {
    let mut exposed: BTreeMap<usize, u64> = BTreeMap::new();
    let mut values: BTreeMap<usize, UnitValue> = BTreeMap::new();
    for op in ops {
        match *op {
            Op::Expose { unit, ms } => {
                exposed.entry(unit).or_insert(ms);
            }
            Op::Event {
                unit,
                name,
                value,
                ms,
            } => {
                let after = exposed.get(&unit).is_some_and(|&t| ms >= t);
                let v = values.entry(unit).or_default();
                match (metric, name, after) {
                    (MetricDefinition::Conversion { .. }, "purchase", true) => v.x = 1.0,
                    (MetricDefinition::Conversion { .. }, "purchase", false) => v.c = 1.0,
                    (MetricDefinition::Continuous { .. }, "purchase", true) => v.x += value,
                    (MetricDefinition::Continuous { .. }, "purchase", false) => v.c += value,
                    (MetricDefinition::Ratio { .. }, "purchase", true) => v.x += value,
                    (MetricDefinition::Ratio { .. }, "visit", true) => v.y += 1.0,
                    _ => {}
                }
            }
        }
    }
    Moments::of(
        exposed
            .keys()
            .map(|u| values.get(u).copied().unwrap_or_default()),
    )
}

/// The store's way: keep each unit's value, update the variant's moments by deltas.
fn incremental(metric: &MetricDefinition, ops: &[Op]) -> Moments {
    let mut exposed: BTreeMap<usize, Timestamp> = BTreeMap::new();
    let mut values: BTreeMap<usize, UnitValue> = BTreeMap::new();
    let mut moments = Moments::default();
    for op in ops {
        match *op {
            Op::Expose { unit, ms } => {
                if let std::collections::btree_map::Entry::Vacant(e) = exposed.entry(unit) {
                    e.insert(at(ms));
                    moments.add(values.get(&unit).copied().unwrap_or_default());
                }
            }
            Op::Event {
                unit,
                name,
                value,
                ms,
            } => {
                let old = values.get(&unit).copied().unwrap_or_default();
                let new = old.apply(metric, &ev(name, value, ms), exposed.get(&unit).copied());
                values.insert(unit, new);
                if exposed.contains_key(&unit) {
                    moments.replace(old, new);
                }
            }
        }
    }
    moments
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_close(a: &Moments, b: &Moments) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.n, b.n);
    for (x, y) in [
        (a.sum_x, b.sum_x),
        (a.sum_x2, b.sum_x2),
        (a.sum_y, b.sum_y),
        (a.sum_y2, b.sum_y2),
        (a.sum_xy, b.sum_xy),
        (a.sum_c, b.sum_c),
        (a.sum_c2, b.sum_c2),
        (a.sum_xc, b.sum_xc),
    ] {
        prop_assert!(close(x, y), "{:?} != {:?}", a, b);
    }
    Ok(())
}

proptest! {
    #[test]
    fn incremental_moments_equal_the_recomputed_ones(ops in prop::collection::vec(op(), 0..120)) {
        for metric in [conversion(), continuous(), ratio()] {
            assert_close(&incremental(&metric, &ops), &recomputed(&metric, &ops))?;
        }
    }

    #[test]
    fn merging_shards_equals_one_pass(
        units in prop::collection::vec((-8000i32..8000, 0i32..800, -8000i32..8000), 0..60),
        split in 0usize..60,
    ) {
        let eighths = |v: i32| f64::from(v) / 8.0;
        let values: Vec<UnitValue> = units
            .iter()
            .map(|&(x, y, c)| UnitValue { x: eighths(x), y: eighths(y), c: eighths(c) })
            .collect();
        let split = split.min(values.len());
        let mut merged = Moments::of(values[..split].iter().copied());
        merged.merge(&Moments::of(values[split..].iter().copied()));
        assert_close(&merged, &Moments::of(values))?;
    }
}
