#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_core::Timestamp;
use switchyard_core::manifest::load_str;
use switchyard_stats::ratio::{RatioArm, ratio_summary};
use switchyard_stats::{
    Alternative, CupedArm, Difference, Proportion, TTestOptions, cuped_test, two_proportion_test,
    welch_t_test,
};

use super::*;
use crate::data::VariantData;
use crate::moments::UnitValue;
use switchyard_core::manifest::experiment::{ProportionTest, Scale};

const DAY: u64 = 86_400_000;
const START: Timestamp = Timestamp(1_714_521_600_000);

const EXPERIMENT: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: checkout-redesign}
spec:
  split: {flag: {unit: userId}}
  variants:
    - {name: control, weight: 50}
    - {name: redesign, weight: 50}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
    - {name: revenue, continuous: {event: purchase}}
    - name: order-value
      ratio: {numerator: {sum: purchase}, denominator: {count: purchase}}
  guardrails:
    - {metric: revenue, maxDegradation: 0.1}
  minimumSampleSize: 500
  maxDuration: 14days
  analysis: {method: sequential, alpha: 0.05, correction: holm}
"#;

fn compile(text: &str) -> CompiledExperiment {
    let set = load_str(text, Path::new("e.yaml")).unwrap();
    CompiledExperiment::new(&set.experiments[0]).unwrap()
}

fn with_method(method: &str) -> CompiledExperiment {
    compile(&EXPERIMENT.replace("method: sequential", &format!("method: {method}")))
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// How simulated units of one variant behave.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    units: usize,
    conversion: f64,
    order_value: f64,
}

/// Per-unit values of the three metrics of `EXPERIMENT` for simulated units: each unit has a
/// propensity that drives both its pre-exposure purchases (the covariate) and its conversion.
fn simulate(rng: &mut StdRng, b: Behaviour) -> BTreeMap<&'static str, Vec<UnitValue>> {
    let mut out: BTreeMap<&str, Vec<UnitValue>> = BTreeMap::new();
    for _ in 0..b.units {
        // Loyal units buy more often and spend more, before and after exposure alike.
        let propensity = 0.2 + 1.6 * rng.random::<f64>();
        let taste = b.order_value * propensity;
        let spend = |rng: &mut StdRng| (taste + 5.0 * normal(rng)).max(1.0);
        let before = if rng.random::<f64>() < (b.conversion * propensity).min(1.0) {
            spend(rng)
        } else {
            0.0
        };
        let mut orders = 0.0;
        let mut revenue = 0.0;
        if rng.random::<f64>() < (b.conversion * propensity).min(1.0) {
            orders = if rng.random::<f64>() < 0.3 { 2.0 } else { 1.0 };
            for _ in 0..orders as usize {
                revenue += spend(rng);
            }
        }
        let converted = if orders > 0.0 { 1.0 } else { 0.0 };
        let bought_before = if before > 0.0 { 1.0 } else { 0.0 };
        out.entry("purchased").or_default().push(UnitValue {
            x: converted,
            y: 0.0,
            c: bought_before,
        });
        out.entry("revenue").or_default().push(UnitValue {
            x: revenue,
            y: 0.0,
            c: before,
        });
        out.entry("order-value").or_default().push(UnitValue {
            x: revenue,
            y: orders,
            c: 0.0,
        });
    }
    out
}

fn variant(values: &BTreeMap<&str, Vec<UnitValue>>) -> VariantData {
    let units = values.values().next().map_or(0, Vec::len) as u64;
    VariantData {
        units,
        metrics: values
            .iter()
            .map(|(name, v)| ((*name).to_owned(), Moments::of(v.iter().copied())))
            .collect(),
    }
}

fn data(control: &VariantData, treatment: &VariantData) -> ExperimentData {
    ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            ("control".to_owned(), control.clone()),
            ("redesign".to_owned(), treatment.clone()),
        ]),
    }
}

fn day(n: u64) -> Timestamp {
    Timestamp(START.0 + n * DAY)
}

fn metric<'a>(r: &'a Results, name: &str) -> &'a MetricResult {
    r.metrics.iter().find(|m| m.name == name).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn a_clear_winner_ships() {
    let mut rng = StdRng::seed_from_u64(7);
    let control = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.10,
            order_value: 50.0,
        },
    );
    let treatment = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.14,
            order_value: 50.0,
        },
    );
    for method in ["fixed", "sequential", "bayesian"] {
        let e = with_method(method);
        let r = analyze(&e, &data(&variant(&control), &variant(&treatment)), day(7)).unwrap();
        let purchased = metric(&r, "purchased");
        assert_eq!(
            purchased.comparisons[0].verdict,
            Verdict::Better,
            "{method}\n{r}"
        );
        let lift = purchased.comparisons[0].relative.unwrap();
        assert!(
            lift.estimate > 0.2 && lift.ci[0] > 0.0,
            "{method}: {lift:?}"
        );
        assert_eq!(
            r.recommendation,
            Recommendation::Ship {
                variant: "redesign".into()
            },
            "{method}\n{r}"
        );
        assert!(r.srm.as_ref().is_some_and(|s| !s.mismatch));
        match method {
            "bayesian" => {
                assert!(purchased.comparisons[0].chance_to_win.unwrap() > 0.999);
                assert!(purchased.comparisons[0].p_value.is_none());
            }
            _ => assert!(purchased.comparisons[0].adjusted_p_value.unwrap() < 1e-4),
        }
    }
}

#[test]
fn an_a_a_test_finds_nothing_and_keeps_running() {
    let mut rng = StdRng::seed_from_u64(11);
    let same = Behaviour {
        units: 2000,
        conversion: 0.10,
        order_value: 50.0,
    };
    let control = simulate(&mut rng, same);
    let treatment = simulate(&mut rng, same);
    let e = with_method("sequential");
    let r = analyze(&e, &data(&variant(&control), &variant(&treatment)), day(3)).unwrap();
    for m in &r.metrics {
        assert_eq!(m.comparisons[0].verdict, Verdict::Inconclusive, "{r}");
        let ci = m.comparisons[0].relative.unwrap().ci;
        assert!(ci[0] < 0.0 && ci[1] > 0.0, "{}: {ci:?}", m.name);
    }
    assert!(
        matches!(r.recommendation, Recommendation::KeepRunning { .. }),
        "{r}"
    );
}

#[test]
fn a_a_false_positives_stay_near_alpha() {
    // 300 A/A experiments of 1000 units per variant: the fixed-horizon test on the primary metric
    // is significant about 5 % of the time, the confidence sequence at most that often.
    let mut rng = StdRng::seed_from_u64(2024);
    let same = Behaviour {
        units: 1000,
        conversion: 0.2,
        order_value: 40.0,
    };
    let (fixed, sequential) = (with_method("fixed"), with_method("sequential"));
    let (mut fixed_hits, mut sequential_hits) = (0, 0);
    let runs = 300;
    for _ in 0..runs {
        let d = data(
            &variant(&simulate(&mut rng, same)),
            &variant(&simulate(&mut rng, same)),
        );
        let significant = |e: &CompiledExperiment| {
            let r = analyze(e, &d, day(5)).unwrap();
            let p = r.metrics[0].comparisons[0].p_value.unwrap();
            p < 0.05
        };
        fixed_hits += u32::from(significant(&fixed));
        sequential_hits += u32::from(significant(&sequential));
    }
    let rate = |hits: u32| f64::from(hits) / f64::from(runs);
    assert!(
        (0.01..=0.10).contains(&rate(fixed_hits)),
        "fixed {}",
        rate(fixed_hits)
    );
    assert!(rate(sequential_hits) <= rate(fixed_hits) && rate(sequential_hits) <= 0.06);
}

#[test]
fn sample_ratio_mismatch_stops_loudly_even_with_a_winner() {
    let mut rng = StdRng::seed_from_u64(3);
    let control = simulate(
        &mut rng,
        Behaviour {
            units: 4000,
            conversion: 0.10,
            order_value: 50.0,
        },
    );
    let treatment = simulate(
        &mut rng,
        Behaviour {
            units: 4600,
            conversion: 0.14,
            order_value: 50.0,
        },
    );
    let e = with_method("sequential");
    let r = analyze(&e, &data(&variant(&control), &variant(&treatment)), day(7)).unwrap();
    let srm = r.srm.as_ref().unwrap();
    assert!(srm.mismatch && srm.p_value < 1e-6, "{srm:?}");
    let warning = srm.warning.as_deref().unwrap();
    assert!(warning.starts_with("SAMPLE RATIO MISMATCH"), "{warning}");
    assert!(
        warning.contains("46.5 % / 53.5 %") && warning.contains("50.0 % / 50.0 %"),
        "{warning}"
    );
    assert!(matches!(
        r.recommendation,
        Recommendation::Stop {
            reason: StopReason::SampleRatioMismatch { .. }
        }
    ));
    assert!(r.to_table().contains("!!! SAMPLE RATIO MISMATCH"));
    // Too few units: no check yet.
    let tiny = data(
        &VariantData {
            units: 3,
            metrics: BTreeMap::new(),
        },
        &VariantData {
            units: 1,
            metrics: BTreeMap::new(),
        },
    );
    assert!(analyze(&e, &tiny, day(1)).unwrap().srm.is_none());
}

const TRAFFIC: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: shop-v2}
spec:
  split: {traffic: {app: shop, unit: {header: x-user-id}}}
  variants:
    - {name: stable, weight: 1, version: v1}
    - {name: candidate, weight: 1, version: v2}
  metrics:
    - {name: purchased, conversion: {event: purchase}}
  guardrails:
    - {metric: $errors, maxDegradation: 0.01, scale: absolute}
  minimumSampleSize: 200
"#;

/// Units making `requests` requests each, failing with probability `errors`.
fn requests(rng: &mut StdRng, units: usize, errors: f64) -> Moments {
    Moments::of((0..units).map(|_| {
        let n = 5 + (rng.random::<f64>() * 10.0) as usize;
        let failed = (0..n).filter(|_| rng.random::<f64>() < errors).count();
        UnitValue {
            x: failed as f64,
            y: n as f64,
            c: 0.0,
        }
    }))
}

fn traffic_data(control: Moments, candidate: Moments) -> ExperimentData {
    let v = |m: Moments| VariantData {
        units: m.n,
        metrics: BTreeMap::from([("$errors".to_owned(), m)]),
    };
    ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            ("stable".to_owned(), v(control)),
            ("candidate".to_owned(), v(candidate)),
        ]),
    }
}

#[test]
fn a_violated_guardrail_stops_with_its_evidence() {
    let mut rng = StdRng::seed_from_u64(5);
    let e = compile(TRAFFIC);
    let d = traffic_data(
        requests(&mut rng, 2000, 0.01),
        requests(&mut rng, 2000, 0.05),
    );
    let r = analyze(&e, &d, day(2)).unwrap();
    assert_eq!(r.guardrails.len(), 1);
    let g = &r.guardrails[0];
    let GuardrailStatus::Violated(evidence) = &g.status else {
        panic!("violated: {:?}", g.status)
    };
    assert!(
        evidence.interval[0] > 0.01 && evidence.degradation > 0.03,
        "{evidence:?}"
    );
    assert!(evidence.p_value < 0.05);
    let Recommendation::Stop {
        reason: StopReason::GuardrailViolated {
            metric, variant, ..
        },
    } = &r.recommendation
    else {
        panic!("stop: {}", r.recommendation)
    };
    assert_eq!(
        (metric.as_str(), variant.as_str()),
        ("$errors", "candidate")
    );
    // The guardrail-only metric is not a goal metric.
    assert!(r.metrics.iter().all(|m| m.name != "$errors"));
}

#[test]
fn a_release_that_always_fails_against_one_that_never_does_violates_the_guardrail() {
    let exact = |units: usize, rate: f64| {
        Moments::of((0..units).map(|_| UnitValue {
            x: 4.0 * rate,
            y: 4.0,
            c: 0.0,
        }))
    };
    let e = compile(TRAFFIC);
    let r = analyze(&e, &traffic_data(exact(300, 0.0), exact(300, 1.0)), day(1)).unwrap();
    let GuardrailStatus::Violated(evidence) = &r.guardrails[0].status else {
        panic!("violated: {:?}", r.guardrails[0].status)
    };
    assert_eq!(evidence.degradation, 1.0);
    assert!(matches!(
        r.recommendation,
        Recommendation::Stop {
            reason: StopReason::GuardrailViolated { .. }
        }
    ));
    // Alike without variation is not proof of a rare-event rate: not enough data yet.
    let same = analyze(&e, &traffic_data(exact(300, 0.0), exact(300, 0.0)), day(1)).unwrap();
    assert!(
        matches!(
            same.guardrails[0].status,
            GuardrailStatus::NotEnoughData { .. }
        ),
        "{:?}",
        same.guardrails[0].status
    );
    // A few units are not enough to call it.
    let few = analyze(&e, &traffic_data(exact(10, 0.0), exact(10, 1.0)), day(1)).unwrap();
    assert!(
        matches!(
            few.guardrails[0].status,
            GuardrailStatus::NotEnoughData { .. }
        ),
        "{:?}",
        few.guardrails[0].status
    );
}

#[test]
fn an_equal_error_rate_is_shown_within_the_limit() {
    let mut rng = StdRng::seed_from_u64(6);
    let e = compile(TRAFFIC);
    let d = traffic_data(
        requests(&mut rng, 4000, 0.02),
        requests(&mut rng, 4000, 0.02),
    );
    let r = analyze(&e, &d, day(2)).unwrap();
    let status = &r.guardrails[0].status;
    assert!(
        matches!(status, GuardrailStatus::WithinLimit(_)),
        "{status:?}"
    );
    assert!(
        !matches!(r.recommendation, Recommendation::Stop { .. }),
        "{}",
        r.recommendation
    );
    // With no errors at all there is no variation to test yet.
    let none = traffic_data(requests(&mut rng, 50, 0.0), requests(&mut rng, 50, 0.0));
    let r = analyze(&e, &none, day(1)).unwrap();
    assert!(matches!(
        r.guardrails[0].status,
        GuardrailStatus::NotEnoughData { .. }
    ));
}

/// Moments of `n` units with this mean and (n − 1) variance.
fn summary(n: u64, mean: f64, variance: f64) -> Moments {
    let nf = n as f64;
    Moments {
        n,
        sum_x: nf * mean,
        sum_x2: (nf - 1.0) * variance + nf * mean * mean,
        ..Moments::default()
    }
}

const THREE_METRICS: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: three}
spec:
  split: {flag: {}}
  variants: [{name: a, weight: 1}, {name: b, weight: 1}]
  metrics:
    - {name: m1, continuous: {event: e1}}
    - {name: m2, continuous: {event: e2}}
    - {name: m3, continuous: {event: e3}}
  minimumSampleSize: 100
  analysis: {method: fixed, correction: holm}
"#;

fn three_metric_data() -> ExperimentData {
    let metrics = |means: [f64; 3]| VariantData {
        units: 1000,
        metrics: ["m1", "m2", "m3"]
            .iter()
            .zip(means)
            .map(|(name, mean)| ((*name).to_owned(), summary(1000, mean, 25.0)))
            .collect(),
    };
    ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            ("a".to_owned(), metrics([10.0, 10.0, 10.0])),
            ("b".to_owned(), metrics([10.46, 10.7, 10.1])),
        ]),
    }
}

#[test]
fn the_correction_spans_metrics_and_variants() {
    let d = three_metric_data();
    let holm = analyze(&compile(THREE_METRICS), &d, day(3)).unwrap();
    let raw: Vec<f64> = holm
        .metrics
        .iter()
        .map(|m| m.comparisons[0].p_value.unwrap())
        .collect();
    assert!(raw[0] < 0.05 && raw[1] < 0.05 && raw[2] > 0.05, "{raw:?}");
    let expected = adjust_p_values(&raw, AdjustMethod::Holm).unwrap();
    for (m, p) in holm.metrics.iter().zip(&expected) {
        assert_eq!(m.comparisons[0].adjusted_p_value, Some(*p));
    }
    // m1 is significant alone but not after Holm (its p is the second smallest: × 2); m2's is
    // the smallest (× 3) and stays significant.
    assert_eq!(
        holm.metrics[0].comparisons[0].verdict,
        Verdict::Inconclusive,
        "{holm}"
    );
    assert_eq!(
        holm.metrics[1].comparisons[0].verdict,
        Verdict::Better,
        "{holm}"
    );
    let none = analyze(
        &compile(&THREE_METRICS.replace("correction: holm", "correction: none")),
        &d,
        day(3),
    )
    .unwrap();
    assert_eq!(none.metrics[0].comparisons[0].verdict, Verdict::Better);
    assert_eq!(
        none.metrics[0].comparisons[0].adjusted_p_value,
        Some(raw[0])
    );
    let bonferroni = analyze(
        &compile(&THREE_METRICS.replace("correction: holm", "correction: bonferroni")),
        &d,
        day(3),
    )
    .unwrap();
    let p = bonferroni.metrics[2].comparisons[0]
        .adjusted_p_value
        .unwrap();
    assert_eq!(p, (raw[2] * 3.0).min(1.0));
    // The primary metric is not better after correction: at the planned sample, stop.
    assert_eq!(
        holm.recommendation,
        Recommendation::Stop {
            reason: StopReason::NoWinnerAtPlannedSample
        }
    );
}

#[test]
fn fixed_horizon_waits_for_the_power_plan() {
    let text = THREE_METRICS.replace(
        "analysis: {method: fixed, correction: holm}",
        "analysis: {method: fixed, correction: none, minimumDetectableEffect: 0.05, power: 0.8}",
    );
    let e = compile(&text);
    let mut d = three_metric_data();
    for v in d.variants.values_mut() {
        v.units = 150;
        for m in v.metrics.values_mut() {
            *m = summary(150, m.sum_x / m.n as f64, 25.0);
        }
    }
    let r = analyze(&e, &d, day(3)).unwrap();
    // Mean 10, variance 25 (cv 0.5), 5 % lift, alpha 0.05, power 0.8: about 1 570 per arm.
    let power = r.sample.power_per_variant.unwrap();
    assert!((1500..1700).contains(&power), "{power}");
    assert_eq!(r.sample.required_per_variant, power);
    assert_eq!(r.sample.units_needed, 2 * (power - 150));
    assert_eq!(
        r.recommendation,
        Recommendation::KeepRunning {
            units_needed: 2 * (power - 150)
        }
    );
}

#[test]
fn max_duration_stops_an_undecided_experiment() {
    let mut rng = StdRng::seed_from_u64(13);
    let same = Behaviour {
        units: 1500,
        conversion: 0.1,
        order_value: 50.0,
    };
    let d = data(
        &variant(&simulate(&mut rng, same)),
        &variant(&simulate(&mut rng, same)),
    );
    let e = with_method("sequential");
    let r = analyze(&e, &d, day(13)).unwrap();
    assert!(
        matches!(r.recommendation, Recommendation::KeepRunning { .. }),
        "{r}"
    );
    let r = analyze(&e, &d, day(14)).unwrap();
    assert_eq!(
        r.recommendation,
        Recommendation::Stop {
            reason: StopReason::MaxDurationReached
        }
    );
}

#[test]
fn a_worse_treatment_stops() {
    let mut rng = StdRng::seed_from_u64(17);
    let control = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.14,
            order_value: 50.0,
        },
    );
    let treatment = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.10,
            order_value: 50.0,
        },
    );
    let text = EXPERIMENT.replace(
        "  guardrails:\n    - {metric: revenue, maxDegradation: 0.1}\n",
        "",
    );
    let r = analyze(
        &compile(&text),
        &data(&variant(&control), &variant(&treatment)),
        day(4),
    )
    .unwrap();
    assert_eq!(
        metric(&r, "purchased").comparisons[0].verdict,
        Verdict::Worse
    );
    assert!(
        matches!(
            r.recommendation,
            Recommendation::Stop {
                reason: StopReason::TreatmentWorse { .. }
            }
        ),
        "{r}"
    );
    // With the guardrail, revenue's drop of ~30 % is a violation and stops first.
    let r = analyze(
        &with_method("sequential"),
        &data(&variant(&control), &variant(&treatment)),
        day(4),
    )
    .unwrap();
    assert!(
        matches!(
            r.recommendation,
            Recommendation::Stop {
                reason: StopReason::GuardrailViolated { .. }
            }
        ),
        "{r}"
    );
}

/// The engine's arms of a continuous metric from these units' moments.
fn continuous_arms(control: &[UnitValue], treatment: &[UnitValue], cuped: bool) -> arms::Arms {
    arms::arms(
        MetricKind::Continuous,
        &Moments::of(control.iter().copied()),
        &Moments::of(treatment.iter().copied()),
        cuped,
    )
    .unwrap()
}

/// `cuped_test` on the raw units (covariate `c`, metric `x`): the reference of the engine's CUPED.
fn cuped_reference(
    control: &[UnitValue],
    treatment: &[UnitValue],
    difference: Difference,
) -> switchyard_stats::CupedResult {
    let column = |v: &[UnitValue], f: fn(&UnitValue) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let (c_pre, c_post) = (column(control, |u| u.c), column(control, |u| u.x));
    let (t_pre, t_post) = (column(treatment, |u| u.c), column(treatment, |u| u.x));
    cuped_test(
        &CupedArm {
            pre: &c_pre,
            post: &c_post,
        },
        &CupedArm {
            pre: &t_pre,
            post: &t_post,
        },
        difference,
        Alternative::TwoSided,
        0.05,
    )
    .unwrap()
}

#[test]
fn moment_arms_match_the_sample_based_tests() {
    let mut rng = StdRng::seed_from_u64(19);
    let c = simulate(
        &mut rng,
        Behaviour {
            units: 800,
            conversion: 0.3,
            order_value: 30.0,
        },
    );
    let t = simulate(
        &mut rng,
        Behaviour {
            units: 700,
            conversion: 0.35,
            order_value: 32.0,
        },
    );
    let column = |v: &[UnitValue], f: fn(&UnitValue) -> f64| v.iter().map(f).collect::<Vec<f64>>();
    let opts = TTestOptions::default();

    // CUPED on revenue: the same θ, estimate, standard error and p-value as `cuped_test`.
    let (cr, tr) = (&c["revenue"], &t["revenue"]);
    let arms = continuous_arms(cr, tr, true);
    let reference = cuped_reference(cr, tr, Difference::Absolute);
    let ours = welch_t_test(&arms.control, &arms.treatment, &opts).unwrap();
    assert!(close(arms.theta.unwrap(), reference.theta, 1e-9));
    assert!(
        reference.theta > 0.05,
        "the covariate matters: {}",
        reference.theta
    );
    for (a, b) in [
        (ours.point_estimate, reference.test.point_estimate),
        (ours.std_error, reference.test.std_error),
        (ours.p_value, reference.test.p_value),
        (ours.df, reference.test.df),
    ] {
        assert!(close(a, b, 1e-9), "{a} vs {b}");
    }
    // CUPED narrows the interval.
    let plain = continuous_arms(cr, tr, false);
    let unadjusted = welch_t_test(&plain.control, &plain.treatment, &opts).unwrap();
    assert!(ours.std_error < unadjusted.std_error);

    // Ratio: the same delta-method arm as `ratio_summary`.
    for units in [&c["order-value"], &t["order-value"]] {
        let (num, den) = (column(units, |u| u.x), column(units, |u| u.y));
        let reference = ratio_summary(
            "/arm",
            &RatioArm {
                numerator: &num,
                denominator: &den,
            },
        )
        .unwrap();
        let ours = arms::single(MetricKind::Ratio, &Moments::of(units.iter().copied())).unwrap();
        assert!(close(ours.mean, reference.mean, 1e-12));
        assert!(
            close(ours.variance, reference.variance, 1e-9),
            "{} vs {}",
            ours.variance,
            reference.variance
        );
    }

    // Conversions without CUPED: the two-proportion test on the counts.
    let (cp, tp) = (&c["purchased"], &t["purchased"]);
    let arms = arms::arms(
        MetricKind::Conversion,
        &Moments::of(cp.iter().copied()),
        &Moments::of(tp.iter().copied()),
        false,
    )
    .unwrap();
    let [pc, _] = arms.counts.unwrap();
    let successes = |v: &[UnitValue]| v.iter().map(|u| u.x).sum::<f64>();
    assert_eq!(pc.successes, successes(cp));
    let reference = two_proportion_test(
        &Proportion {
            n: 800.0,
            successes: successes(cp),
        },
        &Proportion {
            n: 700.0,
            successes: successes(tp),
        },
        0.05,
    )
    .unwrap();
    let setup = compare::Setup {
        method: Method::Fixed,
        alpha: 0.05,
        tuning: 1000.0,
        difference: Scale::Absolute,
        proportions: ProportionTest::PooledZ,
        prior: None,
    };
    let outcome = compare::compare(&setup, &arms, Better::Higher);
    assert_eq!(outcome.p_value, Some(reference.p_value));
    assert_eq!(outcome.absolute.unwrap().ci, reference.ci);
}

/// One CUPED: the experiment engine's relative lift is `switchyard stats cuped`'s (the
/// adjusted difference over control's unadjusted mean), with the same interval and p-value.
#[test]
fn the_cuped_relative_lift_is_the_one_of_stats_cuped() {
    let mut rng = StdRng::seed_from_u64(23);
    let behaviour = |units, conversion, order_value| Behaviour {
        units,
        conversion,
        order_value,
    };
    let c = simulate(&mut rng, behaviour(900, 0.3, 30.0));
    let t = simulate(&mut rng, behaviour(850, 0.33, 31.0));
    let (cr, tr) = (&c["revenue"], &t["revenue"]);
    let reference = cuped_reference(cr, tr, Difference::Relative);
    let arms = continuous_arms(cr, tr, true);
    let setup = compare::Setup {
        method: Method::Fixed,
        alpha: 0.05,
        tuning: 1000.0,
        difference: Scale::Relative,
        proportions: ProportionTest::Welch,
        prior: None,
    };
    let outcome = compare::compare(&setup, &arms, Better::Higher);
    let lift = outcome.relative.unwrap();
    let control_mean = cr.iter().map(|u| u.x).sum::<f64>() / cr.len() as f64;
    // The estimate is the adjusted difference over the unadjusted control mean.
    assert!(
        close(
            lift.estimate * control_mean,
            outcome.absolute.unwrap().estimate,
            1e-9
        ),
        "{lift:?}"
    );
    for (a, b) in [
        (lift.estimate, reference.test.point_estimate),
        (lift.ci[0], reference.test.ci[0]),
        (lift.ci[1], reference.test.ci[1]),
        (outcome.p_value.unwrap(), reference.test.p_value),
    ] {
        assert!(close(a, b, 1e-9), "{a} vs {b}");
    }
}

const CONVERSION: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: signup}
spec:
  split: {flag: {}}
  variants: [{name: control, weight: 52}, {name: new, weight: 48}]
  metrics: [{name: signed-up, conversion: {event: signup}}]
  minimumSampleSize: 100
  analysis: {method: fixed, correction: none, cuped: false}
"#;

/// 548 of 5,200 against 452 of 4,800: the verdict, the p-value and the interval all come from
/// the relative test by default, as GrowthBook's; on request from the absolute test, with Welch
/// on p(1 − p) or the pooled z test. The numbers are GrowthBook's engine's (gbstats 0.8.0,
/// `TwoSidedTTest` on `ProportionStatistic`s).
#[test]
fn a_verdict_its_p_value_and_its_interval_come_from_one_test() {
    let conversions = |n: u64, successes: f64| VariantData {
        units: n,
        metrics: BTreeMap::from([(
            "signed-up".to_owned(),
            Moments {
                n,
                sum_x: successes,
                sum_x2: successes,
                ..Moments::default()
            },
        )]),
    };
    let data = ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            ("control".to_owned(), conversions(5200, 548.0)),
            ("new".to_owned(), conversions(4800, 452.0)),
        ]),
    };
    let run = |analysis: &str| {
        let text = CONVERSION.replace(
            "analysis: {method: fixed, correction: none, cuped: false}",
            &format!("analysis: {{method: fixed, correction: none, cuped: false{analysis}}}"),
        );
        let r = analyze(&compile(&text), &data, day(3)).unwrap();
        r.metrics[0].comparisons[0].clone()
    };
    let relative = run("");
    let lift = relative.relative.unwrap();
    for (a, b) in [
        (lift.estimate, -0.10644768856447691),
        (lift.ci[0], -0.21207261742051173),
        (lift.ci[1], -0.000822759708442089),
        (relative.p_value.unwrap(), 0.04824227419859395),
    ] {
        assert!(close(a, b, 1e-9), "{a} vs {b}");
    }
    assert_eq!(relative.verdict, Verdict::Worse);

    let absolute = run(", difference: absolute");
    let difference = absolute.absolute.unwrap();
    for (a, b) in [
        (difference.estimate, -0.01121794871794872),
        (difference.ci[0], -0.022963008878211365),
        (difference.ci[1], 0.0005271114423139236),
        (absolute.p_value.unwrap(), 0.06120414976361266),
    ] {
        assert!(close(a, b, 1e-9), "{a} vs {b}");
    }
    assert_eq!(absolute.verdict, Verdict::Inconclusive);

    let pooled = run(", difference: absolute, proportions: pooled-z");
    let reference = two_proportion_test(
        &Proportion {
            n: 5200.0,
            successes: 548.0,
        },
        &Proportion {
            n: 4800.0,
            successes: 452.0,
        },
        0.05,
    )
    .unwrap();
    assert_eq!(pooled.p_value, Some(reference.p_value));
    // Pooled z, as Switchyard's fixed method used for every conversion before.
    assert!(
        close(reference.p_value, 0.06174, 1e-5),
        "{}",
        reference.p_value
    );
}

/// Whatever the correction, a comparison's verdict and the interval shown for it agree: the
/// interval excludes 0 exactly when the verdict is better or worse.
#[test]
fn the_interval_shown_agrees_with_the_verdict_after_any_correction() {
    let d = three_metric_data();
    for correction in ["holm", "benjamini-hochberg", "bonferroni", "none"] {
        for difference in ["relative", "absolute"] {
            let text = THREE_METRICS.replace(
                "analysis: {method: fixed, correction: holm}",
                &format!(
                    "analysis: {{method: fixed, correction: {correction}, difference: {difference}}}"
                ),
            );
            let r = analyze(&compile(&text), &d, day(3)).unwrap();
            for m in &r.metrics {
                let c = &m.comparisons[0];
                let ci = c.shown_ci(r.difference).unwrap();
                let excludes_zero = ci[0] > 0.0 || ci[1] < 0.0;
                let decided = matches!(c.verdict, Verdict::Better | Verdict::Worse);
                assert_eq!(
                    excludes_zero, decided,
                    "{correction}/{difference} {}: {c:?}",
                    m.name
                );
                if correction == "none" {
                    assert_eq!(c.adjusted_ci, None);
                }
            }
        }
    }
}

#[test]
fn lower_is_better_flips_verdicts_and_chances() {
    let text = r#"apiVersion: switchyard.dev/v1alpha1
kind: Experiment
metadata: {name: speed}
spec:
  split: {flag: {}}
  variants: [{name: a, weight: 1}, {name: b, weight: 1}]
  metrics:
    - {name: load-time, continuous: {event: page-load}, better: lower}
  minimumSampleSize: 100
  analysis: {method: bayesian}
"#;
    let d = ExperimentData {
        started_at: START,
        caps: Default::default(),
        variants: BTreeMap::from([
            (
                "a".to_owned(),
                VariantData {
                    units: 1000,
                    metrics: BTreeMap::from([("load-time".to_owned(), summary(1000, 2.0, 0.25))]),
                },
            ),
            (
                "b".to_owned(),
                VariantData {
                    units: 1000,
                    metrics: BTreeMap::from([("load-time".to_owned(), summary(1000, 1.8, 0.25))]),
                },
            ),
        ]),
    };
    let r = analyze(&compile(text), &d, day(2)).unwrap();
    let c = &r.metrics[0].comparisons[0];
    assert!(c.relative.unwrap().estimate < 0.0);
    assert!(c.chance_to_win.unwrap() > 0.99, "{c:?}");
    assert_eq!(c.verdict, Verdict::Better);
    assert_eq!(
        r.recommendation,
        Recommendation::Ship {
            variant: "b".into()
        }
    );
}

#[test]
fn data_that_does_not_fit_is_refused() {
    let e = with_method("sequential");
    let mut d = data(&VariantData::default(), &VariantData::default());
    d.variants.insert("ghost".into(), VariantData::default());
    assert!(matches!(
        analyze(&e, &d, day(1)),
        Err(AnalysisError::UnknownVariant { .. })
    ));
    let mut d = data(&VariantData::default(), &VariantData::default());
    d.variants
        .get_mut("control")
        .unwrap()
        .metrics
        .insert("nope".into(), Moments::default());
    assert!(matches!(
        analyze(&e, &d, day(1)),
        Err(AnalysisError::UnknownMetric { .. })
    ));
    let mut d = data(&VariantData::default(), &VariantData::default());
    let v = d.variants.get_mut("redesign").unwrap();
    v.units = 1;
    v.metrics.insert("revenue".into(), summary(3, 1.0, 1.0));
    let e = analyze(&e, &d, day(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "variant `redesign`, metric `revenue`: 3 units have values but only 1 units are exposed"
    );
}

#[test]
fn an_empty_experiment_keeps_running_and_explains_why() {
    let e = with_method("sequential");
    let r = analyze(
        &e,
        &data(&VariantData::default(), &VariantData::default()),
        day(0),
    )
    .unwrap();
    assert_eq!(
        r.recommendation,
        Recommendation::KeepRunning { units_needed: 1000 }
    );
    let c = &r.metrics[0].comparisons[0];
    assert_eq!(c.verdict, Verdict::NotEnoughData);
    assert_eq!(c.notes, ["needs at least 2 units in each variant"]);
    assert!(r.variants.iter().all(|v| v.observed_share.is_none()));
}

#[test]
fn results_serialise_for_the_api_and_print_as_a_table() {
    let mut rng = StdRng::seed_from_u64(23);
    let control = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.10,
            order_value: 50.0,
        },
    );
    let treatment = simulate(
        &mut rng,
        Behaviour {
            units: 5000,
            conversion: 0.14,
            order_value: 50.0,
        },
    );
    let r = analyze(
        &with_method("sequential"),
        &data(&variant(&control), &variant(&treatment)),
        day(6),
    )
    .unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["recommendation"],
        serde_json::json!({"action": "ship", "variant": "redesign"})
    );
    assert_eq!(json["method"], "sequential");
    assert_eq!(json["correction"], "holm");
    assert_eq!(json["difference"], "relative");
    assert_eq!(json["metrics"][0]["role"], "primary");
    assert_eq!(json["metrics"][0]["kind"], "conversion");
    assert_eq!(json["metrics"][0]["comparisons"][0]["verdict"], "better");
    assert!(json["metrics"][0]["comparisons"][0]["relative"]["ci"][0].is_f64());
    assert_eq!(json["guardrails"][0]["status"]["status"], "within_limit");
    let table = r.to_table();
    for expected in [
        "Experiment `checkout-redesign` · sequential (N* 5000) · relative difference · alpha 0.05 · correction holm · CUPED on",
        "each verdict, p-value and interval from the test of the lift relative to control",
        "Recommendation: SHIP `redesign`",
        "purchased *",
        "95 % interval",
        "within limit",
        "sample ratio: chi2",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
}

/// N* and a prior set in the manifest are the ones the tests use; misplaced or out-of-range
/// ones are refused where they are written.
#[test]
fn n_star_and_a_prior_are_set_directly() {
    let d = three_metric_data();
    let with = |analysis: &str| {
        THREE_METRICS.replace("analysis: {method: fixed, correction: holm}", analysis)
    };
    let sequential = analyze(
        &compile(&with(
            "analysis: {method: sequential, correction: none, sequentialTuning: 2000}",
        )),
        &d,
        day(3),
    )
    .unwrap();
    let (a, b) = (
        &d.variants["a"].metrics["m1"],
        &d.variants["b"].metrics["m1"],
    );
    let arms = arms::arms(MetricKind::Continuous, a, b, false).unwrap();
    let reference = switchyard_stats::sequential_test(
        &arms.control,
        &arms.treatment,
        &switchyard_stats::SequentialOptions {
            method: switchyard_stats::SequentialMethod::ConfidenceSequence,
            difference: Difference::Relative,
            alternative: Alternative::TwoSided,
            alpha: 0.05,
            tuning: 2000.0,
        },
    )
    .unwrap();
    assert_eq!(
        sequential.metrics[0].comparisons[0].relative.unwrap().ci,
        reference.ci
    );

    let bayes = |prior: &str| {
        let r = analyze(
            &compile(&with(&format!(
                "analysis: {{method: bayesian, correction: none{prior}}}"
            ))),
            &d,
            day(3),
        )
        .unwrap();
        r.metrics[0].comparisons[0].clone()
    };
    let flat = bayes("");
    let tight = bayes(", prior: {mean: 0, stddev: 0.001}");
    // A tight prior at 0 pulls the lift toward 0 and makes a win less certain.
    let (flat_lift, tight_lift) = (flat.relative.unwrap(), tight.relative.unwrap());
    assert!(tight_lift.estimate.abs() < flat_lift.estimate.abs() / 2.0);
    assert!(tight.chance_to_win.unwrap() < flat.chance_to_win.unwrap());
    // The absolute difference has no prior: unchanged.
    assert_eq!(flat.absolute, tight.absolute);

    for (analysis, at) in [
        (
            "analysis: {method: fixed, prior: {stddev: 0.1}}",
            "spec.analysis.prior",
        ),
        (
            "analysis: {method: bayesian, prior: {stddev: 0}}",
            "spec.analysis.prior.stddev",
        ),
        (
            "analysis: {method: fixed, sequentialTuning: 5000}",
            "spec.analysis.sequentialTuning",
        ),
        (
            "analysis: {method: sequential, sequentialTuning: 0}",
            "spec.analysis.sequentialTuning",
        ),
        (
            "analysis: {method: fixed, cuped: false, cupedLookback: 14days}",
            "spec.analysis.cupedLookback: `cupedLookback` needs `cuped: true`",
        ),
        (
            "analysis: {method: fixed, cupedLookback: 0s}",
            "spec.analysis.cupedLookback: a lookback must last longer than zero",
        ),
    ] {
        let err = load_str(&with(analysis), Path::new("e.yaml")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(at), "{analysis}: {text}");
    }
}

/// Windows and caps are checked where they are written.
#[test]
fn bad_windows_and_caps_are_refused_at_their_field() {
    for (metrics, at) in [
        (
            "[{name: m, conversion: {event: e}, cap: {value: 10}}]",
            "spec.metrics[0].cap",
        ),
        (
            "[{name: m, continuous: {event: e}, cap: {value: -1}}]",
            "spec.metrics[0].cap.value",
        ),
        (
            "[{name: m, continuous: {event: e}, window: {duration: 0s}}]",
            "spec.metrics[0].window.duration",
        ),
        (
            "[{name: m, continuous: {event: e}, cap: {value: 5, percentile: 0.9}}]",
            "spec.metrics[0].cap: a cap needs exactly one of `value` or `percentile`",
        ),
        (
            "[{name: m, continuous: {event: e}, cap: {percentile: 99}}]",
            "spec.metrics[0].cap.percentile: 99 is out of range",
        ),
        (
            "[{name: m, continuous: {event: e}, cap: {value: 5, ignoreZeros: true}}]",
            "spec.metrics[0].cap.ignoreZeros",
        ),
    ] {
        let text = THREE_METRICS.replace(
            "  metrics:\n    - {name: m1, continuous: {event: e1}}\n    - {name: m2, continuous: {event: e2}}\n    - {name: m3, continuous: {event: e3}}\n",
            &format!("  metrics: {metrics}\n"),
        );
        assert!(text.contains(metrics), "{text}");
        let err = load_str(&text, Path::new("e.yaml")).unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains(at), "{metrics}: {message}");
    }
}

/// The options an analysis ran with are on the table and in the report.
#[test]
fn the_table_and_the_report_say_how_the_analysis_counted() {
    let text = THREE_METRICS
        .replace(
            "    - {name: m1, continuous: {event: e1}}",
            "    - {name: m1, continuous: {event: e1}, window: {delay: 1h, duration: 2days}, cap: {value: 500}}",
        )
        .replace(
            "analysis: {method: fixed, correction: holm}",
            "analysis: {method: bayesian, correction: none, prior: {mean: 0, stddev: 0.1}}",
        );
    let r = analyze(&compile(&text), &three_metric_data(), day(3)).unwrap();
    let table = r.to_table();
    let html = crate::report::render_html(&r, &[]);
    for expected in [
        "bayesian · relative difference · alpha 0.05 · correction none · CUPED on · prior normal(mean 0, sd 0.1)",
        "m1: counted from 1h to 2days 1h after exposure; each unit capped at 500",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
    assert!(html.contains("prior normal(mean 0, sd 0.1)"), "{html}");
    assert!(
        html.contains("counted from 1h to 2days 1h after exposure"),
        "{html}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["prior"],
        serde_json::json!({"mean": 0.0, "stddev": 0.1})
    );
    assert_eq!(
        json["metrics"][0]["window"],
        serde_json::json!({"delay_s": 3600.0, "duration_s": 172_800.0})
    );
    assert_eq!(
        json["metrics"][0]["cap"],
        serde_json::json!({"value": 500.0})
    );
}

/// A percentile cap shows the quantile and the value it came to; a lookback shows on the
/// settings line; the JSON carries both.
#[test]
fn a_percentile_cap_and_a_lookback_are_shown_with_their_values() {
    let text = THREE_METRICS
        .replace(
            "    - {name: m1, continuous: {event: e1}}",
            "    - {name: m1, continuous: {event: e1}, cap: {percentile: 0.99, ignoreZeros: true}}",
        )
        .replace(
            "analysis: {method: fixed, correction: holm}",
            "analysis: {method: fixed, correction: holm, cupedLookback: 14days}",
        );
    let e = compile(&text);
    let mut data = three_metric_data();
    let r = analyze(&e, &data, day(3)).unwrap();
    assert!(
        r.to_table()
            .contains("m1: each unit capped at the 99th percentile (no unit yet, zeros left out)"),
        "{}",
        r.to_table()
    );
    let units = crate::data::ExposedUnits {
        units: BTreeMap::from([("a".to_owned(), 1000), ("b".to_owned(), 1000)]),
        values: BTreeMap::from([(
            "m1".to_owned(),
            (0..200)
                .map(|i| {
                    let variant = if i % 2 == 0 { "a" } else { "b" };
                    let x = f64::from(i);
                    (
                        variant.to_owned(),
                        UnitValue {
                            x,
                            y: 0.0,
                            c: x / 2.0,
                        },
                    )
                })
                .collect(),
        )]),
    };
    crate::data::percentile_caps(&e, &mut data, &units);
    // Zeros left out: 1 … 199, the 99th percentile at h = 0.99 · 198 = 196.02.
    let cap = data.caps["m1"];
    assert!((cap - 197.02).abs() < 1e-9, "{cap}");
    let r = analyze(&e, &data, day(3)).unwrap();
    let table = r.to_table();
    for expected in [
        "CUPED on (lookback 14days)",
        "m1: each unit capped at the 99th percentile (197.0200, zeros left out)",
    ] {
        assert!(table.contains(expected), "missing {expected:?} in\n{table}");
    }
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["cuped_lookback_s"], serde_json::json!(14.0 * 86_400.0));
    assert_eq!(
        json["metrics"][0]["cap"]["percentile"],
        serde_json::json!(0.99)
    );
    assert_eq!(
        json["metrics"][0]["cap"]["ignore_zeros"],
        serde_json::json!(true)
    );
    assert!((json["metrics"][0]["cap"]["value"].as_f64().unwrap() - 197.02).abs() < 1e-9);
    // The recount replaced m1's moments: 1000 units per variant, values capped.
    let a = &data.variants["a"].metrics["m1"];
    assert_eq!(a.n, 1000);
    let expected: f64 = (0..200).step_by(2).map(|i| f64::from(i).min(cap)).sum();
    assert_eq!(a.sum_x, expected);
}
