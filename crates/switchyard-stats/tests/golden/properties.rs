//! Property tests: p-values are probabilities, intervals contain their
//! estimates, swapping arms negates the absolute difference, adjusted
//! p-values are monotone and never below the raw ones.

use proptest::prelude::*;
use switchyard_stats::sequential::SequentialOptions;
use switchyard_stats::{
    AdjustMethod, ArmSummary, Proportion, TTestOptions, adjust_p_values, mann_whitney,
    sequential_test, two_proportion_test, welch_t_test,
};

fn arm() -> impl Strategy<Value = ArmSummary> {
    (2.0f64..5000.0, -100.0f64..100.0, 0.01f64..400.0).prop_map(|(n, mean, variance)| ArmSummary {
        n: n.floor(),
        mean,
        variance,
    })
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-50i32..50).prop_map(|v| f64::from(v) / 4.0), 2..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn welch_p_in_unit_interval_and_ci_contains_estimate(c in arm(), t in arm(), alpha in 0.001f64..0.5) {
        let r = welch_t_test(&c, &t, &TTestOptions { alpha, ..TTestOptions::default() }).unwrap();
        prop_assert!((0.0..=1.0).contains(&r.p_value));
        prop_assert!(r.ci[0] <= r.point_estimate && r.point_estimate <= r.ci[1]);
    }

    #[test]
    fn swapping_arms_negates_the_absolute_difference(c in arm(), t in arm()) {
        let a = welch_t_test(&c, &t, &TTestOptions::default()).unwrap();
        let b = welch_t_test(&t, &c, &TTestOptions::default()).unwrap();
        prop_assert!((a.point_estimate + b.point_estimate).abs() <= 1e-9 * a.point_estimate.abs().max(1.0));
        prop_assert!((a.p_value - b.p_value).abs() < 1e-9);
        prop_assert!((a.ci[0] + b.ci[1]).abs() <= 1e-9 * a.ci[0].abs().max(1.0));
    }

    #[test]
    fn sequential_p_in_unit_interval_and_ci_contains_estimate(c in arm(), t in arm()) {
        let r = sequential_test(&c, &t, &SequentialOptions::default()).unwrap();
        prop_assert!((0.0..=1.0).contains(&r.p_value));
        prop_assert!(r.ci[0] <= r.point_estimate && r.point_estimate <= r.ci[1]);
        // Always-valid intervals are never narrower than the fixed-horizon z interval.
        prop_assert!(r.ci[1] - r.point_estimate >= 1.959 * r.std_error);
    }

    #[test]
    fn mann_whitney_p_in_unit_interval_and_ci_contains_estimate(c in sample(), t in sample()) {
        let all_tied = c.iter().chain(&t).all(|v| *v == c[0]);
        prop_assume!(!all_tied);
        let r = mann_whitney(&c, &t, 0.95).unwrap();
        prop_assert!((0.0..=1.0).contains(&r.p_value));
        // Root-finding tolerance is 1e-4 (as R).
        prop_assert!(r.ci[0] <= r.estimate + 1e-4 && r.estimate <= r.ci[1] + 1e-4);
    }

    #[test]
    fn swapping_mann_whitney_arms_keeps_the_p_value(c in sample(), t in sample()) {
        let all_tied = c.iter().chain(&t).all(|v| *v == c[0]);
        prop_assume!(!all_tied);
        let a = mann_whitney(&c, &t, 0.95).unwrap();
        let b = mann_whitney(&t, &c, 0.95).unwrap();
        // The shift estimate is any root on a plateau of the rank statistic (as
        // in R), so only the test itself is symmetric.
        prop_assert!((a.p_value - b.p_value).abs() < 1e-9);
        prop_assert!((a.u + b.u - (c.len() * t.len()) as f64).abs() < 1e-9);
    }

    #[test]
    fn proportion_tests_are_probabilities(nc in 10u32..5000, nt in 10u32..5000, fc in 0.01f64..0.99, ft in 0.01f64..0.99) {
        let c = Proportion { n: f64::from(nc), successes: (f64::from(nc) * fc).round() };
        let t = Proportion { n: f64::from(nt), successes: (f64::from(nt) * ft).round() };
        prop_assume!(c.successes + t.successes > 0.0 && c.successes + t.successes < c.n + t.n);
        let r = two_proportion_test(&c, &t, 0.05).unwrap();
        for p in [r.p_value, r.chi2_p_value, r.chi2_yates_p_value] {
            prop_assert!((0.0..=1.0).contains(&p));
        }
        prop_assert!(r.chi2_yates_p_value >= r.chi2_p_value - 1e-12);
        prop_assert!(r.ci[0] <= r.difference && r.difference <= r.ci[1]);
        let swapped = two_proportion_test(&t, &c, 0.05).unwrap();
        prop_assert!((r.z + swapped.z).abs() < 1e-9);
    }

    #[test]
    fn adjusted_p_values_are_monotone_and_not_below_raw(ps in prop::collection::vec(0.0f64..=1.0, 1..30)) {
        for method in [AdjustMethod::Bonferroni, AdjustMethod::Holm,
                       AdjustMethod::BenjaminiHochberg, AdjustMethod::BenjaminiYekutieli] {
            let adjusted = adjust_p_values(&ps, method).unwrap();
            for (i, (a, p)) in adjusted.iter().zip(&ps).enumerate() {
                prop_assert!(*a >= *p - 1e-15 && *a <= 1.0, "{method:?} index {i}");
                for (b, q) in adjusted.iter().zip(&ps) {
                    if p < q {
                        prop_assert!(a <= b, "{method:?}: not monotone");
                    }
                }
            }
        }
    }
}
