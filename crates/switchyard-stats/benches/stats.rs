//! Hot paths of the statistics crate: Welch from summary statistics,
//! Mann-Whitney with interval on 10k samples per arm, and one look of the
//! incremental sequential two-proportion test.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_stats::sequential::SequentialOptions;
use switchyard_stats::{
    ArmSummary, ProportionCounts, SequentialProportionConfig, SequentialProportionTest,
    TTestOptions, mann_whitney, sequential_test, welch_t_test,
};

/// Deterministic pseudo-random values (xorshift), no RNG dependency.
fn values(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Rounded to 2 decimals so that ties occur, as in real latencies.
            ((s % 100_000) as f64 / 100.0).round() / 10.0 + shift
        })
        .collect()
}

fn welch(c: &mut Criterion) {
    let control = ArmSummary {
        n: 3407.0,
        mean: 0.41,
        variance: 15.2,
    };
    let treatment = ArmSummary {
        n: 3461.0,
        mean: 0.70,
        variance: 38.4,
    };
    c.bench_function("welch_summary", |b| {
        b.iter(|| {
            welch_t_test(
                black_box(&control),
                black_box(&treatment),
                &TTestOptions::default(),
            )
        });
    });
    c.bench_function("sequential_summary", |b| {
        b.iter(|| {
            sequential_test(
                black_box(&control),
                black_box(&treatment),
                &SequentialOptions::default(),
            )
        });
    });
}

fn mann_whitney_10k(c: &mut Criterion) {
    let control = values(1, 10_000, 0.0);
    let treatment = values(2, 10_000, 0.3);
    c.bench_function("mann_whitney_10k_per_arm", |b| {
        b.iter(|| mann_whitney(black_box(&control), black_box(&treatment), 0.98).unwrap());
    });
}

fn sequential_update(c: &mut Criterion) {
    let mut test = SequentialProportionTest::new(SequentialProportionConfig {
        margin: 0.01,
        ..SequentialProportionConfig::default()
    })
    .unwrap();
    let baseline = ProportionCounts {
        trials: 1000,
        successes: 10,
    };
    let canary = ProportionCounts {
        trials: 1000,
        successes: 12,
    };
    c.bench_function("sequential_two_proportion_record_and_evaluate", |b| {
        b.iter(|| {
            test.record(black_box(baseline), black_box(canary)).unwrap();
            test.evaluate().unwrap()
        });
    });
}

criterion_group!(benches, welch, mann_whitney_10k, sequential_update);
criterion_main!(benches);
