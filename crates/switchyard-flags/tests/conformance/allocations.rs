//! Evaluation does not allocate on the common path: every case of the Unleash specification, and
//! a native flag set that exercises every operator, evaluate with zero heap allocations once the
//! plan is compiled and the context built.
//!
//! Counted per thread by `allocation-counter` (its global allocator is installed in this test
//! binary only), so tests running in parallel do not disturb the count.

use serde_json::{Value, json};
use switchyard_flags::{CompiledFlags, EvaluationContext, FlagSet, FlagType, Reason, Timestamp};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/unleash-client-specification"
);
const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000);

/// Heap allocations made by evaluating `key` for `context`.
fn allocations(flags: &CompiledFlags, key: &str, context: &EvaluationContext) -> u64 {
    // One evaluation first: the regex crate fills a per-thread cache on a pattern's first use.
    std::hint::black_box(flags.evaluate(key, None, context, NOW));
    allocation_counter::measure(|| {
        std::hint::black_box(flags.evaluate(key, None, context, NOW));
    })
    .count_total
}

#[test]
fn the_counter_sees_allocations() {
    // Guards against a vacuous pass if the counting allocator were not installed.
    let counted = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert_eq!(counted.count_total, 1);
}

#[test]
fn unleash_specification_cases_do_not_allocate() {
    let index: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/index.json")).unwrap())
            .unwrap();
    let mut cases = 0;
    let mut allocating = Vec::new();
    for file in &index {
        let spec: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/{file}")).unwrap())
                .unwrap();
        let flags = FlagSet::from_unleash_json(&spec["state"].to_string())
            .unwrap()
            .compile()
            .unwrap();
        for kind in ["tests", "variantTests"] {
            for case in spec[kind].as_array().into_iter().flatten() {
                cases += 1;
                let context = EvaluationContext::from_unleash(&case["context"]);
                let key = case["toggleName"].as_str().unwrap();
                let count = allocations(&flags, key, &context);
                if count > 0 {
                    allocating.push(format!("{file}: {} ({count})", case["description"]));
                }
            }
        }
    }
    assert_eq!(cases, 279);
    assert!(
        allocating.is_empty(),
        "allocating cases:\n{}",
        allocating.join("\n")
    );
}

const EVERY_OPERATOR: &str = r#"
flags:
  - key: everything
    type: string
    variants: {a: a, b: b, c: c}
    defaultVariant: a
    rules:
      - name: strings
        when:
          all:
            - {attribute: {name: email, op: endsWith, values: ["@EXAMPLE.com"], caseInsensitive: true}}
            - {attribute: {name: host, op: in, values: [Web-1], caseInsensitive: true}}
            - {attribute: {name: plan, op: notIn, values: [free]}}
            - {attribute: {name: email, op: matches, values: ["^[a-z]+@"]}}
            - {attribute: {name: user.tier, op: startsWith, values: [gold]}}
            - {attribute: {name: age, op: numGte, values: [18]}}
            - {attribute: {name: appVersion, op: semverGte, values: ["2.0.0-rc.1"]}}
            - {attribute: {name: appVersion, op: semverCaret, values: ["2.0.0"]}}
            - {attribute: {name: signup, op: dateBefore, values: ["2024-06-01T00:00:00Z"]}}
            - {attribute: {name: currentTime, op: dateAfter, values: ["2023-01-01T00:00:00Z"]}}
            - {attribute: {name: ip, op: inCidr, values: ["10.0.0.0/8", "2001:db8::/32"]}}
        rollout:
          ramp: {from: 10, to: 90, start: "2023-12-01T00:00:00Z", end: "2024-02-01T00:00:00Z"}
          stickiness: default
        serve:
          split:
            variants: [{variant: b, weight: 50}, {variant: c, weight: 50}]
            stickiness: age
            overrides: [{variant: c, when: {attribute: {name: beta, op: in, values: ["true"]}}}]
      - name: random
        rollout: {percentage: 50, stickiness: random}
        serve: {variant: b}
"#;

#[test]
fn every_operator_evaluates_without_allocating() {
    let flags = FlagSet::from_native_yaml(EVERY_OPERATOR)
        .unwrap()
        .compile()
        .unwrap();
    let matching = EvaluationContext::new()
        .with_targeting_key("user-7")
        .with_attribute("email", "ada@Example.COM")
        .with_attribute("host", "WEB-1")
        .with_attribute("plan", "pro")
        .with_attribute("user", json!({"tier": "gold-plus"}))
        .with_attribute("age", 42)
        .with_attribute("appVersion", "2.3.1")
        .with_attribute("signup", "2024-01-15T10:00:00Z")
        .with_attribute("ip", "10.1.2.3")
        .with_attribute("beta", false);
    let details = flags.evaluate("everything", Some(FlagType::String), &matching, NOW);
    // Every condition of the first rule holds (so each operator ran), and the split decided.
    assert_eq!(details.error_code, None);
    assert_eq!(details.reason, Reason::Split, "{details:?}");
    let mut outside = matching.clone();
    outside.attributes.insert("plan", "free");
    assert_ne!(
        flags.evaluate("everything", None, &outside, NOW).variant,
        None
    );
    let mut ipv6 = matching.clone();
    ipv6.attributes.insert("ip", " 2001:db8::7 ");
    let contexts = [
        ("matching", matching),
        ("outside", outside),
        ("ipv6", ipv6),
        ("empty", EvaluationContext::new()),
    ];
    for (name, context) in &contexts {
        assert_eq!(allocations(&flags, "everything", context), 0, "{name}");
    }
    // Errors are formatted only when displayed, so an unknown flag costs nothing either.
    assert_eq!(allocations(&flags, "no-such-flag", &contexts[0].1), 0);
}
