//! flagd evaluation cost: the flagd testbed's evaluator scenarios (`tests/flagd/testbed-cases.json`
//! rows over `testkit-flags.json`: fractional splits, sem_ver, string operators, `$ref`s, nested
//! `if`s, disabled flags and typed requests), each evaluated once per iteration; the throughput is
//! the number of cases, so criterion's time per element is ns per evaluation.
//! `bench/flagd/run.sh` runs it beside flagd's own Go evaluator on the same cases.
//!
//! Run: `cargo bench -p switchyard-flags --bench flagd -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use switchyard_flags::{EvaluationContext, FlagSet, FlagType, Timestamp};

const CASES: &str = include_str!("../tests/flagd/testbed-cases.json");
const FLAGS: &str = include_str!("../tests/flagd/testkit-flags.json");
const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn bench(c: &mut Criterion) {
    let flags = FlagSet::from_flagd_json(FLAGS)
        .expect("import")
        .compile()
        .expect("compile");
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("cases");
    let cases: Vec<(String, FlagType, EvaluationContext)> = cases
        .iter()
        .filter(|case| case.get("flag_file").is_none())
        .map(|case| {
            let mut context = EvaluationContext::new();
            for (name, value) in case["context"].as_object().expect("context") {
                match (name.as_str(), value) {
                    ("targetingKey", Value::String(key)) => {
                        context = context.with_targeting_key(key);
                    }
                    _ => context = context.with_attribute(name.clone(), value.clone()),
                }
            }
            let flag_type = serde_json::from_value(case["type"].clone()).expect("type");
            (
                case["flag"].as_str().expect("flag").to_owned(),
                flag_type,
                context,
            )
        })
        .collect();
    let mut group = c.benchmark_group("flagd-testbed");
    group.throughput(Throughput::Elements(cases.len() as u64));
    group.bench_function("switchyard", |b| {
        b.iter(|| {
            for (key, flag_type, context) in &cases {
                black_box(flags.evaluate(key, Some(*flag_type), context, NOW));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
