//! The weight policy of an `adaptive` canary step: after every look, the largest weight whose
//! worst plausible harm fits in what is left of the error budget.
//!
//! The harm of one canary request is the extra chance that it fails: p_c − p_b. Its worst
//! plausible value is read from the always-valid upper bound U of the risk ratio
//! ([`crate::judge::risk_ratio`]): h = U·p_b − p_b (and at least the canary's own observed
//! error rate beyond the baseline's, so a canary failing outright on a service without errors
//! is not mistaken for harmless). The policy gives the canary the weight w at which, over the
//! next [`PLANNING_HORIZON_S`], a canary that bad would serve no more extra failures than the
//! budget still holds:
//!
//! > w · rps · horizon · h ≤ budget − extra failures served so far
//!
//! So the weight is small while the bound on harm is large (at the start, when nothing is known,
//! it is `minWeight`), grows as the evidence narrows the bound, and shrinks again as the budget
//! is spent. While the bound holds (probability ≥ 1 − α for the whole step) and the weight is
//! above `minWeight`, each look spends at most 1/horizon of what is left per second, so the
//! extra failures approach the budget but do not exceed it; at `minWeight` the canary serves at
//! most `minWeight` × its harm. The weight never affects the validity of the verdict: the test
//! conditions on the split of every interval, whatever chose it.

use switchyard_core::manifest::analysis::judge::AdaptivePlan;

use crate::judge::risk_ratio::RiskRatio;

/// Seconds of traffic the remaining budget must cover at the chosen weight.
pub const PLANNING_HORIZON_S: f64 = 60.0;

/// The canary weight, percent, for the next interval at `rps` requests per second (both
/// releases), with the interval of the test at level 1 − `alpha`.
pub fn next_weight(test: &RiskRatio, plan: &AdaptivePlan, alpha: f64, rps: f64) -> u8 {
    let (min, max) = (plan.min_weight, plan.max_weight.max(plan.min_weight));
    if !(rps.is_finite() && rps > 0.0) {
        return min;
    }
    let baseline = test.baseline_rate();
    let canary = (test.canary_errors as f64 + 0.5) / (test.canary_requests as f64 + 1.0);
    let upper = test.interval(alpha)[1];
    let harm = ((upper * baseline).max(canary).min(1.0) - baseline).max(1e-9);
    let left = (plan.error_budget - test.extra_failures()).max(0.0);
    let percent = 100.0 * left / (rps * PLANNING_HORIZON_S * harm);
    if percent >= f64::from(max) {
        max
    } else {
        (percent.floor() as u8).clamp(min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(budget: f64) -> AdaptivePlan {
        AdaptivePlan {
            min_weight: 1,
            max_weight: 50,
            error_budget: budget,
        }
    }

    #[test]
    fn the_weight_starts_small_and_grows_with_evidence_of_no_harm() {
        let mut test = RiskRatio::new(1.2);
        let mut weight = next_weight(&test, &plan(50.0), 0.01, 1000.0);
        assert_eq!(weight, 1);
        let mut weights = vec![weight];
        // An A/A canary: exactly 1 % errors on both sides, 10,000 requests a look.
        for _ in 0..20 {
            let w = u64::from(weight);
            test.record((100 * w, w), (10_000 - 100 * w, 100 - w));
            weight = next_weight(&test, &plan(50.0), 0.01, 1000.0);
            weights.push(weight);
        }
        assert!(
            weights.iter().all(|&w| (1..=50).contains(&w)),
            "{weights:?}"
        );
        // With no harm in sight the bound only narrows: the weight only grows.
        assert!(weights.windows(2).all(|p| p[1] >= p[0]), "{weights:?}");
        assert_eq!(weights.last(), Some(&50), "{weights:?}");
    }

    #[test]
    fn a_spent_budget_holds_the_canary_at_its_minimum() {
        let mut test = RiskRatio::new(1.2);
        test.record((1000, 60), (9000, 90));
        assert!(test.extra_failures() > 49.0);
        assert_eq!(next_weight(&test, &plan(50.0), 0.01, 100.0), 1);
        assert_eq!(next_weight(&test, &plan(500.0), 0.01, 0.0), 1);
    }
}
