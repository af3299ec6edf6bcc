//! What an analysis returns: serialisable as the API's JSON, printable as the CLI's table
//! (`Display`, in `table.rs`), drawn by the report.

use std::fmt;

use serde::Serialize;
use switchyard_core::Timestamp;
use switchyard_core::manifest::experiment::{
    Better, Correction, Method, PriorSpec, ProportionTest, Scale,
};

use crate::experiment::{MetricKind, MetricRole};

/// SRM p-values below this raise the sample-ratio-mismatch alarm.
pub const SRM_THRESHOLD: f64 = 0.001;

/// The results of one experiment at one time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    pub experiment: String,
    pub computed_at: Timestamp,
    pub started_at: Timestamp,
    pub method: Method,
    pub alpha: f64,
    pub correction: Correction,
    /// The difference each verdict tests (`relative` lift or `absolute` difference): the
    /// p-value, chance to win, interval and correction of a comparison are all this one's.
    pub difference: Scale,
    /// The fixed-horizon test of unadjusted conversions.
    pub proportions: ProportionTest,
    /// N* of the sequential method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequential_tuning: Option<f64>,
    /// The Bayesian method's prior on the tested difference (flat when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSpec>,
    /// Whether CUPED was allowed (each comparison says whether it applied).
    pub cuped: bool,
    /// How long before each unit's exposure its covariate's events count, in seconds; all
    /// earlier events when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped_lookback_s: Option<f64>,
    /// Units per variant against the expected shares; control first.
    pub variants: Vec<VariantUnits>,
    /// Sample-ratio-mismatch check; `None` until every variant expects at least 5 units.
    pub srm: Option<SrmCheck>,
    /// Every metric of `metrics`, primary first.
    pub metrics: Vec<MetricResult>,
    /// One per guardrail and treatment.
    pub guardrails: Vec<GuardrailResult>,
    pub sample: SamplePlan,
    pub recommendation: Recommendation,
}

/// A variant's units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantUnits {
    pub name: String,
    pub weight: u32,
    pub expected_share: f64,
    pub units: u64,
    /// units / all units (`None` before the first unit).
    pub observed_share: Option<f64>,
}

/// Chi-square goodness of fit of the units per variant against the weights.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SrmCheck {
    pub chi2: f64,
    pub p_value: f64,
    /// `p_value < SRM_THRESHOLD`.
    pub mismatch: bool,
    /// The alarm text when `mismatch`.
    pub warning: Option<String>,
}

/// One metric across variants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    pub name: String,
    pub kind: MetricKind,
    pub better: Better,
    pub role: MetricRole,
    /// Events count from `delay_s` after a unit's exposure for `duration_s` seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<MetricWindow>,
    /// A unit's value counts at most this much.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<AppliedCap>,
    /// The metric's value per variant, control first.
    pub variants: Vec<MetricEstimate>,
    /// Each treatment against control.
    pub comparisons: Vec<Comparison>,
}

/// The cap a metric's units were counted with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AppliedCap {
    /// The most a unit's value (and covariate) counted for; `None` for a percentile cap while
    /// no unit has a value to take the quantile of.
    pub value: Option<f64>,
    /// The quantile the cap is (a fraction: 0.99 for the 99th percentile), for a percentile cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// Units whose value is 0 were left out of the quantile.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_zeros: bool,
}

/// A metric's window after each unit's exposure, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricWindow {
    pub delay_s: f64,
    pub duration_s: f64,
}

impl MetricResult {
    /// How the metric counts, for people: `counted from 1h to 1day 1h after exposure; each
    /// unit capped at 100`.
    pub fn counting(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(w) = self.window {
            parts.push(format!(
                "counted from {} to {} after exposure",
                seconds(w.delay_s),
                seconds(w.delay_s + w.duration_s)
            ));
        }
        match self.cap {
            Some(AppliedCap {
                value,
                percentile: Some(p),
                ignore_zeros,
            }) => {
                let at = value.map_or_else(|| "no unit yet".to_owned(), |v| format!("{v:.4}"));
                let zeros = if ignore_zeros { ", zeros left out" } else { "" };
                parts.push(format!(
                    "each unit capped at the {} percentile ({at}{zeros})",
                    ordinal_percent(p)
                ));
            }
            Some(AppliedCap { value: Some(v), .. }) => {
                parts.push(format!("each unit capped at {v}"));
            }
            _ => {}
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// A number of seconds as a duration for people (`1day 1h`).
fn seconds(s: f64) -> String {
    switchyard_core::duration::format(std::time::Duration::from_secs_f64(s))
}

/// 0.99 → "99th", 0.5 → "50th", 0.995 → "99.5th".
fn ordinal_percent(p: f64) -> String {
    let percent = (p * 100.0 * 1e6).round() / 1e6;
    let suffix = if percent.fract() != 0.0 {
        "th"
    } else {
        match (percent as u64 % 10, percent as u64 % 100) {
            (_, 11..=13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        }
    };
    format!("{percent}{suffix}")
}

impl Results {
    /// The analysis settings in one line: `sequential (N* 5000) · relative difference · alpha
    /// 0.05 · correction holm · CUPED on`, with the proportions test and the prior when they
    /// matter.
    pub fn settings_line(&self) -> String {
        let method = match (self.method, self.sequential_tuning) {
            (Method::Sequential, Some(n)) => format!("sequential (N* {n})"),
            (m, _) => m.as_str().to_owned(),
        };
        let mut line = format!(
            "{method} · {} difference · alpha {} · correction {} · CUPED {}",
            self.difference.as_str(),
            self.alpha,
            self.correction.as_str(),
            if self.cuped { "on" } else { "off" }
        );
        if let Some(s) = self.cuped_lookback_s {
            line.push_str(&format!(" (lookback {})", seconds(s)));
        }
        if self.method == Method::Fixed && self.proportions == ProportionTest::PooledZ {
            line.push_str(" · proportions pooled z");
        }
        if let Some(p) = self.prior {
            line.push_str(&format!(
                " · prior normal(mean {}, sd {})",
                p.mean, p.stddev
            ));
        }
        line
    }
}

/// A variant's value of a metric: the mean per unit, or Σ numerator / Σ denominator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricEstimate {
    pub variant: String,
    pub units: u64,
    pub value: Option<f64>,
}

/// A difference with its interval. Infinite bounds (one-sided intervals) serialise as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lift {
    pub estimate: f64,
    pub ci: [f64; 2],
}

impl Lift {
    pub fn new(estimate: f64, ci: [f64; 2]) -> Lift {
        Lift { estimate, ci }
    }
}

/// A treatment against control on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub variant: String,
    /// treatment − control, in the metric's unit.
    pub absolute: Option<Lift>,
    /// (treatment − control) / |control| (with CUPED: the adjusted difference over control's
    /// unadjusted value); the Bayesian method gives credible intervals.
    pub relative: Option<Lift>,
    /// Fixed and sequential methods: the p-value of the tested difference.
    pub p_value: Option<f64>,
    /// After the correction across metrics × variants.
    pub adjusted_p_value: Option<f64>,
    /// The tested difference's interval widened to match the adjusted p-value (GrowthBook's
    /// adjusted interval): it excludes 0 exactly when the adjusted p-value is below alpha.
    /// `None` without a correction, or when it would not be wider.
    pub adjusted_ci: Option<[f64; 2]>,
    /// Bayesian: probability that the treatment is better (in the metric's direction).
    pub chance_to_win: Option<f64>,
    /// Bayesian: expected loss (relative) of shipping the treatment.
    pub expected_loss: Option<f64>,
    /// CUPED coefficient, when the adjustment applied.
    pub cuped_theta: Option<f64>,
    pub verdict: Verdict,
    /// Why numbers are missing.
    pub notes: Vec<String>,
}

impl Comparison {
    /// The difference the verdict tests.
    pub fn tested(&self, difference: Scale) -> Option<Lift> {
        match difference {
            Scale::Relative => self.relative,
            Scale::Absolute => self.absolute,
        }
    }

    /// The interval to show for the tested difference: widened after the correction.
    pub fn shown_ci(&self, difference: Scale) -> Option<[f64; 2]> {
        self.adjusted_ci
            .or_else(|| self.tested(difference).map(|l| l.ci))
    }
}

/// What a comparison says about the treatment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly better (adjusted p < alpha, or chance to win ≥ 1 − alpha).
    Better,
    /// Significantly worse.
    Worse,
    /// No significant difference yet.
    Inconclusive,
    /// Not computable yet (too few units, no variation).
    NotEnoughData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotEnoughData => "not enough data",
        }
    }
}

/// One guardrail for one treatment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuardrailResult {
    pub metric: String,
    pub variant: String,
    pub max_degradation: f64,
    pub scale: Scale,
    /// The metric's value in control and in the treatment.
    pub control_value: Option<f64>,
    pub variant_value: Option<f64>,
    pub status: GuardrailStatus,
}

/// The sequential test of a guardrail: does the treatment degrade the metric beyond the limit?
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GuardrailStatus {
    /// Not computable yet.
    NotEnoughData { reason: String },
    /// The degradation's upper bound is below the limit: shown to be within it.
    WithinLimit(GuardrailEvidence),
    /// Neither shown within nor beyond the limit.
    Inconclusive(GuardrailEvidence),
    /// The degradation's lower bound exceeds the limit: the experiment must stop.
    Violated(GuardrailEvidence),
}

impl GuardrailStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            GuardrailStatus::NotEnoughData { .. } => "not enough data",
            GuardrailStatus::WithinLimit(_) => "within limit",
            GuardrailStatus::Inconclusive(_) => "inconclusive",
            GuardrailStatus::Violated(_) => "VIOLATED",
        }
    }

    pub fn evidence(&self) -> Option<&GuardrailEvidence> {
        match self {
            GuardrailStatus::NotEnoughData { .. } => None,
            GuardrailStatus::WithinLimit(e)
            | GuardrailStatus::Inconclusive(e)
            | GuardrailStatus::Violated(e) => Some(e),
        }
    }
}

/// The numbers behind a guardrail's status, on the guardrail's scale, signed so that positive
/// is worse.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GuardrailEvidence {
    /// Estimated degradation.
    pub degradation: f64,
    /// Always-valid bounds of the degradation at level 1 − alpha each.
    pub interval: [f64; 2],
    /// `maxDegradation`.
    pub limit: f64,
    /// Always-valid p-value of "degradation ≤ limit".
    pub p_value: f64,
}

/// How far the experiment is from the sample it needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplePlan {
    /// `minimumSampleSize`.
    pub minimum_per_variant: u64,
    /// Units per variant to detect `minimumDetectableEffect` on the primary metric with the
    /// configured power (from control's observed mean and variance); `None` without an effect
    /// size or before it can be estimated.
    pub power_per_variant: Option<u64>,
    /// The larger of the two: what each variant needs.
    pub required_per_variant: u64,
    /// Units of the smallest variant (among those with a positive weight).
    pub smallest_variant: u64,
    /// More units (all variants together, split by weight) until each variant has the required
    /// number.
    pub units_needed: u64,
    /// Why the power plan is missing, when it is.
    pub note: Option<String>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Recommendation {
    /// A treatment won: serve it to everyone.
    Ship { variant: String },
    /// End the experiment; control stays (and the flag falls back to it).
    Stop { reason: StopReason },
    /// Not decided yet.
    KeepRunning { units_needed: u64 },
}

/// Why an experiment should stop.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StopReason {
    GuardrailViolated {
        metric: String,
        variant: String,
        evidence: GuardrailEvidence,
    },
    SampleRatioMismatch {
        p_value: f64,
    },
    /// Every treatment is significantly worse on the primary metric.
    TreatmentWorse {
        metric: String,
        variants: Vec<String>,
    },
    /// Fixed horizon: the planned sample was reached without a winner.
    NoWinnerAtPlannedSample,
    /// `maxDuration` passed without a winner.
    MaxDurationReached,
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recommendation::Ship { variant } => write!(f, "SHIP `{variant}`"),
            Recommendation::Stop { reason } => write!(f, "STOP: {reason}"),
            Recommendation::KeepRunning { units_needed: 0 } => {
                f.write_str("KEEP RUNNING: the planned sample is reached, the evidence is not yet")
            }
            Recommendation::KeepRunning { units_needed } => {
                write!(f, "KEEP RUNNING: about {units_needed} more units needed")
            }
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::GuardrailViolated {
                metric,
                variant,
                evidence,
            } => write!(
                f,
                "guardrail `{metric}` violated by `{variant}` (degradation {:.4}, at least {:.4} > limit {})",
                evidence.degradation, evidence.interval[0], evidence.limit
            ),
            StopReason::SampleRatioMismatch { p_value } => write!(
                f,
                "sample ratio mismatch (p = {p_value:.2e}): units do not follow the weights, results cannot be trusted"
            ),
            StopReason::TreatmentWorse { metric, variants } => write!(
                f,
                "{} significantly worse than control on `{metric}`",
                variants
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            StopReason::NoWinnerAtPlannedSample => {
                f.write_str("the planned sample is reached without a significant winner")
            }
            StopReason::MaxDurationReached => {
                f.write_str("the maximum duration passed without a winner")
            }
        }
    }
}
