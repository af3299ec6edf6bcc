//! Kayenta's `MannWhitneyClassifier`: the canary (experiment) is High when the
//! whole Mann-Whitney shift interval lies above +tolerance·|estimate| and the
//! mean ratio is at least `allowed_increase`; Low when the interval lies
//! below −tolerance·|estimate| and the ratio is at most `allowed_decrease`;
//! otherwise Pass. Identical or all-equal data Pass without a test.

use crate::error::{Result, open_unit, positive, sample};
use crate::kayenta::outliers::{DEFAULT_IQR_FACTOR, remove_outliers};
use crate::mann_whitney::mann_whitney;

/// Which direction of change counts as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Only an increase fails (latency, errors).
    Increase,
    /// Only a decrease fails (throughput, success rate).
    Decrease,
    /// Either direction fails.
    #[default]
    Either,
}

/// Outcome for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// No significant change in a failing direction.
    Pass,
    /// Canary significantly higher.
    High,
    /// Canary significantly lower.
    Low,
    /// An arm had no data (after outlier removal).
    NoData,
}

impl Classification {
    /// Kayenta's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Pass => "Pass",
            Classification::High => "High",
            Classification::Low => "Low",
            Classification::NoData => "Nodata",
        }
    }
}

/// Classifier settings (defaults as NetflixACAJudge: 98 %, 0.25, 1.0, 1.0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanaryClassifierConfig {
    /// Confidence level of the Mann-Whitney interval.
    pub confidence_level: f64,
    /// Half-width of the tolerance band as a fraction of |estimate|.
    pub tolerance: f64,
    /// Failing direction.
    pub direction: Direction,
    /// Minimum mean ratio (canary/baseline) for High.
    pub allowed_increase: f64,
    /// Maximum mean ratio for Low.
    pub allowed_decrease: f64,
    /// Drop IQR outliers (factor 3) from both arms first.
    pub remove_outliers: bool,
}

impl Default for CanaryClassifierConfig {
    fn default() -> Self {
        CanaryClassifierConfig {
            confidence_level: 0.98,
            tolerance: 0.25,
            direction: Direction::Either,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
            remove_outliers: false,
        }
    }
}

/// Classification of one metric with the numbers behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CanaryClassification {
    /// The verdict.
    pub classification: Classification,
    /// Mann-Whitney shift of the canary relative to the baseline (if tested).
    pub estimate: Option<f64>,
    /// Its interval (if tested).
    pub ci: Option<[f64; 2]>,
    /// Tolerance band `[−tolerance·|estimate|, +tolerance·|estimate|]` (if tested).
    pub bounds: Option<[f64; 2]>,
    /// mean(canary)/mean(baseline), 1 when the baseline mean is 0.
    pub mean_ratio: f64,
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Classifies canary (`experiment`) against baseline (`control`).
///
/// # Errors
/// Non-finite values or an invalid configuration.
pub fn classify_canary(
    control: &[f64],
    experiment: &[f64],
    config: &CanaryClassifierConfig,
) -> Result<CanaryClassification> {
    open_unit("/confidence_level", config.confidence_level)?;
    crate::error::non_negative("/tolerance", config.tolerance)?;
    positive("/allowed_increase", config.allowed_increase)?;
    positive("/allowed_decrease", config.allowed_decrease)?;
    let untested = |classification, mean_ratio| CanaryClassification {
        classification,
        estimate: None,
        ci: None,
        bounds: None,
        mean_ratio,
    };
    if control.is_empty() || experiment.is_empty() {
        return Ok(untested(Classification::NoData, 1.0));
    }
    sample("/control", control)?;
    sample("/experiment", experiment)?;
    let (control, experiment) = if config.remove_outliers {
        (
            remove_outliers(control, DEFAULT_IQR_FACTOR),
            remove_outliers(experiment, DEFAULT_IQR_FACTOR),
        )
    } else {
        (control.to_vec(), experiment.to_vec())
    };
    if control.is_empty() || experiment.is_empty() {
        return Ok(untested(Classification::NoData, 1.0));
    }
    let mut sorted_c = control.clone();
    let mut sorted_e = experiment.clone();
    sorted_c.sort_by(f64::total_cmp);
    sorted_e.sort_by(f64::total_cmp);
    let all_equal = sorted_c.iter().chain(&sorted_e).all(|v| *v == sorted_c[0]);
    if sorted_c == sorted_e || all_equal {
        return Ok(untested(Classification::Pass, 1.0));
    }
    let mw = mann_whitney(&control, &experiment, config.confidence_level)?;
    let control_mean = mean(&control);
    let mean_ratio = if control_mean == 0.0 {
        1.0
    } else {
        mean(&experiment) / control_mean
    };
    let band = config.tolerance * mw.estimate.abs();
    let high = matches!(config.direction, Direction::Increase | Direction::Either)
        && mw.ci[0] > band
        && mean_ratio >= config.allowed_increase;
    let low = matches!(config.direction, Direction::Decrease | Direction::Either)
        && mw.ci[1] < -band
        && mean_ratio <= config.allowed_decrease;
    let classification = if high {
        Classification::High
    } else if low {
        Classification::Low
    } else {
        Classification::Pass
    };
    Ok(CanaryClassification {
        classification,
        estimate: Some(mw.estimate),
        ci: Some(mw.ci),
        bounds: Some([-band, band]),
        mean_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_gates_the_verdict() {
        let control = [1.0, 2.0, 3.0, 4.0, 1.5, 2.5, 3.5];
        let experiment = [10.0, 20.0, 30.0, 40.0, 15.0, 25.0, 35.0];
        let high =
            classify_canary(&control, &experiment, &CanaryClassifierConfig::default()).expect("ok");
        assert_eq!(high.classification, Classification::High);
        let config = CanaryClassifierConfig {
            direction: Direction::Decrease,
            ..Default::default()
        };
        let pass = classify_canary(&control, &experiment, &config).expect("ok");
        assert_eq!(pass.classification, Classification::Pass);
        let low =
            classify_canary(&experiment, &control, &CanaryClassifierConfig::default()).expect("ok");
        assert_eq!(low.classification, Classification::Low);
    }

    #[test]
    fn identical_and_empty() {
        let c = CanaryClassifierConfig::default();
        let same = classify_canary(&[1.0, 2.0], &[2.0, 1.0], &c).expect("ok");
        assert_eq!(same.classification, Classification::Pass);
        let none = classify_canary(&[], &[1.0], &c).expect("ok");
        assert_eq!(none.classification, Classification::NoData);
    }
}
