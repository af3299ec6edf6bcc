//! Evaluation cost on the Unleash client-specification flag sets, side by side with
//! `unleash-yggdrasil` (Unleash's Rust engine) on the same inputs. Each iteration evaluates every
//! case of a file once (`tests` through `is_enabled`, `variantTests` through `get_variant`); the
//! throughput is the number of cases, so criterion's time per element is ns per evaluation.
//!
//! Fairness: both engines get their native context type built before the timed loop
//! (`EvaluationContext::from_unleash`, yggdrasil's `Context` from serde); inside it each call goes
//! through the engine's public entry point only. yggdrasil's `is_enabled`/`get_variant` wrap the
//! context in an `EnrichedContext` (a struct of borrows, no copying) on every call; that is part
//! of its API, as building `EvaluationDetails` is part of ours.
//!
//! Run: `cargo bench -p switchyard-flags --bench eval --
//! --warm-up-time 1 --measurement-time 3`, then `crates/switchyard-flags/benches/summarise.py`.
//! `benches/instructions.sh` counts instructions per evaluation on the same cases (deterministic).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use switchyard_flags::{EvaluationContext, FlagSet, Timestamp};
use unleash_yggdrasil::{Context, EngineState, UpdateMessage};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/unleash-client-specification"
);
const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000);

struct Case {
    toggle: String,
    variant: bool,
    ours: EvaluationContext,
    theirs: Context,
}

fn load(file: &str) -> (Value, Vec<Case>) {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("spec file");
    let spec: Value = serde_json::from_str(&text).expect("spec json");
    let mut cases = Vec::new();
    for (key, variant) in [("tests", false), ("variantTests", true)] {
        for case in spec[key].as_array().into_iter().flatten() {
            cases.push(Case {
                toggle: case["toggleName"].as_str().expect("toggle").to_owned(),
                variant,
                ours: EvaluationContext::from_unleash(&case["context"]),
                theirs: serde_json::from_value(case["context"].clone()).expect("unleash context"),
            });
        }
    }
    (spec["state"].clone(), cases)
}

fn bench(c: &mut Criterion) {
    let index: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/index.json")).expect("index"))
            .expect("index json");
    for file in &index {
        let (state, cases) = load(file);
        let ours = FlagSet::from_unleash_json(&state.to_string())
            .expect("import")
            .compile()
            .expect("compile");
        let engine = EngineState::default();
        let message: UpdateMessage = serde_json::from_value(state).expect("yggdrasil state");
        engine.take_state(message);
        let name = file.trim_end_matches(".json");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(cases.len() as u64));
        group.bench_function("switchyard", |b| {
            b.iter(|| {
                for case in &cases {
                    let details = ours.evaluate(&case.toggle, None, &case.ours, NOW);
                    if case.variant {
                        black_box((details.variant, details.value));
                    } else {
                        black_box(details.reason.is_served());
                    }
                }
            });
        });
        group.bench_function("yggdrasil", |b| {
            b.iter(|| {
                for case in &cases {
                    if case.variant {
                        black_box(engine.get_variant(&case.toggle, &case.theirs, &None));
                    } else {
                        black_box(engine.is_enabled(&case.toggle, &case.theirs, &None));
                    }
                }
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
