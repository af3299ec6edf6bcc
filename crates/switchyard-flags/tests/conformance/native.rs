//! The native model: loading, validation errors, evaluation details, environments, ramps,
//! prerequisites, indexed sets and export round-trips.

use serde_json::json;
use switchyard_flags::{
    ErrorCode, EvaluationContext, FlagError, FlagSet, FlagType, Problem, Reason, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000); // 2024-01-01T00:00:00Z

const CHECKOUT: &str = r#"
flags:
  - key: new-checkout
    type: string
    description: The redesigned checkout
    environments:
      production: {enabled: false}
    variants: {classic: classic, redesign: redesign, beta: beta}
    defaultVariant: classic
    rules:
      - name: staff
        when: {attribute: {name: email, op: endsWith, values: ["@switchyard.dev"]}}
        serve: {variant: beta}
      - name: europe ramp
        when:
          all:
            - segment: europe
            - not: {attribute: {name: plan, op: in, values: [free]}}
        rollout:
          ramp: {from: 10, to: 50, start: "2024-01-01T00:00:00Z", end: "2024-01-11T00:00:00Z"}
        serve: {variant: redesign}
      - name: experiment
        when: {attribute: {name: appVersion, op: semverGte, values: ["2.0.0"]}}
        serve:
          split:
            variants: [{variant: classic, weight: 50}, {variant: redesign, weight: 50}]
            stickiness: targetingKey
    metadata: {owner: payments}
  - key: dark-mode
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    serve: {variant: on}
  - key: checkout-banner
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    prerequisites: [{flag: new-checkout, variants: [redesign]}]
    serve: {variant: on}
segments:
  europe: {attribute: {name: country, op: in, values: [fr, de, es, it]}}
"#;

fn checkout() -> FlagSet {
    FlagSet::from_native_yaml(CHECKOUT).unwrap()
}

#[test]
fn evaluation_details_serialise_as_the_cli_prints_them() {
    let flags = checkout().compile().unwrap();
    let context = EvaluationContext::new()
        .with_targeting_key("u1")
        .with_attribute("email", "ada@switchyard.dev");
    let details = flags.evaluate("new-checkout", Some(FlagType::String), &context, NOW);
    assert_eq!(
        serde_json::to_value(&details).unwrap(),
        json!({
            "key": "new-checkout", "value": "beta", "variant": "beta", "reason": "TARGETING_MATCH",
            "error_code": null, "error_message": null, "metadata": {"owner": "payments"}
        })
    );
    let missing = flags.evaluate("nope", None, &context, NOW);
    assert_eq!(
        serde_json::to_value(&missing).unwrap(),
        json!({
            "key": "nope", "value": null, "variant": null, "reason": "ERROR",
            "error_code": "FLAG_NOT_FOUND", "error_message": "flag `nope` does not exist", "metadata": {}
        })
    );
}

#[test]
fn reasons() {
    let flags = checkout().compile().unwrap();
    let nobody = EvaluationContext::new().with_targeting_key("u2");
    assert_eq!(
        flags.evaluate("dark-mode", None, &nobody, NOW).reason,
        Reason::Static
    );
    let details = flags.evaluate("new-checkout", None, &nobody, NOW);
    assert_eq!(
        (details.variant, details.reason),
        (Some("classic"), Reason::Default)
    );
    let tester = EvaluationContext::new()
        .with_targeting_key("u3")
        .with_attribute("appVersion", "2.1.0");
    assert_eq!(
        flags.evaluate("new-checkout", None, &tester, NOW).reason,
        Reason::Split
    );
    let wrong = flags.evaluate("dark-mode", Some(FlagType::String), &nobody, NOW);
    assert_eq!(wrong.error_code, Some(ErrorCode::TypeMismatch));
    let production = checkout().compile_for_environment("production").unwrap();
    let off = production.evaluate("new-checkout", None, &nobody, NOW);
    assert_eq!(
        (off.variant, off.reason),
        (Some("classic"), Reason::Disabled)
    );
}

#[test]
fn a_ramp_grows_with_time_and_nobody_leaves() {
    let flags = checkout().compile().unwrap();
    let users: Vec<EvaluationContext> = (0..2000)
        .map(|i| {
            EvaluationContext::new()
                .with_targeting_key(format!("user-{i}"))
                .with_attribute("country", "fr")
        })
        .collect();
    let day = 86_400_000;
    let mut previous: Vec<bool> = vec![false; users.len()];
    let mut counts = Vec::new();
    for d in 0..=12 {
        let now = Timestamp::from_unix_millis(NOW.unix_millis() + d * day);
        let inside: Vec<bool> = users
            .iter()
            .map(|u| flags.evaluate("new-checkout", None, u, now).variant == Some("redesign"))
            .collect();
        for (before, after) in previous.iter().zip(&inside) {
            assert!(!before || *after, "a user left the ramp on day {d}");
        }
        counts.push(inside.iter().filter(|x| **x).count());
        previous = inside;
    }
    assert!(
        (150..250).contains(&counts[0]),
        "10% at the start: {}",
        counts[0]
    );
    assert!(
        (900..1100).contains(&counts[10]),
        "50% at the end: {}",
        counts[10]
    );
}

#[test]
fn prerequisites_read_the_other_flags_variant() {
    let flags = checkout().compile().unwrap();
    let late = Timestamp::from_unix_millis(NOW.unix_millis() + 30 * 86_400_000);
    let (mut served, mut not_served) = (0, 0);
    for i in 0..200 {
        let user = EvaluationContext::new()
            .with_targeting_key(format!("p{i}"))
            .with_attribute("country", "de");
        let parent = flags.evaluate("new-checkout", None, &user, late);
        let child = flags.evaluate("checkout-banner", None, &user, late);
        assert_eq!(
            child.value == &json!(true),
            parent.variant == Some("redesign")
        );
        if child.reason == Reason::Static {
            served += 1;
        } else {
            not_served += 1;
        }
    }
    assert!(served > 0 && not_served > 0);
}

#[test]
fn in_with_100k_ids_is_a_set_lookup() {
    let ids: Vec<String> = (0..100_000).map(|i| format!("id-{i}")).collect();
    let set = FlagSet::from_native_json(
        &json!({"flags": [{
            "key": "allow", "type": "boolean", "variants": {"on": true, "off": false}, "defaultVariant": "off",
            "rules": [{"when": {"attribute": {"name": "targetingKey", "op": "in", "values": ids}}, "serve": {"variant": "on"}}]
        }]})
        .to_string(),
    )
    .unwrap();
    let flags = set.compile().unwrap();
    let start = std::time::Instant::now();
    for i in 0..10_000 {
        let user = EvaluationContext::new().with_targeting_key(format!("id-{}", i * 7));
        assert_eq!(
            flags.evaluate("allow", None, &user, NOW).value,
            &json!(true)
        );
    }
    let outsider = EvaluationContext::new().with_targeting_key("id-100000");
    assert_eq!(
        flags.evaluate("allow", None, &outsider, NOW).value,
        &json!(false)
    );
    // Not a timing assertion, just a guard against an accidental linear scan (10k × 100k).
    assert!(start.elapsed().as_secs() < 30);
}

type ProblemCheck = fn(&Problem) -> bool;

fn compile_error(yaml: &str) -> FlagError {
    FlagSet::from_native_yaml(yaml)
        .unwrap()
        .compile()
        .unwrap_err()
}

#[test]
fn invalid_flags_are_rejected_naming_flag_and_path() {
    let base = "flags:\n  - key: f\n    type: boolean\n    variants: {on: true, off: false}\n    defaultVariant: off\n";
    let cases: Vec<(String, &str, ProblemCheck)> = vec![
        (
            format!("{base}    rules: [{{serve: {{variant: maybe}}}}]\n"),
            "rules[0].serve.variant",
            |p| matches!(p, Problem::UnknownVariant(_)),
        ),
        (
            format!(
                "{base}    rules: [{{when: {{all: [{{attribute: {{name: x, op: matches, values: ['(']}}}}]}}}}]\n"
            ),
            "rules[0].when.all[0].attribute",
            |p| matches!(p, Problem::BadRegex(_)),
        ),
        (
            format!(
                "{base}    rules: [{{rollout: {{ramp: {{from: 50, to: 10, start: '2024-01-01T00:00:00Z', end: '2024-02-01T00:00:00Z'}}}}}}]\n"
            ),
            "rules[0].rollout.ramp",
            |p| matches!(p, Problem::RampDecreasing { .. }),
        ),
        (
            format!("{base}    rules: [{{rollout: {{percentage: 120}}}}]\n"),
            "rules[0].rollout.percentage",
            |p| matches!(p, Problem::Percentage(_)),
        ),
        (
            format!(
                "{base}    rules: [{{when: {{attribute: {{name: v, op: semverGt, values: ['1.x']}}}}}}]\n"
            ),
            "rules[0].when.attribute",
            |p| matches!(p, Problem::BadSemver(_)),
        ),
        (
            format!("{base}    rules: [{{when: {{segment: nowhere}}}}]\n"),
            "rules[0].when.segment",
            |p| matches!(p, Problem::UnknownSegment(_)),
        ),
        (
            format!("{base}    prerequisites: [{{flag: f}}]\n"),
            "prerequisites",
            |p| matches!(p, Problem::PrerequisiteCycle(_)),
        ),
        (
            "flags:\n  - key: f\n    type: integer\n    variants: {a: 1.5}\n".to_owned(),
            "variants.a",
            |p| matches!(p, Problem::ValueType { .. }),
        ),
    ];
    for (yaml, expected_path, check) in cases {
        match compile_error(&yaml) {
            FlagError::InvalidFlag {
                flag,
                path,
                problem,
            } => {
                assert_eq!(flag, "f");
                assert_eq!(path, expected_path, "{yaml}");
                assert!(check(&problem), "{yaml}: {problem:?}");
            }
            other => panic!("{yaml}: unexpected {other:?}"),
        }
    }
}

#[test]
fn unknown_fields_are_errors_with_a_location() {
    let error =
        FlagSet::from_native_yaml("flags:\n  - key: f\n    type: boolean\n    varients: {}\n")
            .unwrap_err();
    let message = format!("{:?}", error);
    assert!(message.contains("varients"), "{message}");
    assert!(matches!(error, FlagError::ParseYaml(_)));
}

#[test]
fn native_round_trips_through_yaml_and_json() {
    let set = checkout();
    let yaml = set.to_native_yaml().unwrap();
    assert_eq!(FlagSet::from_native_yaml(&yaml).unwrap(), set);
    let json = set.to_native_json().unwrap();
    assert_eq!(FlagSet::from_native_json(&json).unwrap(), set);
}

#[test]
fn imports_export_to_native_and_back_unchanged() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/unleash-client-specification"
    );
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "index.json")
            || path.extension().is_none_or(|e| e != "json")
        {
            continue;
        }
        let spec: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let set = FlagSet::from_unleash_json(&spec["state"].to_string()).unwrap();
        let yaml = set.to_native_yaml().unwrap();
        let back = FlagSet::from_native_yaml(&yaml).unwrap();
        assert_eq!(back, set, "{}", path.display());
        back.compile().unwrap();
    }
    let flagd = FlagSet::from_flagd_json(include_str!("../flagd/testkit-flags.json")).unwrap();
    assert_eq!(
        FlagSet::from_native_json(&flagd.to_native_json().unwrap()).unwrap(),
        flagd
    );
}
