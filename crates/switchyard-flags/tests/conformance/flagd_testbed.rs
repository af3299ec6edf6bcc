//! The scenarios of the OpenFeature flagd test harness (open-feature/flagd-testbed 3.9.0), ported
//! as facts into `tests/flagd/testbed-cases.json`: one case per scenario row, each naming the
//! feature file, scenario title and example row it comes from, run against Switchyard's flagd
//! evaluation with OpenFeature provider semantics (no value from the engine → the caller's
//! fallback value).
//!
//! Covered: every scenario of `evaluator/gherkin/*.feature` (flags in `testkit-flags.json`), and
//! the provider-level `gherkin/` features whose scenarios apply to any evaluator: `evaluation`,
//! `targeting`, `disabled` and `metadata` (flags in `testbed-provider-flags.json`, the provider
//! flag set, whose `metadata-flag`, `starts-ends-flag`, `equal-greater-lesser-version-flag` and
//! `timestamp-flag` differ from the evaluator kit's; rows that pick another flag set through the
//! `selector` option use `testbed-selector-flags.json` and `testbed-combined-metadata-flags.json`).
//! Zero values are covered by `evaluator/gherkin/zero-values.feature` and the zero-value scenarios
//! of `gherkin/evaluation.feature`.
//!
//! Skipped, because they test a flagd provider talking to a running flagd server rather than
//! evaluation:
//! - `gherkin/connection.feature`: connecting, reconnecting, TLS, unix sockets, target URIs;
//! - `gherkin/events.feature`: provider events (ready, error, stale, configuration change);
//! - `gherkin/rpc-caching.feature`: the RPC provider's cache and its invalidation by events;
//! - `gherkin/sync-payload.feature`: the in-process provider's sync stream and payload;
//! - `gherkin/config.feature`: provider options and environment variables;
//! - `gherkin/selector.feature`: which flag set the server's sync hands to a selector;
//! - `gherkin/contextEnrichment.feature`: context the server injects into evaluations
//!   (`flagd-context-aware` matches on an `injectedmetadata` attribute flagd adds).
//!
//! Known differences: a few rows expect something flagd's own Go evaluator
//! (github.com/open-feature/flagd/core v0.17.0, which Switchyard follows) does not do: the
//! `@fractional-v1` (legacy) and `@fractional-v3` (newer) bucketing rows, and the deprecated
//! `@no-default` scenario of `gherkin/evaluation.feature`. Those cases carry `known_difference`
//! (and the scenario's own expectation in `scenario_expects`) and expect flagd's actual answer.
//!
//! Fields a scenario does not state (`not_in_scenario`, e.g. the reason of a row that only checks
//! the value) were filled in with flagd's answer, checked with the reference program. A second,
//! ignored test (run by `scripts/test`, with `SWITCHYARD_FLAGD_REFERENCE` naming that program,
//! `scripts/flagd-reference`) compares every case with flagd's own answer (value, variant, reason,
//! error code):
//!
//! ```sh
//! SWITCHYARD_FLAGD_REFERENCE=$(scripts/flagd-reference) \
//!   cargo test -p switchyard-flags --test conformance flagd_testbed -- --ignored --nocapture
//! ```

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};
use switchyard_flags::{
    CompiledFlags, EvaluationContext, FlagSet, FlagType, Fractional, Timestamp,
};

use super::flagd_reference::{ask, numbers_equal, request, same};

const CASES: &str = include_str!("../flagd/testbed-cases.json");
const DEFAULT_FLAG_FILE: &str = "testkit-flags.json";
const FLAG_FILES: &[(&str, &str)] = &[
    (
        "testkit-flags.json",
        include_str!("../flagd/testkit-flags.json"),
    ),
    (
        "testbed-provider-flags.json",
        include_str!("../flagd/testbed-provider-flags.json"),
    ),
    (
        "testbed-selector-flags.json",
        include_str!("../flagd/testbed-selector-flags.json"),
    ),
    (
        "testbed-combined-metadata-flags.json",
        include_str!("../flagd/testbed-combined-metadata-flags.json"),
    ),
];

/// 2027-01-15T08:00:00Z. Only `gherkin/targeting.feature: Time-based operations` depends on the
/// clock (`$flagd.timestamp` compared with 1 and with 4133980802, i.e. the year 2100): any time
/// between those two satisfies it.
const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

struct Case {
    scenario: String,
    scenario_expects: Option<Map<String, Value>>,
    flag_file: String,
    flag: String,
    flag_type: FlagType,
    context: Map<String, Value>,
    default: Value,
    expected: Map<String, Value>,
    known_difference: Option<String>,
}

fn cases() -> Vec<Case> {
    let cases: Vec<Value> = serde_json::from_str(CASES).unwrap();
    cases
        .into_iter()
        .map(|case| {
            let text = |key: &str| case[key].as_str().map(str::to_owned);
            let object = |key: &str| case[key].as_object().cloned();
            Case {
                scenario: text("scenario").expect("scenario"),
                scenario_expects: object("scenario_expects"),
                flag_file: text("flag_file").unwrap_or_else(|| DEFAULT_FLAG_FILE.into()),
                flag: text("flag").expect("flag"),
                flag_type: serde_json::from_value(case["type"].clone()).expect("type"),
                context: object("context").expect("context"),
                default: case["default"].clone(),
                expected: object("expected").expect("expected"),
                known_difference: text("known_difference"),
            }
        })
        .collect()
}

fn compiled(file: &str) -> CompiledFlags {
    let (_, text) = FLAG_FILES
        .iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("unknown flag file {file}"));
    FlagSet::from_flagd_json(text)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .compile()
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A string `targetingKey` is the targeting key; anything else is an attribute.
fn context(attributes: &Map<String, Value>) -> EvaluationContext {
    let mut context = EvaluationContext::new();
    for (name, value) in attributes {
        match (name.as_str(), value) {
            ("targetingKey", Value::String(key)) => context = context.with_targeting_key(key),
            _ => context = context.with_attribute(name.clone(), value.clone()),
        }
    }
    context
}

/// What Switchyard answers for a case: the engine's details (value null when the caller's default
/// applies) and the value an OpenFeature provider resolves.
struct Answer {
    details: Value,
    resolved: Value,
    metadata: BTreeMap<String, Value>,
}

fn answer(flags: &CompiledFlags, case: &Case) -> Answer {
    let details = flags.evaluate(
        &case.flag,
        Some(case.flag_type),
        &context(&case.context),
        NOW,
    );
    let resolved = if details.value.is_null() {
        case.default.clone()
    } else {
        details.value.clone()
    };
    Answer {
        details: super::flagd_reference::details(&details),
        resolved,
        metadata: details.metadata.clone(),
    }
}

/// Why `answer` does not meet `case.expected`, if it does not.
fn mismatches(case: &Case, answer: &Answer) -> Vec<String> {
    let expected = &case.expected;
    let mut problems = Vec::new();
    let value = expected.get("value").expect("every case expects a value");
    if !numbers_equal(value, &answer.resolved) {
        problems.push(format!("value {value}, got {}", answer.resolved));
    }
    for field in ["reason", "error_code"] {
        let want = expected.get(field).unwrap_or(&Value::Null);
        let got = answer.details.get(field).unwrap_or(&Value::Null);
        if want != got {
            problems.push(format!("{field} {want}, got {got}"));
        }
    }
    if let Some(want) = expected.get("metadata") {
        let got = json!(answer.metadata);
        if !numbers_equal(want, &got) {
            problems.push(format!("metadata {want}, got {got}"));
        }
    }
    if let Some(Value::Object(want)) = expected.get("metadata_contains") {
        for (key, value) in want {
            match answer.metadata.get(key) {
                Some(got) if numbers_equal(value, got) => {}
                got => problems.push(format!("metadata {key}: {value}, got {got:?}")),
            }
        }
    }
    problems
}

#[test]
fn flagd_testbed_scenarios() {
    let cases = cases();
    let flags: BTreeMap<&str, CompiledFlags> = FLAG_FILES
        .iter()
        .map(|(name, _)| (*name, compiled(name)))
        .collect();
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let mut known: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for case in &cases {
        assert!(
            seen.insert(&case.scenario),
            "duplicate case {}",
            case.scenario
        );
        let answer = answer(&flags[case.flag_file.as_str()], case);
        let problems = mismatches(case, &answer);
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({} as {}, context {}): expected {}",
                case.scenario,
                case.flag,
                case.flag_type.as_str(),
                Value::Object(case.context.clone()),
                problems.join("; ")
            ));
        }
        if let Some(why) = &case.known_difference {
            known.entry(why).or_default().push(&case.scenario);
        }
    }
    println!(
        "flagd testbed: {} cases ran, {} failed; {} known differences, expecting flagd v0.17.0's answer:",
        cases.len(),
        failures.len(),
        known.values().map(Vec::len).sum::<usize>()
    );
    for (why, scenarios) in &known {
        println!("- {why} ({} cases):", scenarios.len());
        for scenario in scenarios {
            println!("    {scenario}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} flagd testbed cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The `@fractional-v3` rows expect the flagd specification's newer bucketing, which flagd's Go
/// evaluator does not do yet; Switchyard offers it pinned per flag (`fractional: v3`). With every
/// flag of their file pinned to v3, each of those rows gets what its scenario expects.
#[test]
fn fractional_v3_rows_pass_with_flags_pinned_to_v3() {
    let (_, text) = FLAG_FILES
        .iter()
        .find(|(name, _)| *name == "testbed-provider-flags.json")
        .unwrap();
    let mut set = FlagSet::from_flagd_json(text).unwrap();
    for flag in &mut set.flags {
        flag.fractional = Fractional::V3;
    }
    let flags = set.compile().unwrap();
    let rows: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.scenario.contains("v3"))
        .collect();
    let mut failures = Vec::new();
    for case in &rows {
        let answer = answer(&flags, case);
        let want = case
            .scenario_expects
            .as_ref()
            .and_then(|e| e.get("value"))
            .or_else(|| case.expected.get("value"))
            .unwrap();
        if !numbers_equal(want, &answer.resolved) {
            failures.push(format!(
                "{}: {want}, got {}",
                case.scenario, answer.resolved
            ));
        }
    }
    println!("{} fractional-v3 rows", rows.len());
    assert!(rows.len() >= 130, "{} rows", rows.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// With `SWITCHYARD_FLAGD_REFERENCE` set, every case is also evaluated by flagd's own Go evaluator
/// and must get the same details from Switchyard (metadata excepted: the reference program does
/// not print it).
#[test]
#[ignore = "needs the flagd reference program; scripts/test runs it"]
fn flagd_testbed_cases_agree_with_the_flagd_reference() {
    let cases = cases();
    let mut requests = Vec::new();
    let mut groups: Vec<(&str, Vec<&Case>)> = Vec::new();
    for (name, text) in FLAG_FILES {
        let group: Vec<&Case> = cases.iter().filter(|c| c.flag_file == *name).collect();
        let lines: Vec<Value> = group
            .iter()
            .map(|c| json!({"flag": c.flag, "type": c.flag_type.as_str(), "context": c.context}))
            .collect();
        requests.push(request(text, lines));
        groups.push((name, group));
    }
    let answers = ask(requests);
    assert_eq!(answers.len(), groups.len());

    let mut differences = Vec::new();
    let mut compared = 0;
    for ((name, group), answer) in groups.iter().zip(&answers) {
        let flags = compiled(name);
        let results = answer["results"]
            .as_array()
            .unwrap_or_else(|| panic!("flagd refused {name}: {answer}"));
        for (case, theirs) in group.iter().zip(results) {
            compared += 1;
            let ours = self::answer(&flags, case).details;
            if !same(&ours, theirs) {
                differences.push(format!(
                    "{} ({} as {}, context {}):\n  flagd:      {theirs}\n  switchyard: {ours}",
                    case.scenario,
                    case.flag,
                    case.flag_type.as_str(),
                    Value::Object(case.context.clone())
                ));
            }
        }
    }
    println!(
        "flagd testbed: {compared} cases compared with flagd, {} differ",
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{} cases differ from flagd:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
