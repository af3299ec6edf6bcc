//! The Unleash client specification (v6.1.0, a copy kept in
//! `tests/unleash-client-specification/` with its LICENSE): one test per file, each reporting every
//! failing case by name, plus the total count.

use serde_json::{Value, json};
use switchyard_flags::{
    EvaluationContext, FlagSet, Timestamp, UNLEASH_DISABLED_VARIANT, unleash_answer,
};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/unleash-client-specification"
);
// 2024-01-01T00:00:00Z: a fixed clock; every date test in the suite sets `currentTime`.
const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000);

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Runs the cases of specification `spec` through `is_enabled` (the answer and what to show
/// beside a wrong one) and `get_variant` (`{name, enabled, feature_enabled, payload?}`); returns
/// (cases run, failures).
fn cases(
    spec: &Value,
    is_enabled: impl Fn(&str, &Value) -> (bool, String),
    get_variant: impl Fn(&str, &Value) -> Value,
) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let mut count = 0;
    for case in spec["tests"].as_array().into_iter().flatten() {
        count += 1;
        let (enabled, shown) = is_enabled(case["toggleName"].as_str().unwrap(), &case["context"]);
        if Value::Bool(enabled) != case["expectedResult"] {
            failures.push(format!(
                "{}: expected {}, got {enabled} {shown}",
                case["description"], case["expectedResult"]
            ));
        }
    }
    for case in spec["variantTests"].as_array().into_iter().flatten() {
        count += 1;
        let got = get_variant(case["toggleName"].as_str().unwrap(), &case["context"]);
        let expected = &case["expectedResult"];
        let matches = got["name"] == expected["name"]
            && got["enabled"] == expected["enabled"]
            && (expected.get("feature_enabled").is_none()
                || got["feature_enabled"] == expected["feature_enabled"])
            && got.get("payload") == expected.get("payload");
        if !matches {
            failures.push(format!(
                "{}: expected {expected}, got {got}",
                case["description"]
            ));
        }
    }
    (count, failures)
}

/// Runs one specification file on the native import; Unleash's answers are read from the
/// evaluation details with `unleash_answer`, as the Unleash APIs read them. Returns (cases run,
/// failures).
fn run(file: &str) -> (usize, Vec<String>) {
    let spec = load(file);
    let state = serde_json::to_string(&spec["state"]).unwrap();
    let flags = FlagSet::from_unleash_json(&state)
        .unwrap()
        .compile()
        .unwrap();
    let evaluate = |name: &str, context: &Value| {
        let context = EvaluationContext::from_unleash(context);
        let details = flags.evaluate(name, None, &context, NOW);
        (unleash_answer(&details), format!("({details:?})"))
    };
    cases(
        &spec,
        |name, context| {
            let (answer, shown) = evaluate(name, context);
            (answer.is_some(), shown)
        },
        |name, context| {
            evaluate(name, context).0.unwrap_or_else(|| {
                json!({"name": UNLEASH_DISABLED_VARIANT, "enabled": false, "feature_enabled": false})
            })
        },
    )
}

fn check(file: &str) {
    let (count, failures) = run(file);
    assert!(count > 0, "{file} has no cases");
    assert!(
        failures.is_empty(),
        "{file}: {} of {count} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

macro_rules! spec_files {
    ($($test:ident => $file:literal,)*) => {
        $(#[test] fn $test() { check($file); })*
        const FILES: &[&str] = &[$($file),*];
    };
}

spec_files! {
    s01_simple_examples => "01-simple-examples.json",
    s02_user_with_id_strategy => "02-user-with-id-strategy.json",
    s03_gradual_rollout_user_id => "03-gradual-rollout-user-id-strategy.json",
    s04_gradual_rollout_session_id => "04-gradual-rollout-session-id-strategy.json",
    s05_gradual_rollout_random => "05-gradual-rollout-random-strategy.json",
    s06_remote_address => "06-remote-address-strategy.json",
    s07_multiple_strategies => "07-multiple-strategies.json",
    s08_variants => "08-variants.json",
    s09_strategy_constraints => "09-strategy-constraints.json",
    s10_flexible_rollout => "10-flexible-rollout-strategy.json",
    s11_constraint_edge_cases => "11-strategy-constraints-edge-cases.json",
    s12_custom_stickiness => "12-custom-stickiness.json",
    s13_constraint_operators => "13-constraint-operators.json",
    s14_semver_operators => "14-constraint-semver-operators.json",
    s15_global_constraints => "15-global-constraints.json",
    s16_strategy_variants => "16-strategy-variants.json",
    s17_dependent_features => "17-dependent-features.json",
    s18_utf8_flag_names => "18-utf8-flag-names.json",
    s19_delta_api_hydration => "19-delta-api-hydration.json",
    s20_delta_api_events => "20-delta-api-events.json",
    s21_regex_operators => "21-regex-constraint-operators.json",
    s22_cidr_operators => "22-cidr-constraint-operators.json",
}

#[test]
fn index_lists_every_file_and_all_279_cases_pass() {
    let index = load("index.json");
    let listed: Vec<&str> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, FILES);
    let mut total = 0;
    let mut failed = 0;
    for file in FILES {
        let (count, failures) = run(file);
        total += count;
        failed += failures.len();
    }
    assert_eq!(total, 279, "the specification has 279 cases");
    assert_eq!(failed, 0, "{failed} of {total} cases failed");
}

/// Every case of `file` through Unleash's own engine (yggdrasil) fed with the native import of
/// the file's state exported back to Unleash: the export must keep every verdict. Returns
/// (cases run, failures, flags left out).
fn run_exported(file: &str) -> (usize, Vec<String>, Vec<String>) {
    use unleash_yggdrasil::{Context, EngineState, UpdateMessage};
    let spec = load(file);
    let state = serde_json::to_string(&spec["state"]).unwrap();
    let export = FlagSet::from_unleash_json(&state)
        .unwrap()
        .to_unleash("production");
    let left_out = export
        .left_out
        .iter()
        .map(|l| format!("{}: {}", l.flag, l.reason))
        .collect();
    let message: UpdateMessage = serde_json::from_value(json!({
        "version": 2,
        "features": export.features,
    }))
    .unwrap();
    let engine = EngineState::default();
    engine.take_state(message);
    let context = |context: &Value| -> Context { serde_json::from_value(context.clone()).unwrap() };
    let (count, failures) = cases(
        &spec,
        |name, c| (engine.is_enabled(name, &context(c), &None), String::new()),
        |name, c| {
            let mut got =
                serde_json::to_value(engine.get_variant(name, &context(c), &None)).unwrap();
            // yggdrasil serialises `featureEnabled`; the specification says `feature_enabled`.
            got["feature_enabled"] = got["featureEnabled"].clone();
            got
        },
    );
    (count, failures, left_out)
}

#[test]
fn all_279_cases_keep_their_verdict_through_the_unleash_export() {
    let mut total = 0;
    let mut report = Vec::new();
    for file in FILES {
        let (count, failures, left_out) = run_exported(file);
        total += count;
        report.extend(failures.iter().map(|f| format!("{file}: {f}")));
        report.extend(left_out.iter().map(|l| format!("{file}: left out {l}")));
    }
    assert_eq!(total, 279);
    assert!(
        report.is_empty(),
        "{} problems:\n{}",
        report.len(),
        report.join("\n")
    );
}
