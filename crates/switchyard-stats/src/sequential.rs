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
    /// mSPRT with mixing variance τ (explicit, or Statsig's default when
    /// `None`, see [`msprt::default_tau`]).
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
    /// N*: total sample size at which the confidence sequence is tightest.
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
    let mut options = *options;
    if options.method == (SequentialMethod::Msprt { tau: None }) {
        open_unit("/alpha", options.alpha)?;
        let shares = variance_shares(control, treatment, options.difference);
        options.method = SequentialMethod::Msprt {
            tau: Some(msprt::default_tau(options.alpha, shares)?),
        };
    }
    sequential_from_estimate(estimate, control.n + treatment.n, &options)
}

/// Each arm's term of the difference's variance (the delta method's for a
/// relative difference), for the default mSPRT mixing variance.
fn variance_shares(
    control: &ArmSummary,
    treatment: &ArmSummary,
    difference: Difference,
) -> [msprt::ArmShare; 2] {
    let (c, t) = (control.mean, treatment.mean);
    let (control_term, treatment_term) = match difference {
        Difference::Absolute => (
            control.variance / control.n,
            treatment.variance / treatment.n,
        ),
        Difference::Relative => (
            control.variance * t * t / (c.powi(4) * control.n),
            treatment.variance / (c * c * treatment.n),
        ),
    };
    [
        msprt::ArmShare {
            n: control.n,
            variance: control_term,
        },
        msprt::ArmShare {
            n: treatment.n,
            variance: treatment_term,
        },
    ]
}

/// Always-valid inference from an estimate and the total number of units `n`
/// (the default mSPRT mixing variance then assumes arms of equal size).
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
                None => msprt::default_tau_equal_arms(options.alpha, std_error)?,
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
