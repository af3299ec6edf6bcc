//! Why a judge could not be built or fed.

use switchyard_stats::StatsError;

/// An invalid judge specification or observation. The judge's state is unchanged when one is
/// returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// A field of the `judge:` specification is outside its range.
    #[error("judge.{field}: must be {expected}, got {value}")]
    InvalidSpec {
        /// Manifest name of the field (`margin`, `maxIncrease`, `alpha`).
        field: &'static str,
        /// The value given.
        value: f64,
        /// What is accepted, e.g. `in (0, 0.5]`.
        expected: &'static str,
    },
    /// An arm of an observation reports more errors than requests.
    #[error("{arm}: {errors} errors out of {requests} requests")]
    ErrorsAboveRequests {
        /// `canary` or `baseline`.
        arm: &'static str,
        /// Errors reported.
        errors: u64,
        /// Requests reported.
        requests: u64,
    },
    /// A latency bucket bound is negative or not a number.
    #[error("{arm}: latency bucket bound must be a finite number of seconds >= 0, got {bound}")]
    InvalidBucket {
        /// `canary` or `baseline`.
        arm: &'static str,
        /// The offending upper bound.
        bound: f64,
    },
    /// The statistics library refused the totals (a configuration it does not accept).
    #[error("sequential test failed")]
    Stats(#[source] StatsError),
}
