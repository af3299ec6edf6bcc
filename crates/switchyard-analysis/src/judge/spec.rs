//! The `judge:` field of an analysis metric. The types are manifest vocabulary and live in
//! `switchyard-core`; this module adds what only the judge needs.

pub use switchyard_core::manifest::analysis::judge::{
    Against, Compare, DEFAULT_ALPHA, DEFAULT_MARGIN, DEFAULT_MAX_INCREASE, JudgeSpec, OnTimeout,
};

use crate::judge::error::JudgeError;

/// N* of the confidence sequences: the number of requests (both arms) at which the interval is
/// tightest. The boundary is within 5 % of its tightest between N*/2 and 2N*, and a few
/// thousand requests is where a 10 % canary of a service at ~100 req/s has to decide a
/// several-fold error regression, so the stats crate's default is kept.
pub const DEFAULT_TUNING: f64 = switchyard_stats::sequential::DEFAULT_TUNING;

/// Checks the ranges serde cannot express (manifests are checked the same way when loaded).
///
/// # Errors
/// [`JudgeError::InvalidSpec`] for a margin outside [0, 1), a `maxIncrease` outside
/// [1, 100] or an `alpha` outside (0, 0.5].
pub fn validate(spec: &JudgeSpec) -> Result<(), JudgeError> {
    match spec.out_of_range() {
        Some((field, value, expected)) => Err(JudgeError::InvalidSpec {
            field,
            value,
            expected,
        }),
        None => Ok(()),
    }
}

/// Spends one family-wise error budget over the judges of one analysis (Bonferroni): each judge
/// runs at its `alpha` divided by the number of judges, so the chance that *any* of them rolls
/// back a canary that is within every boundary is at most the largest `alpha`, however many
/// metrics are judged and however they are correlated. Adding a metric never inflates false
/// rollbacks; it makes each judge a little more careful.
pub fn share_alpha(specs: &mut [JudgeSpec]) {
    let judges = specs.len().max(1) as f64;
    for spec in specs {
        spec.alpha /= judges;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_of_one_analysis_share_its_alpha() {
        let mut specs = vec![
            JudgeSpec::new(Compare::ErrorRate),
            JudgeSpec::new(Compare::LatencyP99),
        ];
        share_alpha(&mut specs);
        assert!(
            specs
                .iter()
                .all(|s| (s.alpha - DEFAULT_ALPHA / 2.0).abs() < 1e-15)
        );
        let mut one = vec![JudgeSpec::new(Compare::Latency)];
        share_alpha(&mut one);
        assert_eq!(one[0].alpha, DEFAULT_ALPHA);
        share_alpha(&mut []);
    }
}
