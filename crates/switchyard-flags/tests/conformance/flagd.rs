//! flagd import, checked against vectors from flagd's own test suite (open-feature/flagd-testbed,
//! `evaluator/gherkin/*.feature`, ported as facts): the flag definitions are those of its
//! `evaluator/flags/testkit-flags.json` (every scenario runs in `flagd_testbed.rs`) plus a few flags
//! exercising `$flagd.*` and nested `if`.

use serde_json::{Value, json};
use switchyard_flags::{
    ErrorCode, EvaluationContext, FlagSet, FlagType, ImportError, Reason, Semantics, Timestamp,
};

const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn flags() -> switchyard_flags::CompiledFlags {
    let text = include_str!("../flagd/testkit-flags.json");
    FlagSet::from_flagd_json(text).unwrap().compile().unwrap()
}

fn eval(key: &str, context: &EvaluationContext) -> (Value, Reason) {
    let flags = flags();
    let details = flags.evaluate(key, None, context, NOW);
    (details.value.clone(), details.reason)
}

fn user_name(name: &str) -> EvaluationContext {
    EvaluationContext::new().with_attribute("user", json!({ "name": name }))
}

#[test]
fn fractional_v2_vectors_from_the_flagd_testbed() {
    for (name, expected) in [
        ("jack", "hearts"),
        ("queen", "spades"),
        ("ten", "clubs"),
        ("nine", "diamonds"),
        ("3", "clubs"),
    ] {
        let (value, reason) = eval("fractional-flag", &user_name(name));
        assert_eq!(value, json!(expected), "fractional-flag for {name}");
        // flagd answers TARGETING_MATCH for a fractional split, as for any targeting result.
        assert_eq!(reason, Reason::TargetingMatch);
    }
    for (name, expected) in [
        ("seven", "hearts"),
        ("eight", "diamonds"),
        ("nine", "clubs"),
        ("two", "spades"),
    ] {
        assert_eq!(
            eval("fractional-flag-A-shared-seed", &user_name(name)).0,
            json!(expected)
        );
        assert_eq!(
            eval("fractional-flag-B-shared-seed", &user_name(name)).0,
            json!(format!("ace-of-{expected}"))
        );
    }
    for (key, expected) in [("jon@company.com", "heads"), ("jane@company.com", "tails")] {
        let context = EvaluationContext::new().with_targeting_key(key);
        assert_eq!(
            eval("fractional-flag-shorthand", &context).0,
            json!(expected)
        );
    }
    for (key, expected) in [
        ("ejOoVL", "lower"),
        ("bY9fO-", "lower"),
        ("SI7p-", "lower"),
        ("6LvT0", "upper"),
        ("ceQdGm", "upper"),
    ] {
        let context = EvaluationContext::new().with_targeting_key(key);
        assert_eq!(
            eval("fractional-hash-edge-flag", &context).0,
            json!(expected),
            "hash edge {key}"
        );
    }
    assert_eq!(
        eval(
            "fractional-negative-weight-flag",
            &EvaluationContext::new().with_targeting_key("any")
        )
        .0,
        json!("two")
    );
}

#[test]
fn fractional_without_bucketing_value_serves_the_default() {
    let (value, reason) = eval("fractional-flag-shorthand", &EvaluationContext::new());
    assert_eq!((value, reason), (json!("draw"), Reason::Default));
}

#[test]
fn reasons_follow_flagd() {
    let empty = EvaluationContext::new();
    assert_eq!(eval("boolean-flag", &empty), (json!(true), Reason::Static));
    // Disabled: the caller's default (no value, no variant), reason DISABLED.
    assert_eq!(
        eval("disabled-flag", &empty),
        (Value::Null, Reason::Disabled)
    );
    assert_eq!(
        eval("undefined-default-flag", &empty),
        (Value::Null, Reason::Default)
    );
    let hit = EvaluationContext::new().with_targeting_key("5c3d8535-f81a-4478-a6d3-afaa4d51199e");
    assert_eq!(
        eval("targeting-key-flag", &hit),
        (json!("hit"), Reason::TargetingMatch)
    );
    let miss = EvaluationContext::new().with_targeting_key("f20bd32d-703b-48b6-bc8e-79d53c85134a");
    assert_eq!(
        eval("targeting-key-flag", &miss),
        (json!("miss"), Reason::Default)
    );
    let ceo = EvaluationContext::new().with_attribute("email", "jobs@orange.com");
    assert_eq!(
        eval("no-default-flag-null-targeting-variant", &ceo).0,
        json!("CEO")
    );
    assert_eq!(
        eval("no-default-flag-null-targeting-variant", &empty),
        (Value::Null, Reason::Default)
    );
}

#[test]
fn types_metadata_and_errors() {
    let flags = flags();
    let empty = EvaluationContext::new();
    assert_eq!(flags.flag_type("integer-flag"), Some(FlagType::Integer));
    assert_eq!(flags.flag_type("float-flag"), Some(FlagType::Float));
    assert_eq!(flags.flag_type("object-flag"), Some(FlagType::Object));
    let details = flags.evaluate("integer-flag", Some(FlagType::Float), &empty, NOW);
    assert_eq!(details.value, &json!(10));
    let details = flags.evaluate("integer-flag", Some(FlagType::Boolean), &empty, NOW);
    assert_eq!(
        (details.reason, details.error_code),
        (Reason::Error, Some(ErrorCode::TypeMismatch))
    );
    let details = flags.evaluate("missing-flag", Some(FlagType::Boolean), &empty, NOW);
    assert_eq!(details.error_code, Some(ErrorCode::FlagNotFound));
    let details = flags.evaluate("metadata-flag", None, &empty, NOW);
    assert_eq!(details.metadata.get("string"), Some(&json!("1.0.2")));
    assert_eq!(details.metadata.get("float"), Some(&json!(0.1)));
}

#[test]
fn operators_evaluators_and_flagd_properties() {
    let email = |e: &str| EvaluationContext::new().with_attribute("email", e);
    assert_eq!(
        eval("some-email-targeted-flag", &email("ballmer@macrosoft.com")).0,
        json!("hi")
    );
    assert_eq!(
        eval("some-email-targeted-flag", &email("bill@macrosoft.com")).0,
        json!("bye")
    );
    let id = |i: &str| EvaluationContext::new().with_attribute("id", i);
    assert_eq!(eval("starts-ends-flag", &id("abcdef")).0, json!("prefix"));
    assert_eq!(eval("starts-ends-flag", &id("uvwxyz")).0, json!("postfix"));
    assert_eq!(eval("starts-ends-flag", &id("lmnopq")).0, json!("none"));
    let version = |v: &str| EvaluationContext::new().with_attribute("version", v);
    for (v, expected) in [
        ("2.0.0", "equal"),
        ("2.1.0", "greater"),
        ("1.9.0", "lesser"),
    ] {
        assert_eq!(
            eval("equal-greater-lesser-version-flag", &version(v)).0,
            json!(expected)
        );
    }
    for (v, expected) in [("3.0.1", "minor"), ("3.1.0", "major"), ("4.0.0", "none")] {
        assert_eq!(
            eval("major-minor-version-flag", &version(v)).0,
            json!(expected)
        );
    }
    assert_eq!(
        eval("semver-partial-version-flag", &version("1.5.0")).0,
        json!("match")
    );
    assert_eq!(
        eval("timestamp-flag", &EvaluationContext::new()).0,
        json!("future")
    );
    assert_eq!(
        eval("flag-key-flag", &EvaluationContext::new()).0,
        json!("mine")
    );
}

#[test]
fn a_committed_if_branch_without_else_serves_the_default() {
    let context = |email: &str, age: u32| {
        EvaluationContext::new()
            .with_attribute("email", email)
            .with_attribute("age", age)
    };
    assert_eq!(
        eval("nested-if-without-else-flag", &context("kid@x.com", 12)).0,
        json!("a")
    );
    // The outer branch was taken, the inner `if` yields null: default, not the outer else.
    assert_eq!(
        eval("nested-if-without-else-flag", &context("adult@x.com", 40)),
        (json!("d"), Reason::Default)
    );
    assert_eq!(
        eval("nested-if-without-else-flag", &context("someone@y.com", 40)).0,
        json!("b")
    );
}

#[test]
fn flagd_flags_keep_their_targeting_and_semantics() {
    let set = FlagSet::from_flagd_json(include_str!("../flagd/testkit-flags.json")).unwrap();
    let flag = set
        .flags
        .iter()
        .find(|f| f.key == "fractional-flag")
        .unwrap();
    assert_eq!(flag.semantics, Semantics::Flagd);
    assert!(flag.targeting.as_ref().unwrap()["fractional"].is_array());
}

/// flagd loads a file whatever its targeting contains; a bad expression fails only the
/// evaluations that reach it, with PARSE_ERROR, and other flags keep working.
#[test]
fn unsupported_targeting_fails_only_its_own_evaluations() {
    let text = r#"{"flags": {
        "f": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
              "targeting": {"if": [{"==": [{"var": "x"}, 1]}, {"some_op": [1]}, "b"]}},
        "g": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a",
              "targeting": {"if": [{"$ref": "nope"}, "a"]}},
        "h": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}}}"#;
    let flags = FlagSet::from_flagd_json(text).unwrap().compile().unwrap();
    let with_x = |x: i64| EvaluationContext::new().with_attribute("x", x);
    let details = flags.evaluate("f", None, &with_x(2), NOW);
    assert_eq!(
        (details.value, details.reason),
        (&json!("b"), Reason::TargetingMatch)
    );
    let details = flags.evaluate("f", None, &with_x(1), NOW);
    assert_eq!(details.error_code, Some(ErrorCode::ParseError));
    let message = details.error_message.unwrap().to_string();
    assert!(message.contains("some_op"), "{message}");
    let details = flags.evaluate("g", None, &with_x(1), NOW);
    assert_eq!(details.error_code, Some(ErrorCode::ParseError));
    assert_eq!(
        flags.evaluate("h", None, &with_x(1), NOW).value,
        &json!(true)
    );
}

#[test]
fn what_flagd_refuses_is_refused_with_the_flag_and_field() {
    let bad_default = r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": "a"},
        "defaultVariant": "zz"}}}"#;
    match FlagSet::from_flagd_json(bad_default) {
        Err(ImportError::Unsupported { flag, path, .. }) => {
            assert_eq!((flag.as_str(), path.as_str()), ("f", "defaultVariant"));
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    for text in [
        r#"{"$evaluators": {"e": {}}, "flags": {}}"#,
        r#"{"flags": "x"}"#,
        r#"{"metadata": 1, "flags": {}}"#,
        r#"[]"#,
        r#"{}"#,
    ] {
        assert!(FlagSet::from_flagd_json(text).is_err(), "{text}");
    }
}
