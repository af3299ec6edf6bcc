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
