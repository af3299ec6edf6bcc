//! Evaluates every case of one Unleash client-specification file N times through one engine, for
//! instruction counting under callgrind (`benches/instructions.sh`), which is deterministic where
//! criterion's wall-clock numbers move with the machine's load. Contexts and plans are built
//! before the loop, as in `benches/eval.rs`.
//!
//! Usage: `spec_eval_loop <file stem> <switchyard|yggdrasil> <iterations>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use serde_json::Value;
use switchyard_flags::{EvaluationContext, FlagSet, Timestamp};
use unleash_yggdrasil::{Context, EngineState, UpdateMessage};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/unleash-client-specification"
);
const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, engine_name) = (&args[1], &args[2]);
    let iterations: usize = args[3].parse().expect("iterations");
    let text = std::fs::read_to_string(format!("{DIR}/{file}.json")).expect("spec file");
    let spec: Value = serde_json::from_str(&text).expect("spec json");
    let mut cases = Vec::new();
    for (kind, variant) in [("tests", false), ("variantTests", true)] {
        for case in spec[kind].as_array().into_iter().flatten() {
            let ours = EvaluationContext::from_unleash(&case["context"]);
            let theirs: Context = serde_json::from_value(case["context"].clone()).unwrap();
            let toggle = case["toggleName"].as_str().unwrap().to_owned();
            cases.push((toggle, variant, ours, theirs));
        }
    }
    let ours = FlagSet::from_unleash_json(&spec["state"].to_string())
        .unwrap()
        .compile()
        .unwrap();
    let engine = EngineState::default();
    let message: UpdateMessage = serde_json::from_value(spec["state"].clone()).unwrap();
    engine.take_state(message);
    for _ in 0..iterations {
        for (toggle, variant, our_context, their_context) in &cases {
            if engine_name == "switchyard" {
                let details = ours.evaluate(toggle, None, our_context, NOW);
                if *variant {
                    black_box((details.variant, details.value));
                } else {
                    black_box(details.reason.is_served());
                }
            } else if *variant {
                black_box(engine.get_variant(toggle, their_context, &None));
            } else {
                black_box(engine.is_enabled(toggle, their_context, &None));
            }
        }
    }
}
