//! Incremental always-valid test of canary − baseline on a proportion (error
//! rate, success rate) against a margin, for a canary judge that looks after
//! every interval. With a `ratio` other than 1 the tested quantity is
//! canary − ratio × baseline: "the canary's rate is at most `ratio` times the
//! baseline's plus `margin`", a boundary that scales with the baseline.
//!
//! Feed each interval's counts with [`SequentialProportionTest::record`];
//! [`SequentialProportionTest::evaluate`] returns the always-valid interval of
//! the difference and the p-value of H0: difference = margin. Because the
//! interval is a confidence sequence, acting on it at any look keeps the
//! false-decision rate under alpha.
//!
//! A judge reads [`MarginEvidence`]: `AboveMargin` (lower bound > margin: the
//! canary is worse by more than the margin), `BelowMargin` (upper bound <
//! margin: enough evidence it is not), otherwise `Inconclusive`.
//!
//! The variance of each arm uses the smoothed rate (s + ½)/(n + 1), so an arm
//! with no errors yet still carries uncertainty; the point estimate uses the
//! raw rates.

use crate::error::{Result, StatsError, open_unit, positive};
use crate::sequential::{DEFAULT_TUNING, SequentialMethod, confidence_sequence, msprt};

/// Configuration of a [`SequentialProportionTest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialProportionConfig {
    /// Error budget of the whole sequence of looks.
    pub alpha: f64,
    /// Tolerated canary − ratio × baseline difference (e.g. 0.01 = one point of error rate).
    pub margin: f64,
    /// The baseline's multiplier in the tested quantity (1: the plain difference).
    pub ratio: f64,
    /// N*: total units (both arms) at which the interval is tightest.
    pub tuning: f64,
    /// Confidence sequence or mSPRT.
    pub method: SequentialMethod,
}

impl Default for SequentialProportionConfig {
    fn default() -> Self {
        SequentialProportionConfig {
            alpha: 0.05,
            margin: 0.0,
            ratio: 1.0,
            tuning: DEFAULT_TUNING,
            method: SequentialMethod::ConfidenceSequence,
        }
    }
}

/// Running totals of one arm.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProportionCounts {
    /// Units observed (requests).
    pub trials: u64,
    /// Units with the outcome (errors).
    pub successes: u64,
}

/// Where the always-valid interval lies relative to the margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarginEvidence {
    /// Lower bound above the margin: canary − baseline > margin.
    AboveMargin,
    /// Upper bound below the margin: canary − baseline < margin.
    BelowMargin,
    /// The interval still contains the margin.
    Inconclusive,
}

/// The state of the test at one look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialProportionSnapshot {
    /// Canary rate − ratio × baseline rate.
    pub difference: f64,
    /// Standard error of the difference (smoothed rates).
    pub std_error: f64,
    /// Always-valid interval of the difference at level 1 − alpha.
    pub ci: [f64; 2],
    /// Always-valid p-value of H0: difference = margin.
    pub p_value: f64,
    /// What the interval says about the margin.
    pub evidence: MarginEvidence,
    /// Baseline totals so far.
    pub baseline: ProportionCounts,
    /// Canary totals so far.
    pub canary: ProportionCounts,
}

/// Incremental two-proportion sequential test.
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialProportionTest {
    config: SequentialProportionConfig,
    baseline: ProportionCounts,
    canary: ProportionCounts,
}

impl SequentialProportionTest {
    /// Creates an empty test.
    ///
    /// # Errors
    /// `alpha` outside (0, 1), a non-finite margin, or a non-positive tuning.
    pub fn new(config: SequentialProportionConfig) -> Result<Self> {
        open_unit("/alpha", config.alpha)?;
        crate::error::finite("/margin", config.margin)?;
        positive("/ratio", config.ratio)?;
        positive("/tuning", config.tuning)?;
        Ok(SequentialProportionTest {
            config,
            baseline: ProportionCounts::default(),
            canary: ProportionCounts::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SequentialProportionConfig {
        &self.config
    }

    /// Adds one interval's counts to the running totals.
    ///
    /// # Errors
    /// Successes above trials in either arm (totals are left unchanged).
    pub fn record(&mut self, baseline: ProportionCounts, canary: ProportionCounts) -> Result<()> {
        for (field, c) in [
            ("/baseline/successes", baseline),
            ("/canary/successes", canary),
        ] {
            if c.successes > c.trials {
                return Err(StatsError::OutOfRange {
                    field: field.to_owned(),
                    value: c.successes as f64,
                    range: "[0, trials]",
                });
            }
        }
        self.baseline.trials += baseline.trials;
        self.baseline.successes += baseline.successes;
        self.canary.trials += canary.trials;
        self.canary.successes += canary.successes;
        Ok(())
    }

    /// The always-valid interval and p-value for the totals so far.
    ///
    /// # Errors
    /// [`StatsError::TooFewObservations`] while an arm has no trials.
    pub fn evaluate(&self) -> Result<SequentialProportionSnapshot> {
        for (field, c) in [("/baseline", self.baseline), ("/canary", self.canary)] {
            if c.trials == 0 {
                return Err(StatsError::TooFewObservations {
                    field: field.to_owned(),
                    min: 1,
                    actual: 0.0,
                });
            }
        }
        let rate = |c: ProportionCounts| c.successes as f64 / c.trials as f64;
        let smoothed_var = |c: ProportionCounts| {
            let p = (c.successes as f64 + 0.5) / (c.trials as f64 + 1.0);
            p * (1.0 - p) / c.trials as f64
        };
        let ratio = self.config.ratio;
        let difference = rate(self.canary) - ratio * rate(self.baseline);
        let std_error =
            (smoothed_var(self.canary) + ratio * ratio * smoothed_var(self.baseline)).sqrt();
        let n = (self.canary.trials + self.baseline.trials) as f64;
        let shifted = difference - self.config.margin;
        let (ci, p_value) = match self.config.method {
            SequentialMethod::ConfidenceSequence => {
                let rho = confidence_sequence::rho(self.config.alpha, self.config.tuning, true);
                let h = confidence_sequence::halfwidth(std_error, n, self.config.alpha, rho);
                let p = confidence_sequence::p_value(shifted, std_error, n, rho);
                ([difference - h, difference + h], p)
            }
            SequentialMethod::Msprt { tau } => {
                let tau = match tau {
                    Some(t) => positive("/tau", t)?,
                    None => msprt::default_tau(
                        self.config.alpha,
                        [(self.canary, 1.0), (self.baseline, ratio * ratio)].map(|(c, scale)| {
                            msprt::ArmShare {
                                n: c.trials as f64,
                                variance: scale * smoothed_var(c),
                            }
                        }),
                    )?,
                };
                let (ci, p) =
                    msprt::interval_and_p_value(shifted, std_error, self.config.alpha, tau);
                ([ci[0] + self.config.margin, ci[1] + self.config.margin], p)
            }
        };
        let evidence = if ci[0] > self.config.margin {
            MarginEvidence::AboveMargin
        } else if ci[1] < self.config.margin {
            MarginEvidence::BelowMargin
        } else {
            MarginEvidence::Inconclusive
        };
        Ok(SequentialProportionSnapshot {
            difference,
            std_error,
            ci,
            p_value,
            evidence,
            baseline: self.baseline,
            canary: self.canary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(trials: u64, successes: u64) -> ProportionCounts {
        ProportionCounts { trials, successes }
    }

    #[test]
    fn clear_regression_is_above_margin() {
        let mut test = SequentialProportionTest::new(SequentialProportionConfig {
            margin: 0.01,
            ..SequentialProportionConfig::default()
        })
        .expect("valid");
        for _ in 0..10 {
            test.record(counts(1000, 10), counts(1000, 80)).expect("ok");
        }
        let s = test.evaluate().expect("ok");
        assert_eq!(s.evidence, MarginEvidence::AboveMargin);
        assert!(s.p_value < 0.05);
    }

    #[test]
    fn healthy_canary_is_below_margin_and_zero_errors_are_fine() {
        let mut test = SequentialProportionTest::new(SequentialProportionConfig {
            margin: 0.02,
            ..SequentialProportionConfig::default()
        })
        .expect("valid");
        for _ in 0..20 {
            test.record(counts(500, 0), counts(500, 0)).expect("ok");
        }
        let s = test.evaluate().expect("ok");
        assert_eq!(s.evidence, MarginEvidence::BelowMargin);
    }

    #[test]
    fn a_ratio_scales_the_boundary_with_the_baseline() {
        // 0.5 % against 0.1 %: five times worse, but under half a point of difference, so an
        // absolute margin of 0.005 cannot tell; "at most 1.2 × baseline" can.
        let config = |margin, ratio| SequentialProportionConfig {
            margin,
            ratio,
            ..SequentialProportionConfig::default()
        };
        let run = |config| {
            let mut test = SequentialProportionTest::new(config).expect("valid");
            test.record(counts(90_000, 90), counts(10_000, 50))
                .expect("ok");
            test.evaluate().expect("ok")
        };
        assert_ne!(
            run(config(0.005, 1.0)).evidence,
            MarginEvidence::AboveMargin
        );
        let relative = run(config(0.0002, 1.2));
        assert_eq!(relative.evidence, MarginEvidence::AboveMargin);
        assert!((relative.difference - (0.005 - 1.2 * 0.001)).abs() < 1e-12);
        // The baseline's variance is scaled by ratio²: with ratio 1.2 the standard error is
        // larger than with ratio 1 on the same counts.
        assert!(relative.std_error > run(config(0.0002, 1.0)).std_error);
        assert!(SequentialProportionTest::new(config(0.0, 0.0)).is_err());
    }

    #[test]
    fn empty_arm_is_too_few() {
        let test =
            SequentialProportionTest::new(SequentialProportionConfig::default()).expect("ok");
        assert!(matches!(
            test.evaluate(),
            Err(StatsError::TooFewObservations { .. })
        ));
    }
}
