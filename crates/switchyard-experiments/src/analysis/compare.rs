//! One treatment against control on one metric, by the experiment's method. Every number comes
//! from switchyard-stats; this module only picks the test and names the outcome.
//!
//! | method | absolute difference | relative lift | evidence |
//! |---|---|---|---|
//! | fixed | two-proportion z (unadjusted conversions) or Welch t | Welch t, delta method | p-value |
//! | sequential | confidence sequence | confidence sequence, delta method | always-valid p-value |
//! | bayesian | Welch t interval (for reference) | Gaussian posterior, credible interval | chance to win, expected loss |

use switchyard_core::manifest::experiment::{Better, Method};
use switchyard_stats::{
    Alternative, Difference, SequentialMethod, SequentialOptions, TTestOptions, bayesian_test,
    sequential_test, two_proportion_test, welch_t_test,
};

use super::arms::Arms;
use super::results::Lift;

/// The statistics of one comparison, before the multiple-testing correction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub absolute: Option<Lift>,
    pub relative: Option<Lift>,
    pub p_value: Option<f64>,
    pub chance_to_win: Option<f64>,
    pub expected_loss: Option<f64>,
    /// Why a number is missing.
    pub notes: Vec<String>,
}

/// The settings every comparison of one analysis shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setup {
    pub method: Method,
    pub alpha: f64,
    /// N* of the confidence sequences: total units of the two arms where they are tightest.
    pub tuning: f64,
}

impl Setup {
    fn welch(&self, difference: Difference) -> TTestOptions {
        TTestOptions {
            difference,
            alternative: Alternative::TwoSided,
            alpha: self.alpha,
        }
    }

    /// Options of an always-valid test.
    pub fn sequential(
        &self,
        difference: Difference,
        alternative: Alternative,
    ) -> SequentialOptions {
        SequentialOptions {
            method: SequentialMethod::ConfidenceSequence,
            difference,
            alternative,
            alpha: self.alpha,
            tuning: self.tuning,
        }
    }
}

/// Compares the treatment arm with the control arm.
pub fn compare(setup: &Setup, arms: &Arms, better: Better) -> Outcome {
    let mut out = Outcome::default();
    let (c, t) = (&arms.control, &arms.treatment);
    match setup.method {
        Method::Fixed => {
            if let Some([pc, pt]) = &arms.counts {
                match two_proportion_test(pc, pt, setup.alpha) {
                    Ok(r) => {
                        out.absolute = Some(Lift::new(r.difference, r.ci));
                        out.p_value = Some(r.p_value);
                    }
                    Err(e) => out.notes.push(format!("difference: {e}")),
                }
            } else {
                match welch_t_test(c, t, &setup.welch(Difference::Absolute)) {
                    Ok(r) => {
                        out.absolute = Some(Lift::new(r.point_estimate, r.ci));
                        out.p_value = Some(r.p_value);
                    }
                    Err(e) => out.notes.push(format!("difference: {e}")),
                }
            }
            match welch_t_test(c, t, &setup.welch(Difference::Relative)) {
                Ok(r) => out.relative = Some(Lift::new(r.point_estimate, r.ci)),
                Err(e) => out.notes.push(format!("relative lift: {e}")),
            }
        }
        Method::Sequential => {
            let two_sided = |d| setup.sequential(d, Alternative::TwoSided);
            match sequential_test(c, t, &two_sided(Difference::Absolute)) {
                Ok(r) => {
                    out.absolute = Some(Lift::new(r.point_estimate, r.ci));
                    out.p_value = Some(r.p_value);
                }
                Err(e) => out.notes.push(format!("difference: {e}")),
            }
            match sequential_test(c, t, &two_sided(Difference::Relative)) {
                Ok(r) => out.relative = Some(Lift::new(r.point_estimate, r.ci)),
                Err(e) => out.notes.push(format!("relative lift: {e}")),
            }
        }
        Method::Bayesian => {
            match welch_t_test(c, t, &setup.welch(Difference::Absolute)) {
                Ok(r) => out.absolute = Some(Lift::new(r.point_estimate, r.ci)),
                Err(e) => out.notes.push(format!("difference: {e}")),
            }
            match bayesian_test(c, t, None, setup.alpha) {
                Ok(r) => {
                    out.relative = Some(Lift::new(r.posterior_mean, r.credible_interval));
                    // The library's chance to win is P(lift > 0); for a lower-is-better metric
                    // winning is the other side, and so is the loss of shipping.
                    let (chance, loss) = match better {
                        Better::Higher => (r.chance_to_win, r.risk[1]),
                        Better::Lower => (1.0 - r.chance_to_win, r.risk[0]),
                    };
                    out.chance_to_win = Some(chance);
                    out.expected_loss = Some(loss);
                }
                Err(e) => out.notes.push(format!("posterior: {e}")),
            }
        }
    }
    out
}
