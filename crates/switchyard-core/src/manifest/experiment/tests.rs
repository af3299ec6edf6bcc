#![allow(clippy::unwrap_used)]

use std::path::Path;

use switchyard_flags::{EvaluationContext, FlagSet, FlagType, Reason, Timestamp};

use super::*;
use crate::manifest::{ManifestError, ManifestErrorKind, load_str};

const FLAG: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout-redesign}
spec:
  split:
    flag: {unit: userId}
  variants:
    - {name: control, weight: 50, value: classic}
    - {name: redesign, weight: 50, value: redesign}
  targeting: {attribute: {name: country, op: in, values: [fr]}}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: revenue, continuous: {event: purchase}}
    - name: order-value
      ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}
  guardrails:
    - {metric: revenue, maxDegradation: 0.05}
  minimumSampleSize: 1000
  maxDuration: 14days
  analysis: {method: fixed, alpha: 0.01, correction: benjamini-hochberg, power: 0.9, minimumDetectableEffect: 0.05}
"#;

const TRAFFIC: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: shop-v2}
spec:
  split:
    traffic: {app: shop, unit: {header: x-user-id}}
  variants:
    - {name: v1, weight: 1, version: v1}
    - {name: v2, weight: 1, version: v2}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: $latency_ms}
  guardrails:
    - {metric: $errors, maxDegradation: 0.01, scale: absolute}
    - {metric: $latency_ms, maxDegradation: 0.2}
"#;

fn load(text: &str) -> Experiment {
    let mut set = load_str(text, Path::new("e.yaml")).unwrap();
    assert_eq!(set.experiments.len(), 1);
    set.experiments.remove(0)
}

fn error(text: &str) -> ManifestError {
    let mut errors = load_str(text, Path::new("e.yaml")).unwrap_err().0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn loads_a_flag_experiment_with_every_field() {
    let e = load(FLAG);
    assert_eq!(e.key(), "checkout-redesign");
    assert!(matches!(&e.spec.split, SplitSpec::Flag(f) if f.unit == "userId"));
    assert_eq!(e.spec.variants.len(), 2);
    assert_eq!(e.spec.total_weight(), 100);
    assert!(e.spec.targeting.is_some());
    assert_eq!(e.spec.minimum_sample_size, 1000);
    assert_eq!(e.spec.max_duration, Duration::from_secs(14 * 24 * 3600));
    let a = &e.spec.analysis;
    assert_eq!(a.method, Method::Fixed);
    assert_eq!(a.correction, Correction::BenjaminiHochberg);
    assert_eq!(a.minimum_detectable_effect, Some(0.05));
    assert!(a.cuped);
    let metrics = e.all_metrics().unwrap();
    assert_eq!(metrics.len(), 3);
    assert_eq!(metrics[2].1.kind(), "ratio");
    assert_eq!(e.spec.guardrails[0].scale, Scale::Relative);
}

#[test]
fn defaults_apply() {
    let text = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: minimal}
spec:
  split: {flag: {}}
  variants: [{name: a, weight: 1}, {name: b, weight: 1}]
  metrics: [{name: clicked, conversion: {event: click}}]
"#;
    let e = load(text);
    assert!(matches!(&e.spec.split, SplitSpec::Flag(f) if f.unit == DEFAULT_UNIT));
    assert_eq!(e.spec.minimum_sample_size, DEFAULT_MINIMUM_SAMPLE_SIZE);
    assert_eq!(e.spec.max_duration, DEFAULT_MAX_DURATION);
    assert_eq!(e.spec.analysis, AnalysisSettings::default());
    assert_eq!(e.spec.analysis.method, Method::Sequential);
    assert_eq!(e.spec.metrics[0].better(), Better::Higher);
    // Without values, the flag serves the variant names.
    let flag = e.flag_definition(FlagServing::Split).unwrap();
    assert_eq!(flag.flag_type, FlagType::String);
    assert_eq!(flag.variants["b"], serde_json::json!("b"));
}

#[test]
fn loads_a_traffic_experiment_with_builtin_metrics() {
    let e = load(TRAFFIC);
    let SplitSpec::Traffic(t) = &e.spec.split else {
        panic!("traffic")
    };
    assert_eq!(t.app.as_str(), "shop");
    assert!(e.flag_definition(FlagServing::Split).is_none());
    let metrics = e.all_metrics().unwrap();
    let names: Vec<&str> = metrics.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, ["purchased", "$latency_ms", "$errors"]);
    assert_eq!(metrics[2].2, Better::Lower);
    let MetricDefinition::Ratio {
        numerator: EventAggregate::Count(errors),
        denominator: EventAggregate::Count(requests),
    } = &metrics[2].1
    else {
        panic!("$errors counts errors per request")
    };
    assert_eq!(errors.as_str(), SERVER_ERROR_EVENT);
    assert_eq!(requests.as_str(), REQUEST_EVENT);
}

#[test]
fn the_flag_splits_targeted_units_and_serves_control_to_the_others() {
    let e = load(FLAG);
    let flag = e.flag_definition(FlagServing::Split).unwrap();
    let set = FlagSet {
        flags: vec![flag],
        segments: Default::default(),
    };
    let compiled = set.compile().unwrap();
    let now = Timestamp::from_unix_millis(0);
    let outside = EvaluationContext::new()
        .with_attribute("userId", "u1")
        .with_attribute("country", "de");
    let d = compiled.evaluate("checkout-redesign", None, &outside, now);
    assert_eq!(d.variant, Some("control"));
    assert_eq!(d.reason, Reason::Default);
    let mut served = std::collections::BTreeMap::new();
    for i in 0..400 {
        let ctx = EvaluationContext::new()
            .with_attribute("userId", format!("user-{i}"))
            .with_attribute("country", "fr");
        let d = compiled.evaluate("checkout-redesign", None, &ctx, now);
        assert_eq!(d.reason, Reason::Split);
        // The flag engine's bucketing is the experiment's assignment.
        let expected = switchyard_flags::hashing::assign_variant(
            switchyard_flags::HashVersion::V1,
            "checkout-redesign",
            format!("user-{i}").as_str(),
            &[("control", 50), ("redesign", 50)],
        );
        assert_eq!(d.variant, expected);
        *served.entry(d.variant.unwrap()).or_insert(0) += 1;
    }
    assert!(
        served["control"] > 150 && served["redesign"] > 150,
        "{served:?}"
    );
    let stopped = e.flag_definition(FlagServing::Variant("control")).unwrap();
    assert!(stopped.rules.is_empty());
}

fn problem(e: &ManifestError) -> &ExperimentProblem {
    match &e.kind {
        ManifestErrorKind::Experiment(p) => p.as_ref(),
        other => panic!("not an experiment problem: {other}"),
    }
}

#[test]
fn weights_must_sum_to_a_positive_number() {
    let text = FLAG
        .replace("weight: 50, value: classic", "weight: 0, value: classic")
        .replace("weight: 50, value: redesign", "weight: 0, value: redesign");
    let e = error(&text);
    assert!(matches!(
        problem(&e),
        ExperimentProblem::WeightsNotPositive { sum: 0 }
    ));
    assert_eq!(e.path, "spec.variants");
    // A list is located where it starts.
    assert_eq!(e.line, Some(8));
    assert_eq!(
        e.to_string(),
        "e.yaml:8:5: spec.variants: weights must sum to a positive number, got 0"
    );
    let negative = FLAG.replace("weight: 50, value: classic", "weight: -5, value: classic");
    let e = error(&negative);
    assert_eq!(e.path, "spec.variants[0].weight");
    assert_eq!(e.line, Some(8));
}

#[test]
fn variant_problems_are_located_at_the_variant() {
    let e = error(&FLAG.replace("name: redesign, weight", "name: control, weight"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::DuplicateVariant { .. }
    ));
    assert_eq!(e.path, "spec.variants[1].name");
    assert_eq!(e.line, Some(9));
    let e = error(&FLAG.replace("    - {name: redesign, weight: 50, value: redesign}\n", ""));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::TooFewVariants { found: 1 }
    ));
    let e = error(&FLAG.replace("value: redesign}", "value: 3}"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::MixedValueTypes { .. }
    ));
    assert_eq!(e.path, "spec.variants[1].value");
    assert_eq!(e.line, Some(9));
    let e = error(&FLAG.replace("value: classic}", "value: classic, version: v1}"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::VersionInFlagExperiment
    ));
    let e = error(&FLAG.replace("weight: 50, value: classic", "weight: 0, value: classic"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::ControlWithoutWeight
    ));
}

#[test]
fn traffic_variants_need_distinct_versions_and_no_targeting() {
    let e = error(&TRAFFIC.replace("version: v2}", "version: v1}"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::DuplicateVersion { .. }
    ));
    assert_eq!(e.path, "spec.variants[1].version");
    let e = error(&TRAFFIC.replace(", version: v2}", "}"));
    assert!(matches!(problem(&e), ExperimentProblem::MissingVersion));
    assert_eq!(e.line, Some(9));
    let e = error(&TRAFFIC.replace(
        "  metrics:\n",
        "  targeting: {attribute: {name: a, op: in, values: [x]}}\n  metrics:\n",
    ));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::TargetingInTrafficExperiment
    ));
}

#[test]
fn metric_problems_are_located() {
    let e = error(&FLAG.replace("name: revenue, continuous", "name: purchased, continuous"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::DuplicateMetric { .. }
    ));
    assert_eq!(e.path, "spec.metrics[1].name");
    assert_eq!(e.line, Some(13));
    let e = error(&FLAG.replace(
        "{name: revenue, continuous: {event: purchase}}",
        "{name: revenue, continuous: {event: purchase}, conversion: {event: x}}",
    ));
    assert!(matches!(problem(&e), ExperimentProblem::MetricDefinition));
    assert_eq!(e.path, "spec.metrics[1].continuous");
    let e = error(&FLAG.replace(
        "{name: revenue, continuous: {event: purchase}}",
        "{name: revenue}",
    ));
    assert_eq!(e.path, "spec.metrics[1]");
    assert!(e.to_string().contains("exactly one of"), "{e}");
    let e = error(&FLAG.replace("purchased, conversion", "$errors, conversion"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::BuiltinRedefined { .. }
    ));
    let e = error(&FLAG.replace(
        "{name: purchased, conversion: {event: purchase}}",
        "{name: $errors}",
    ));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::BuiltinInFlagExperiment { .. }
    ));
    let e = error(&FLAG.replace(
        "{event: purchase}}\n    - {name: revenue",
        "{event: $request}}\n    - {name: revenue",
    ));
    assert_eq!(e.path, "spec.metrics[0].conversion.event");
    assert!(e.to_string().contains("reserved"), "{e}");
    let e = error(&FLAG.replace("name: purchased", "name: $purchased"));
    assert!(
        e.to_string()
            .contains("unknown built-in metric `$purchased`"),
        "{e}"
    );
}

#[test]
fn guardrails_must_name_known_metrics() {
    let e = error(&FLAG.replace("{metric: revenue,", "{metric: revenu,"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::UnknownGuardrailMetric { .. }
    ));
    assert_eq!(e.path, "spec.guardrails[0].metric");
    assert_eq!(e.line, Some(17));
    assert!(
        e.to_string()
            .contains("unknown metric `revenu`; the experiment's metrics are `purchased`, `revenue`, `order-value`"),
        "{e}"
    );
    let e = error(&FLAG.replace("{metric: revenue,", "{metric: $errors,"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::BuiltinInFlagExperiment { .. }
    ));
    let e = error(&FLAG.replace("maxDegradation: 0.05", "maxDegradation: -1"));
    assert_eq!(e.path, "spec.guardrails[0].maxDegradation");
    let twice = TRAFFIC.replace(
        "{metric: $latency_ms, maxDegradation: 0.2}",
        "{metric: $errors, maxDegradation: 0.2}",
    );
    let e = error(&twice);
    assert!(matches!(
        problem(&e),
        ExperimentProblem::DuplicateGuardrail { .. }
    ));
    assert_eq!(e.path, "spec.guardrails[1].metric");
}

#[test]
fn analysis_numbers_are_checked() {
    let e = error(&FLAG.replace("alpha: 0.01", "alpha: 0.7"));
    assert_eq!(e.path, "spec.analysis.alpha");
    assert!(e.to_string().contains("in (0, 0.5]"), "{e}");
    let e = error(&FLAG.replace("power: 0.9", "power: 1.0"));
    assert_eq!(e.path, "spec.analysis.power");
    let e = error(&FLAG.replace(
        "minimumDetectableEffect: 0.05",
        "minimumDetectableEffect: 0",
    ));
    assert_eq!(e.path, "spec.analysis.minimumDetectableEffect");
    let e = error(&FLAG.replace("minimumSampleSize: 1000", "minimumSampleSize: 1"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::MinimumSampleSize { value: 1 }
    ));
    let e = error(&FLAG.replace("maxDuration: 14days", "maxDuration: 0s"));
    assert!(matches!(problem(&e), ExperimentProblem::ZeroMaxDuration));
    let e = error(&FLAG.replace("method: fixed", "method: frequentist"));
    assert_eq!(e.path, "spec.analysis.method");
    assert!(
        e.to_string().contains("unknown variant `frequentist`"),
        "{e}"
    );
}

#[test]
fn targeting_is_compiled_by_the_flag_engine() {
    let e = error(&FLAG.replace(
        "{attribute: {name: country, op: in, values: [fr]}}",
        "{all: [{attribute: {name: email, op: matches, values: [\"(\"]}}]}",
    ));
    assert_eq!(e.path, "spec.targeting.all[0].attribute");
    assert!(e.to_string().contains("invalid regular expression"), "{e}");
    assert_eq!(e.line, Some(10));
    let e = error(&FLAG.replace(
        "{attribute: {name: country, op: in, values: [fr]}}",
        "{segment: europe}",
    ));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::TargetingSegment { .. }
    ));
    let e = error(&FLAG.replace("op: in,", "op: inn,"));
    assert!(e.path.starts_with("spec.targeting"), "{}", e.path);
    assert!(e.to_string().contains("unknown variant `inn`"), "{e}");
    let e = error(&FLAG.replace("flag: {unit: userId}", "flag: {unit: random}"));
    assert!(matches!(
        problem(&e),
        ExperimentProblem::UnitNotAnAttribute { .. }
    ));
    assert_eq!(e.path, "spec.split.flag.unit");
}

#[test]
fn split_needs_exactly_one_kind() {
    let e = error(&FLAG.replace(
        "flag: {unit: userId}",
        "flag: {}\n    traffic: {app: shop, unit: {header: x}}",
    ));
    assert!(
        e.to_string().contains("found both `flag` and `traffic`"),
        "{e}"
    );
    let e = error(&FLAG.replace("flag: {unit: userId}", "flags: {}"));
    assert!(e.to_string().contains("unknown variant `flags`"), "{e}");
}

#[test]
fn experiments_are_documents_of_the_set() {
    let text = format!("{FLAG}---\n{TRAFFIC}");
    let set = load_str(&text, Path::new("e.yaml")).unwrap();
    let kinds: Vec<&str> = set.manifests().iter().map(|m| m.kind()).collect();
    assert_eq!(kinds, ["Experiment", "Experiment"]);
    assert!(!set.is_empty());
    let twice = format!("{FLAG}---\n{FLAG}");
    let errors = load_str(&twice, Path::new("e.yaml")).unwrap_err().0;
    assert!(
        errors[0]
            .to_string()
            .contains("Experiment `checkout-redesign` is defined twice")
    );
}

#[test]
fn round_trips_through_json() {
    let e = load(FLAG);
    let json = serde_json::to_value(crate::manifest::Manifest::Experiment(e.clone())).unwrap();
    assert_eq!(json["kind"], "Experiment");
    assert_eq!(json["spec"]["targeting"]["attribute"]["name"], "country");
    let back: crate::manifest::Manifest = serde_json::from_value(json).unwrap();
    assert_eq!(back, crate::manifest::Manifest::Experiment(e));
}

/// What the analysis reads may change on a counted experiment; what made its counts may not.
#[test]
fn a_counted_experiment_keeps_its_counting() {
    let stored = load(FLAG);
    for (from, to) in [
        (
            "method: fixed, alpha: 0.01",
            "method: bayesian, alpha: 0.05",
        ),
        ("{name: control, weight: 50,", "{name: control, weight: 80,"),
        ("maxDegradation: 0.05", "maxDegradation: 0.1"),
        (
            "    - name: order-value\n      ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}\n",
            "",
        ),
    ] {
        let text = FLAG.replace(from, to);
        assert_ne!(text, FLAG, "{from}");
        assert_eq!(load(&text).counting_change(&stored), None, "{to}");
    }
    for (from, to, path) in [
        (
            "flag: {unit: userId}",
            "flag: {unit: accountId}",
            "spec.split",
        ),
        (
            "name: redesign, weight",
            "name: new, weight",
            "spec.variants",
        ),
        (
            "{name: revenue, continuous: {event: purchase}}",
            "{name: revenue, continuous: {event: checkout}}",
            "spec.metrics[1]",
        ),
        (
            "{name: revenue, continuous: {event: purchase}}",
            "{name: revenue, continuous: {event: purchase}, window: {duration: 1day}}",
            "spec.metrics[1]",
        ),
        (
            "{name: revenue, continuous: {event: purchase}}",
            "{name: revenue, continuous: {event: purchase}, cap: {value: 100}}",
            "spec.metrics[1]",
        ),
        (
            "{name: revenue, continuous: {event: purchase}}",
            "{name: revenue, continuous: {event: purchase}}\n    - {name: refunds, continuous: {event: refund}}",
            "spec.metrics[2]",
        ),
        (
            "minimumDetectableEffect: 0.05}",
            "minimumDetectableEffect: 0.05, cupedLookback: 14days}",
            "spec.analysis.cupedLookback",
        ),
    ] {
        let text = FLAG.replace(from, to);
        assert_ne!(text, FLAG, "{from}");
        let change = load(&text).counting_change(&stored);
        assert_eq!(change.map(|(p, _)| p), Some(path.to_owned()), "{to}");
    }
    // A percentile cap is recounted at each analysis: it may come, go and move.
    let capped = |p: &str| {
        load(&FLAG.replace(
            "{name: revenue, continuous: {event: purchase}}",
            &format!(
                "{{name: revenue, continuous: {{event: purchase}}, cap: {{percentile: {p}}}}}"
            ),
        ))
    };
    assert_eq!(capped("0.9").counting_change(&stored), None);
    assert_eq!(capped("0.99").counting_change(&capped("0.9")), None);
}
