//! Native flags exported to Unleash: for every flag and context, Unleash's own engine
//! (yggdrasil) on the export answers what `unleash_answer` reads from native evaluation; flags
//! Unleash cannot express are left out with a reason.

use serde_json::{Value, json};
use switchyard_flags::{EvaluationContext, FlagSet, Timestamp, unleash_answer};
use unleash_yggdrasil::{Context, EngineState, UpdateMessage};

// 2024-01-01T00:00:00Z; every context sets `currentTime` to it, so both engines agree on "now".
const NOW: Timestamp = Timestamp::from_unix_millis(1_704_067_200_000);

const FLAGS: &str = r#"
segments:
  staff: {attribute: {name: email, op: endsWith, values: ["@example.com"]}}
flags:
  - key: beta
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {segment: staff}
        serve: {variant: on}
      - when: {attribute: {name: plan, op: in, values: [pro, team]}}
        rollout: {percentage: 40}
        serve: {variant: on}
  - key: kill-switch
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: on
  - key: killed
    type: boolean
    enabled: false
    variants: {on: true, off: false}
    defaultVariant: on
  - key: dark-in-production
    type: boolean
    enabled: false
    environments: {production: {enabled: true}}
    variants: {on: true, off: false}
    defaultVariant: on
  - key: ends-with-off
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {not: {any: [{attribute: {name: country, op: in, values: [DE, FR]}}, {segment: staff}]}}
        rollout: {percentage: 70, stickiness: targetingKey, salt: shared}
        serve: {variant: on}
      - serve: {variant: off}
  - key: versions
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {all: [{attribute: {name: version, op: semverGte, values: ["2.1.0"]}}, {attribute: {name: version, op: semverLt, values: ["3.0.0"]}}]}
        serve: {variant: on}
      - when: {attribute: {name: age, op: numGte, values: [18]}}
        serve: {variant: on}
      - when: {attribute: {name: signup, op: dateBefore, values: ["2023-06-01T00:00:00Z"]}}
        serve: {variant: on}
  - key: layout
    type: string
    variants: {classic: classic, grid: grid, list: list}
    defaultVariant: classic
    serve:
      split:
        variants: [{variant: classic, weight: 50}, {variant: grid, weight: 30}, {variant: list, weight: 20}]
        overrides:
          - {variant: grid, when: {attribute: {name: targetingKey, op: in, values: [u1, u2]}}}
    rules:
      - when: {attribute: {name: plan, op: in, values: [free]}}
        serve: {variant: list}
      - when: {attribute: {name: country, op: notIn, values: [US]}}
  - key: limit
    type: integer
    variants: {low: 10, high: 100}
    defaultVariant: low
    rules:
      - when: {attribute: {name: plan, op: in, values: [pro]}}
        rollout: {percentage: 50, salt: limits}
        serve: {split: {variants: [{variant: low, weight: 1}, {variant: high, weight: 3}], salt: limits}}
  - key: theme
    type: object
    variants: {dark: {bg: black}, light: {bg: white}}
    defaultVariant: light
    rules:
      - when: {attribute: {name: email, op: contains, values: [DARK], caseInsensitive: true}}
        serve: {variant: dark}
  - key: checkout
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    prerequisites: [{flag: layout, variants: [grid]}]
    rules:
      - serve: {variant: on}
  - key: no-rollout
    type: string
    variants: {a: a}
    defaultVariant: a
    rules:
      - rollout: {percentage: 0}
        serve: {variant: a}
  - key: ramped
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - rollout: {ramp: {from: 0, to: 100, start: "2024-01-01T00:00:00Z", end: "2024-02-01T00:00:00Z"}}
        serve: {variant: on}
  - key: caret
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {attribute: {name: version, op: semverCaret, values: ["1.2.0"]}}
        serve: {variant: on}
  - key: off-first
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    rules:
      - when: {attribute: {name: plan, op: in, values: [free]}}
        serve: {variant: off}
      - serve: {variant: on}
  - key: coin
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    serve: {split: {variants: [{variant: on, weight: 1}, {variant: off, weight: 1}]}}
  - key: after-ramped
    type: boolean
    variants: {on: true, off: false}
    defaultVariant: off
    prerequisites: [{flag: ramped}]
  - key: flagd-style
    type: string
    semantics: flagd
    variants: {a: a, b: b}
    defaultVariant: a
    targeting: {if: [{"==": [{var: plan}, pro]}, b, null]}
"#;

fn contexts() -> Vec<Value> {
    let emails = [None, Some("ann@example.com"), Some("bob@Dark.org")];
    let plans = [None, Some("free"), Some("pro"), Some("team")];
    let countries = [None, Some("DE"), Some("US")];
    let versions = [None, Some("2.0.9"), Some("2.1.0"), Some("3.0.0")];
    let mut result = Vec::new();
    for user in 0..40 {
        let pick = |n: usize| (user * 7 + n * 3) % 12;
        let mut properties = serde_json::Map::new();
        if let Some(email) = emails[pick(1) % emails.len()] {
            properties.insert("email".into(), email.into());
        }
        if let Some(plan) = plans[pick(2) % plans.len()] {
            properties.insert("plan".into(), plan.into());
        }
        if let Some(country) = countries[pick(3) % countries.len()] {
            properties.insert("country".into(), country.into());
        }
        if let Some(version) = versions[user % versions.len()] {
            properties.insert("version".into(), version.into());
        }
        if user % 5 == 0 {
            properties.insert("age".into(), ((user * 3) % 40).to_string().into());
        }
        if user % 3 == 0 {
            properties.insert("signup".into(), "2023-01-15T00:00:00Z".into());
        }
        result.push(json!({
            "userId": format!("u{user}"),
            "currentTime": "2024-01-01T00:00:00Z",
            "properties": properties,
        }));
    }
    result
}

#[test]
fn yggdrasil_on_the_export_answers_what_native_evaluation_does() {
    let set = FlagSet::from_native_yaml(FLAGS).unwrap();
    let compiled = set.compile_for_environment("production").unwrap();
    let export = set.to_unleash("production");
    let engine = EngineState::default();
    let message: UpdateMessage =
        serde_json::from_value(json!({"version": 2, "features": export.features})).unwrap();
    engine.take_state(message);
    let exported: Vec<&str> = export
        .features
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for context in contexts() {
        let ours = EvaluationContext::from_unleash(&context);
        let theirs: Context = serde_json::from_value(context.clone()).unwrap();
        for key in &exported {
            checked += 1;
            let details = compiled.evaluate(key, None, &ours, NOW);
            let want = unleash_answer(&details);
            let enabled = engine.is_enabled(key, &theirs, &None);
            let mut got = serde_json::to_value(engine.get_variant(key, &theirs, &None)).unwrap();
            got["feature_enabled"] = got["featureEnabled"].take();
            got.as_object_mut().unwrap().remove("featureEnabled");
            let want_variant = want.clone().unwrap_or_else(
                || json!({"name": "disabled", "enabled": false, "feature_enabled": false}),
            );
            if enabled != want.is_some() || got != want_variant {
                problems.push(format!(
                    "{key} for {context}: native {want_variant} (enabled {}), yggdrasil {got} \
                     (enabled {enabled})",
                    want.is_some()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let left_out: Vec<(&str, &str)> = export
        .left_out
        .iter()
        .map(|l| (l.flag.as_str(), l.reason.as_str()))
        .collect();
    let names: Vec<&str> = left_out.iter().map(|(flag, _)| *flag).collect();
    assert_eq!(
        names,
        [
            "ramped",
            "caret",
            "off-first",
            "coin",
            "flagd-style",
            "after-ramped"
        ],
        "{left_out:#?}"
    );
    for (flag, fragment) in [
        ("ramped", "rules[0].rollout is a ramp"),
        ("caret", "SemverCaret"),
        ("off-first", "rules[0] serves false ahead of rules[1]"),
        ("coin", "a boolean split serves both values"),
        ("flagd-style", "JsonLogic"),
        ("after-ramped", "prerequisite `ramped` is not exported"),
    ] {
        let reason = left_out.iter().find(|(f, _)| *f == flag).unwrap().1;
        assert!(reason.contains(fragment), "{flag}: {reason}");
    }
    assert_eq!(checked, 40 * 11);
}

#[test]
fn kill_switches_and_environments_become_feature_state() {
    let set = FlagSet::from_native_yaml(FLAGS).unwrap();
    let enabled = |environment: &str, key: &str| {
        set.to_unleash(environment)
            .features
            .iter()
            .find(|f| f["name"] == key)
            .map(|f| f["enabled"].clone())
    };
    assert_eq!(
        enabled("production", "dark-in-production"),
        Some(json!(true))
    );
    assert_eq!(enabled("staging", "dark-in-production"), Some(json!(false)));
    assert_eq!(enabled("production", "killed"), Some(json!(false)));
    assert_eq!(enabled("production", "kill-switch"), Some(json!(true)));
    // A rollout of 0 % admits nobody: no strategy, so disabled.
    assert_eq!(enabled("production", "no-rollout"), Some(json!(false)));
}
