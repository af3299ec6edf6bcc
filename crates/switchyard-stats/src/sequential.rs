//! Sequential tests that stay valid under continuous monitoring: the
//! interval and p-value may be looked at after every batch and acted on at
//! any time without inflating the false-positive rate.
//!
//! - [`confidence_sequence`]: asymptotic confidence sequences (Waudby-Smith
//!   et al. 2023) tuned by N*, as GrowthBook and Eppo use.
//! - [`msprt`]: the mixture sequential probability ratio test (Johari et al.
//!   2017) with a normal mixing distribution, as Statsig documents.
//! - [`two_proportion`]: an incremental two-proportion test of
//!   canary − baseline against a margin, for a canary judge.

pub mod confidence_sequence;
pub mod msprt;
pub mod two_proportion;

use crate::arm::ArmSummary;
use crate::error::{Result, StatsError, open_unit, positive};
use crate::t_test::{Alternative, Difference, EffectEstimate, difference_estimate};

/// N* used when none is given (GrowthBook's default).
pub const DEFAULT_TUNING: f64 = 5000.0;

/// Which always-valid procedure to use.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SequentialMethod {
    /// Asymptotic confidence sequence with ρ from N*.
    #[default]
    ConfidenceSequence,
    /// mSPRT with mixing variance τ (explicit, or the variance of the
    /// estimate at N* total units when `None`).
    Msprt {
        /// Mixing variance on the scale of the difference.
        tau: Option<f64>,
    },
}

/// Options of [`sequential_test`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialOptions {
    /// Procedure.
    pub method: SequentialMethod,
    /// Absolute or relative difference.
    pub difference: Difference,
    /// Two-sided or one-sided (one-sided only for the confidence sequence).
    pub alternative: Alternative,
    /// Significance level of the whole sequence.
    pub alpha: f64,
    /// N*: total sample size at which the interval is tightest.
    pub tuning: f64,
}

impl Default for SequentialOptions {
    fn default() -> Self {
        SequentialOptions {
            method: SequentialMethod::ConfidenceSequence,
            difference: Difference::Absolute,
            alternative: Alternative::TwoSided,
            alpha: 0.05,
            tuning: DEFAULT_TUNING,
        }
    }
}

/// An always-valid interval and p-value at the current look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialResult {
    /// Estimated difference.
    pub point_estimate: f64,
    /// Its (fixed-horizon) standard error.
    pub std_error: f64,
    /// Always-valid interval at level 1 − alpha.
    pub ci: [f64; 2],
    /// Always-valid p-value.
    pub p_value: f64,
}

/// Always-valid comparison of treatment − control from the current totals.
///
/// # Errors
/// Invalid arms (see [`difference_estimate`]), `alpha` outside (0, 1), a
/// non-positive tuning or τ, or a one-sided alternative with mSPRT.
pub fn sequential_test(
    control: &ArmSummary,
    treatment: &ArmSummary,
    options: &SequentialOptions,
) -> Result<SequentialResult> {
    let estimate = difference_estimate(control, treatment, options.difference)?;
    sequential_from_estimate(estimate, control.n + treatment.n, options)
}

/// Always-valid inference from an estimate and the total number of units `n`.
///
/// # Errors
/// As [`sequential_test`].
pub fn sequential_from_estimate(
    estimate: EffectEstimate,
    n: f64,
    options: &SequentialOptions,
) -> Result<SequentialResult> {
    open_unit("/alpha", options.alpha)?;
    positive("/tuning", options.tuning)?;
    let EffectEstimate {
        point_estimate,
        std_error,
        ..
    } = estimate;
    if !crate::error::is_positive(std_error) {
        return Err(StatsError::ZeroStandardError);
    }
    let (ci, p_value) = match options.method {
        SequentialMethod::ConfidenceSequence => confidence_sequence::interval_and_p_value(
            point_estimate,
            std_error,
            n,
            options.alpha,
            options.tuning,
            options.alternative,
        ),
        SequentialMethod::Msprt { tau } => {
            if options.alternative != Alternative::TwoSided {
                return Err(StatsError::OutOfRange {
                    field: "/alternative".to_owned(),
                    value: f64::NAN,
                    range: "two-sided for msprt",
                });
            }
            let tau = match tau {
                Some(t) => positive("/tau", t)?,
                None => msprt::default_tau(std_error, n, options.tuning),
            };
            msprt::interval_and_p_value(point_estimate, std_error, options.alpha, tau)
        }
    };
    Ok(SequentialResult {
        point_estimate,
        std_error,
        ci,
        p_value,
    })
}
