//! One treatment against control on one metric, by the experiment's method. Every number comes
//! from switchyard-stats; this module only picks the test and names the outcome.
//!
//! One test decides each comparison: the one of the difference the analysis tests (`analysis.
//! difference`, the relative lift by default, as GrowthBook). Its p-value (or chance to win),
//! its interval and, after the correction, its verdict belong together; the other difference is
//! reported beside it, from the same kind of test, for reference.
//!
//! | method | estimate | evidence |
//! |---|---|---|
//! | fixed | Welch t, delta method for the lift (conversions: p(1 − p); `proportions: pooled-z`: the pooled z test for the absolute difference) | p-value |
//! | sequential | confidence sequence on the same estimate | always-valid p-value |
//! | bayesian | Gaussian posterior of the same estimate (flat, or `analysis.prior` on the tested difference) | chance to win, expected loss |
//!
//! With CUPED the estimate is `cuped_estimate`'s: the adjusted difference, over control's
//! unadjusted mean for the lift.

use switchyard_core::manifest::experiment::{Better, Method, ProportionTest, Scale};
use switchyard_stats::{
    Alternative, Difference, EffectEstimate, NormalPrior, SequentialMethod, SequentialOptions,
    bayesian_from_estimate, cuped_estimate, difference_estimate, sequential_from_estimate,
    t_inference, two_proportion_test,
};

use super::arms::Arms;
use super::results::Lift;

/// The statistics of one comparison, before the multiple-testing correction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub absolute: Option<Lift>,
    pub relative: Option<Lift>,
    /// The p-value of the tested difference.
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
    /// The difference the verdict tests.
    pub difference: Scale,
    /// The fixed-horizon test of unadjusted conversions.
    pub proportions: ProportionTest,
    /// The Bayesian prior on the tested difference; flat when `None`.
    pub prior: Option<NormalPrior>,
}

impl Setup {
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

/// The stats library's name of a scale.
pub fn difference_of(scale: Scale) -> Difference {
    match scale {
        Scale::Relative => Difference::Relative,
        Scale::Absolute => Difference::Absolute,
    }
}

/// The estimate of `difference` from the arms: CUPED's for the lift of adjusted arms, the
/// difference of the arm summaries otherwise.
fn estimate(arms: &Arms, difference: Difference) -> switchyard_stats::Result<EffectEstimate> {
    match (&arms.cuped, arms.theta) {
        (Some([c, t]), Some(theta)) => cuped_estimate(c, t, theta, difference),
        _ => difference_estimate(&arms.control, &arms.treatment, difference),
    }
}

/// One difference's lift and evidence.
struct Tested {
    lift: Lift,
    p_value: Option<f64>,
    chance_to_win: Option<f64>,
    expected_loss: Option<f64>,
}

fn test(
    setup: &Setup,
    arms: &Arms,
    difference: Difference,
    better: Better,
) -> switchyard_stats::Result<Tested> {
    if let (Method::Fixed, ProportionTest::PooledZ, Difference::Absolute, Some([pc, pt])) =
        (setup.method, setup.proportions, difference, &arms.counts)
    {
        let r = two_proportion_test(pc, pt, setup.alpha)?;
        return Ok(Tested {
            lift: Lift::new(r.difference, r.ci),
            p_value: Some(r.p_value),
            chance_to_win: None,
            expected_loss: None,
        });
    }
    let e = estimate(arms, difference)?;
    Ok(match setup.method {
        Method::Fixed => {
            let r = t_inference(e, Alternative::TwoSided, setup.alpha)?;
            Tested {
                lift: Lift::new(r.point_estimate, r.ci),
                p_value: Some(r.p_value),
                chance_to_win: None,
                expected_loss: None,
            }
        }
        Method::Sequential => {
            let n = arms.control.n + arms.treatment.n;
            let options = setup.sequential(difference, Alternative::TwoSided);
            let r = sequential_from_estimate(e, n, &options)?;
            Tested {
                lift: Lift::new(r.point_estimate, r.ci),
                p_value: Some(r.p_value),
                chance_to_win: None,
                expected_loss: None,
            }
        }
        Method::Bayesian => {
            // The prior is on the tested difference's scale; the other one is reported with a
            // flat prior.
            let prior = setup
                .prior
                .filter(|_| difference == difference_of(setup.difference));
            let r = bayesian_from_estimate(
                e.point_estimate,
                e.std_error * e.std_error,
                prior,
                setup.alpha,
            )?;
            // The library's chance to win is P(effect > 0); for a lower-is-better metric
            // winning is the other side, and so is the loss of shipping.
            let (chance, loss) = match better {
                Better::Higher => (r.chance_to_win, r.risk[1]),
                Better::Lower => (1.0 - r.chance_to_win, r.risk[0]),
            };
            Tested {
                lift: Lift::new(r.posterior_mean, r.credible_interval),
                p_value: None,
                chance_to_win: Some(chance),
                expected_loss: Some(loss),
            }
        }
    })
}

/// Compares the treatment arm with the control arm: both differences, the evidence of the
/// tested one.
pub fn compare(setup: &Setup, arms: &Arms, better: Better) -> Outcome {
    let mut out = Outcome::default();
    let tested = difference_of(setup.difference);
    for difference in [Difference::Absolute, Difference::Relative] {
        let name = match difference {
            Difference::Absolute => "difference",
            Difference::Relative => "relative lift",
        };
        match test(setup, arms, difference, better) {
            Ok(r) => {
                if difference == tested {
                    out.p_value = r.p_value;
                    out.chance_to_win = r.chance_to_win;
                    out.expected_loss = r.expected_loss;
                }
                match difference {
                    Difference::Absolute => out.absolute = Some(r.lift),
                    Difference::Relative => out.relative = Some(r.lift),
                }
            }
            Err(e) => out.notes.push(format!("{name}: {e}")),
        }
    }
    out
}
