//! The two one-sided always-valid bounds every judge decides on.
//!
//! Rolling back and promoting are each a one-sided question: "is the canary worse than the
//! boundary?" and "is it better than the boundary?". Each is answered by a one-sided
//! confidence sequence at level 1 − alpha (GrowthBook's one-sided normal-mixture boundary from
//! switchyard-stats): the lower bound clearing the boundary fails the canary, the upper bound
//! falling below it passes the canary. So a canary exactly at the boundary is rolled back with
//! probability at most alpha and a canary worse than the boundary promoted with probability at
//! most alpha, however many looks are taken. A one-sided bound at alpha is about 6 % closer to
//! the estimate than a two-sided sequence at alpha (which spends about alpha/2 on each side), so
//! decisions need about 12 % less traffic.

use switchyard_stats::sequential::sequential_from_estimate;
use switchyard_stats::{Alternative, EffectEstimate, SequentialOptions};

use crate::judge::spec::DEFAULT_TUNING;
use crate::judge::verdict::Decision;

/// Decides `estimate` (standard error `std_error`, after `n` requests in both arms) against
/// `boundary`; `None` when the standard error is zero or not finite.
pub fn decide(
    estimate: f64,
    std_error: f64,
    n: f64,
    boundary: f64,
    alpha: f64,
) -> Option<Decision> {
    let side = |alternative| {
        let options = SequentialOptions {
            alternative,
            alpha,
            tuning: DEFAULT_TUNING,
            ..SequentialOptions::default()
        };
        let shifted = EffectEstimate {
            point_estimate: estimate - boundary,
            std_error,
            df: f64::INFINITY,
        };
        sequential_from_estimate(shifted, n, &options).ok()
    };
    let worse = side(Alternative::Greater)?;
    let better = side(Alternative::Less)?;
    let interval = [worse.ci[0] + boundary, better.ci[1] + boundary];
    // The p-value of the side the estimate lies on.
    let p_value = if estimate >= boundary {
        worse.p_value
    } else {
        better.p_value
    };
    Some(Decision::from_interval(
        estimate, std_error, interval, boundary, p_value,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_stats::MarginEvidence;

    #[test]
    fn one_sided_bounds_are_narrower_than_two_sided() {
        let d = decide(0.02, 0.005, 5000.0, 0.0, 0.01).unwrap();
        let two = sequential_from_estimate(
            EffectEstimate {
                point_estimate: 0.02,
                std_error: 0.005,
                df: f64::INFINITY,
            },
            5000.0,
            &SequentialOptions {
                alpha: 0.01,
                ..SequentialOptions::default()
            },
        )
        .unwrap();
        assert!(d.interval[0] > two.ci[0] && d.interval[1] < two.ci[1]);
        assert_eq!(d.evidence, MarginEvidence::AboveMargin);
        assert!(d.p_value < 0.01);
        let pass = decide(-0.02, 0.005, 5000.0, 0.0, 0.01).unwrap();
        assert_eq!(pass.evidence, MarginEvidence::BelowMargin);
        assert!(decide(0.0, 0.0, 10.0, 0.0, 0.01).is_none());
    }
}
