//! Behaviour of the judge on deterministic traffic: clear failures and passes, low traffic,
//! deadlines, latency comparisons, and the persisted state.

use std::time::Duration;

use switchyard_stats::dist::norm_cdf;

use super::*;
use crate::judge::histogram::{BUCKETS_PER_DOUBLING, upper_bound};

fn arm(requests: u64, errors: u64) -> ArmInterval {
    ArmInterval {
        requests,
        errors,
        latency: Vec::new(),
    }
}

/// `n` requests spread over the grid as a log-normal of `median_s` and `sigma` would be.
fn log_normal(median_s: f64, sigma: f64, n: u64) -> ArmInterval {
    let center = (median_s.log2() * BUCKETS_PER_DOUBLING).round() as i32;
    let cdf = |k: i32| norm_cdf((upper_bound(k) / median_s).ln() / sigma);
    let latency = (center - 120..=center + 120)
        .map(|k| {
            (
                upper_bound(k),
                ((cdf(k) - cdf(k - 1)) * n as f64).round() as u64,
            )
        })
        .filter(|&(_, c)| c > 0)
        .collect();
    ArmInterval {
        requests: n,
        errors: 0,
        latency,
    }
}

fn feed(state: &mut JudgeState, seconds: u64, canary: &ArmInterval, baseline: &ArmInterval) {
    for t in 1..=seconds {
        state
            .record(&IntervalObservation {
                at_ms: t * 1000,
                canary: canary.clone(),
                baseline: baseline.clone(),
            })
            .unwrap();
    }
}

fn judge(compare: Compare) -> JudgeState {
    let mut state = JudgeState::new(JudgeSpec::new(compare)).unwrap();
    state.start(0);
    state
}

#[test]
fn clear_error_regression_fails_with_evidence() {
    // 25 canary requests a second at 8 % errors against 225 baseline requests at ~0.9 %.
    let mut bad = judge(Compare::ErrorRate);
    feed(&mut bad, 60, &arm(25, 2), &arm(225, 2));
    let v = bad.verdict(60_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Fail, "{}", v.summary());
    let e = &v.evidence;
    assert_eq!((e.canary.requests, e.canary.errors), (1500, 120));
    assert_eq!((e.baseline.requests, e.baseline.errors), (13_500, 120));
    assert_eq!(e.method, JudgeMethod::SequentialTwoProportion);
    // The tolerated difference at this baseline: (maxIncrease − 1) × baseline + margin.
    let boundary = 0.2 * 120.0 / 13_500.0 + 0.0002;
    assert!((e.boundary - boundary).abs() < 1e-12, "{}", e.boundary);
    let [lo, hi] = e.interval.unwrap();
    assert!(lo > boundary && hi > lo, "{lo} {hi}");
    assert!((e.estimate.unwrap() - (0.08 - 120.0 / 13_500.0)).abs() < 1e-12);
    assert!(e.p_value.unwrap() < 0.01);
    assert_eq!(e.needed_more, None);
    assert!(!v.timed_out);
    assert!(v.summary().starts_with("fail: error_rate canary 8.00%"));
}

#[test]
fn healthy_canary_passes() {
    let mut state = judge(Compare::ErrorRate);
    // 1 % errors on both sides for 20 minutes at 10 + 90 requests a second.
    feed(&mut state, 1200, &arm(100, 1), &arm(900, 9));
    let v = state.verdict(1_200_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Pass, "{}", v.summary());
    assert!(v.evidence.interval.unwrap()[1] < 0.005);
}

#[test]
fn low_traffic_stays_inconclusive_and_says_how_much_more_is_needed() {
    let mut state = judge(Compare::ErrorRate);
    // One canary request every second for a minute, one of them failed.
    feed(&mut state, 59, &arm(1, 0), &arm(50, 1));
    state
        .record(&IntervalObservation {
            at_ms: 60_000,
            canary: arm(1, 1),
            baseline: arm(50, 0),
        })
        .unwrap();
    let v = state.verdict(60_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Inconclusive, "{}", v.summary());
    let needed = v.evidence.needed_more.unwrap();
    assert!(needed > 60, "{needed}");
    assert_eq!(v.elapsed_ms, 60_000);
}

#[test]
fn no_traffic_is_inconclusive_without_estimates() {
    let mut state = judge(Compare::ErrorRate);
    feed(&mut state, 10, &arm(0, 0), &arm(100, 1));
    let v = state.verdict(10_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Inconclusive);
    assert_eq!(v.evidence.estimate, None);
    assert_eq!(v.evidence.interval, None);
    assert_eq!(v.evidence.needed_more, None);
    assert_eq!(v.evidence.canary.value, None);
}

#[test]
fn max_duration_applies_on_timeout() {
    let undecided = |on_timeout| {
        let spec = JudgeSpec {
            max_duration: Some(Duration::from_secs(60)),
            on_timeout,
            ..JudgeSpec::new(Compare::ErrorRate)
        };
        let mut state = JudgeState::new(spec).unwrap();
        feed(&mut state, 30, &arm(1, 0), &arm(10, 0));
        state
    };
    let state = undecided(OnTimeout::Fail);
    // The first interval (at 1 s) starts the clock when no explicit start was given.
    let before = state.verdict(60_000).unwrap();
    assert_eq!(
        (before.outcome, before.timed_out),
        (JudgeOutcome::Inconclusive, false)
    );
    let after = state.verdict(61_000).unwrap();
    assert_eq!((after.outcome, after.timed_out), (JudgeOutcome::Fail, true));
    assert_eq!(after.evidence.needed_more, None);
    let pass = undecided(OnTimeout::Pass).verdict(61_000).unwrap();
    assert_eq!((pass.outcome, pass.timed_out), (JudgeOutcome::Pass, true));
    let wait = undecided(OnTimeout::Inconclusive).verdict(61_000).unwrap();
    assert_eq!(
        (wait.outcome, wait.timed_out),
        (JudgeOutcome::Inconclusive, true)
    );
    assert!(wait.evidence.needed_more.is_some());
}

#[test]
fn a_decision_is_not_overridden_by_the_deadline() {
    let spec = JudgeSpec {
        max_duration: Some(Duration::from_secs(10)),
        on_timeout: OnTimeout::Pass,
        ..JudgeSpec::new(Compare::ErrorRate)
    };
    let mut state = JudgeState::new(spec).unwrap();
    state.start(0);
    feed(&mut state, 60, &arm(50, 25), &arm(450, 4));
    let v = state.verdict(3_600_000).unwrap();
    assert_eq!((v.outcome, v.timed_out), (JudgeOutcome::Fail, false));
}

#[test]
fn latency_regression_fails_and_equal_latency_passes() {
    let mut slow = judge(Compare::Latency);
    // 1000 requests per interval so that rounding the expected counts keeps the tails.
    feed(
        &mut slow,
        1,
        &log_normal(0.15, 0.5, 1000),
        &log_normal(0.1, 0.5, 9000),
    );
    let v = slow.verdict(1_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Fail, "{}", v.summary());
    let e = &v.evidence;
    assert_eq!(e.method, JudgeMethod::LogLatencyConfidenceSequence);
    assert_eq!(e.boundary, 1.2);
    assert!((e.estimate.unwrap() - 1.5).abs() < 0.05, "{:?}", e.estimate);
    assert!(e.interval.unwrap()[0] > 1.2);
    assert!((e.canary.value.unwrap() / 0.15 - 1.0).abs() < 0.05);

    let mut same = judge(Compare::Latency);
    feed(
        &mut same,
        3,
        &log_normal(0.1, 0.5, 1000),
        &log_normal(0.1, 0.5, 9000),
    );
    let v = same.verdict(3_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Pass, "{}", v.summary());
    assert!(v.evidence.interval.unwrap()[1] < 1.2);
}

#[test]
fn p99_judge_sees_a_heavier_tail_that_the_median_does_not() {
    // Same median, twice the spread: the canary's p99 is ~3.2× the baseline's.
    let (canary, baseline) = (log_normal(0.1, 1.0, 1000), log_normal(0.1, 0.5, 9000));
    let mut p99 = judge(Compare::LatencyP99);
    feed(&mut p99, 5, &canary, &baseline);
    let v = p99.verdict(5_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Fail, "{}", v.summary());
    let e = &v.evidence;
    assert_eq!(e.method, JudgeMethod::QuantileExceedance);
    let (c, b) = (e.canary.value.unwrap(), e.baseline.value.unwrap());
    assert!((c / b - 3.2).abs() < 0.3, "{c} {b}");
    assert!((e.threshold_s.unwrap() / b - 1.2).abs() < 1e-9);

    let mut p50 = judge(Compare::LatencyP50);
    feed(&mut p50, 5, &canary, &baseline);
    let v = p50.verdict(5_000).unwrap();
    assert_eq!(v.outcome, JudgeOutcome::Pass, "{}", v.summary());
}

#[test]
fn state_survives_a_json_round_trip() {
    let mut state = judge(Compare::LatencyP95);
    feed(
        &mut state,
        2,
        &log_normal(0.12, 0.5, 100),
        &log_normal(0.1, 0.5, 900),
    );
    let json = serde_json::to_string(&state).unwrap();
    let back: JudgeState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    assert_eq!(
        back.verdict(20_000).unwrap(),
        state.verdict(20_000).unwrap()
    );
    let verdict = serde_json::to_value(state.verdict(20_000).unwrap()).unwrap();
    assert_eq!(verdict["evidence"]["method"], "quantile_exceedance");
    assert_eq!(verdict["evidence"]["compare"], "latency_p95");
}

/// A tenfold regression of a 0.1 % service is less than half a point of difference, which an
/// absolute margin of 0.005 never sees; the boundary that scales with the baseline does.
#[test]
fn a_tenfold_regression_of_a_rare_error_fails() {
    let verdict = |spec: JudgeSpec| {
        let mut state = JudgeState::new(spec).unwrap();
        state.start(0);
        // 5 canary requests a second at 1 % (an error every 20 s) against 45 at about 0.1 %.
        for t in 1..=600u64 {
            state
                .record(&IntervalObservation {
                    at_ms: t * 1000,
                    canary: arm(5, u64::from(t % 20 == 0)),
                    baseline: arm(45, u64::from(t % 22 == 0)),
                })
                .unwrap();
        }
        state.verdict(600_000).unwrap()
    };
    let relative = verdict(JudgeSpec::new(Compare::ErrorRate));
    assert_eq!(
        relative.outcome,
        JudgeOutcome::Fail,
        "{}",
        relative.summary()
    );
    let absolute = verdict(JudgeSpec {
        margin: 0.005,
        max_increase: 1.0,
        ..JudgeSpec::new(Compare::ErrorRate)
    });
    assert_ne!(
        absolute.outcome,
        JudgeOutcome::Fail,
        "{}",
        absolute.summary()
    );
}

#[test]
fn spec_reads_the_manifest_form() {
    let spec: JudgeSpec = serde_json::from_str(
        r#"{"compare": "latency_p99", "maxIncrease": 1.5, "maxDuration": "15m", "onTimeout": "inconclusive"}"#,
    )
    .unwrap();
    assert_eq!(spec.compare, Compare::LatencyP99);
    assert_eq!(spec.against, Against::Stable);
    assert_eq!(
        (spec.margin, spec.max_increase, spec.alpha),
        (0.0002, 1.5, 0.01)
    );
    assert_eq!(spec.max_duration, Some(Duration::from_secs(900)));
    assert_eq!(spec.on_timeout, OnTimeout::Inconclusive);
    let back: JudgeSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);

    let unknown = serde_json::from_str::<JudgeSpec>(r#"{"compare": "error_rate", "margn": 0.01}"#);
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `margn`")
    );
    let against =
        serde_json::from_str::<JudgeSpec>(r#"{"compare": "error_rate", "against": "canary"}"#);
    assert!(against.is_err());
    let invalid = JudgeState::new(JudgeSpec {
        alpha: 0.9,
        ..JudgeSpec::new(Compare::ErrorRate)
    });
    assert_eq!(
        invalid.unwrap_err().to_string(),
        "judge.alpha: must be in (0, 0.5], got 0.9"
    );
}

#[test]
fn bad_observations_are_refused_and_change_nothing() {
    let mut state = judge(Compare::Latency);
    feed(&mut state, 3, &arm(10, 1), &arm(90, 1));
    let before = state.clone();
    let too_many = IntervalObservation {
        at_ms: 4000,
        canary: arm(1, 2),
        baseline: arm(1, 0),
    };
    assert!(matches!(
        state.record(&too_many),
        Err(JudgeError::ErrorsAboveRequests { arm: "canary", .. })
    ));
    let nan = IntervalObservation {
        at_ms: 4000,
        canary: arm(1, 0),
        baseline: ArmInterval {
            latency: vec![(f64::NAN, 1)],
            ..arm(1, 0)
        },
    };
    assert!(matches!(
        state.record(&nan),
        Err(JudgeError::InvalidBucket {
            arm: "baseline",
            ..
        })
    ));
    assert_eq!(state, before);
}
