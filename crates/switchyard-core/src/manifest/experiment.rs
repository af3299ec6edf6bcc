//! `kind: Experiment`: an A/B test. Units (users, sessions, ...) are split between variants by a
//! sticky hash, events measure them, and the analysis in `switchyard-experiments` compares every
//! variant with the first one (control).
//!
//! ```yaml
//! apiVersion: switchyard.dev/v1alpha1
//! kind: Experiment
//! metadata: {name: checkout-redesign}
//! spec:
//!   split: {flag: {unit: userId}}        # or {traffic: {app: shop, unit: {header: x-user-id}}}
//!   variants:
//!     - {name: control, weight: 50, value: classic}
//!     - {name: redesign, weight: 50, value: redesign}
//!   targeting: {attribute: {name: country, op: in, values: [fr]}}
//!   metrics:
//!     - {name: purchased, conversion: {event: purchase}}
//!     - {name: revenue, continuous: {event: purchase}}
//!   guardrails:
//!     - {metric: revenue, maxDegradation: 0.05}
//!   minimumSampleSize: 1000
//!   maxDuration: 14days
//!   analysis: {method: sequential, alpha: 0.05, correction: holm}
//! ```
//!
//! Fields validate themselves while deserialising; what spans fields (names, weights, references
//! from guardrails to metrics, the targeting condition compiled by the flag engine) is checked
//! by [`Experiment::validate`], which the loader runs and locates.

mod check;
mod flag;
pub mod metric;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_flags::Condition as TargetingCondition;

pub use check::{ExperimentProblem, InvalidExperiment};
pub use flag::FlagServing;
pub use metric::{
    Better, BuiltinMetric, Cap, CapSpec, ERRORS_METRIC, EXPOSURE_EVENT, EventAggregate,
    EventMetric, EventName, LATENCY_METRIC, MetricDefinition, MetricName, MetricSpec,
    REQUEST_EVENT, RatioMetric, SERVER_ERROR_EVENT, WindowSpec, check_event_text,
};

use super::ObjectMeta;
use super::app::Stickiness;
use super::one_of::one_of;
use crate::duration::{serde_humantime, serde_humantime_opt};
use crate::name::{AppName, ObjectName, Version};

/// An experiment manifest. `metadata.name` is the experiment's key, and the flag key of a flag
/// experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub metadata: ObjectMeta,
    pub spec: ExperimentSpec,
}

/// Default minimum of units per variant before any decision.
pub const DEFAULT_MINIMUM_SAMPLE_SIZE: u64 = 100;
/// Default longest run: four full weeks, so every weekday is seen four times.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(28 * 24 * 3600);
/// Default significance level.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default power of the sample-size plan.
pub const DEFAULT_POWER: f64 = 0.8;
/// Default stickiness attribute of a flag experiment.
pub const DEFAULT_UNIT: &str = "targetingKey";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExperimentSpec {
    /// How units are assigned to variants.
    pub split: SplitSpec,
    /// At least two; the first is control, every other variant is compared with it.
    pub variants: Vec<VariantSpec>,
    /// Who takes part (flag experiments only): a condition of the flag engine. Units outside it
    /// are served control and are not part of the experiment.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_yaml_ng::with::singleton_map_recursive"
    )]
    pub targeting: Option<TargetingCondition>,
    /// What is measured. The first metric is the primary metric: it decides shipping.
    pub metrics: Vec<MetricSpec>,
    /// Metrics that must not get worse by more than an allowed amount; a violation stops the
    /// experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<GuardrailSpec>,
    /// Units each variant needs before any decision.
    #[serde(default = "default_minimum_sample_size")]
    pub minimum_sample_size: u64,
    /// The experiment stops (control stays) when it has found no winner after this long.
    #[serde(default = "default_max_duration", with = "serde_humantime")]
    pub max_duration: Duration,
    /// How results are computed.
    #[serde(default)]
    pub analysis: AnalysisSettings,
}

fn default_minimum_sample_size() -> u64 {
    DEFAULT_MINIMUM_SAMPLE_SIZE
}

fn default_max_duration() -> Duration {
    DEFAULT_MAX_DURATION
}

/// `split:` — exactly one of `flag` or `traffic`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SplitSpec {
    /// The flag engine serves each variant's `value` under the experiment's key, with the
    /// bucketing of flags.
    Flag(FlagSplit),
    /// The proxy of an app routes each unit's requests to one variant's release.
    Traffic(TrafficSplit),
}

one_of!(SplitSpec { "flag" => Flag(FlagSplit), "traffic" => Traffic(TrafficSplit) });

/// `split: {flag: {unit: userId}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlagSplit {
    /// The evaluation-context attribute that identifies a unit and is hashed for assignment.
    #[serde(default = "default_unit")]
    pub unit: String,
}

fn default_unit() -> String {
    DEFAULT_UNIT.to_owned()
}

/// `split: {traffic: {app: shop, unit: {header: x-user-id}}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficSplit {
    /// The app whose proxy splits requests; each variant names one of its releases.
    pub app: AppName,
    /// Where a request's unit key comes from (exactly one of `header`, `cookie`, `query`).
    pub unit: Stickiness,
}

/// One variant (arm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VariantSpec {
    pub name: ObjectName,
    /// Relative weight: the variant's share of units is weight / Σ weights.
    pub weight: u32,
    /// Flag experiments: the value the flag serves (default: the variant's name as a string).
    /// All values must have the same type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Traffic experiments: the app's release (version) that serves the variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A metric that must not degrade beyond `maxDegradation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GuardrailSpec {
    /// A metric of `metrics`, or a built-in (`$errors`, `$latency_ms`) of a traffic experiment.
    pub metric: MetricName,
    /// The tolerated degradation, in the direction that is worse for the metric: a fraction of
    /// control's value (`scale: relative`, 0.05 = 5 % worse) or in the metric's own unit
    /// (`scale: absolute`, 0.01 = one percentage point more errors). 0 tolerates none.
    pub max_degradation: f64,
    #[serde(default)]
    pub scale: Scale,
}

/// How a guardrail's `maxDegradation` is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// A fraction of control's value.
    #[default]
    Relative,
    /// In the metric's own unit.
    Absolute,
}

/// `analysis:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisSettings {
    #[serde(default)]
    pub method: Method,
    /// Significance level: the tolerated false-positive rate of each (corrected) comparison.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Correction for comparing many metrics × variants.
    #[serde(default)]
    pub correction: Correction,
    /// Chance of detecting a true effect of `minimumDetectableEffect` (sample-size plan).
    #[serde(default = "default_power")]
    pub power: f64,
    /// Smallest relative lift of the primary metric worth detecting (0.05 = 5 %); with it, the
    /// sample-size plan also asks for enough units to detect it with `power`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_detectable_effect: Option<f64>,
    /// Reduce variance with each unit's pre-exposure value of the metric (CUPED).
    #[serde(default = "yes")]
    pub cuped: bool,
    /// Only events within this long before a unit's exposure make its CUPED covariate
    /// (GrowthBook's `regressionAdjustmentDays`, 14 days there by default); every
    /// pre-exposure event when absent.
    #[serde(
        default,
        with = "serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cuped_lookback: Option<Duration>,
    /// The difference each verdict tests, and whose p-value (or chance to win) and interval
    /// are shown and corrected: the relative lift (as GrowthBook) or the absolute difference.
    #[serde(default)]
    pub difference: Scale,
    /// The fixed-horizon test of a conversion without CUPED: Welch's t on p(1 − p) (as
    /// GrowthBook) or the pooled two-proportion z test.
    #[serde(default)]
    pub proportions: ProportionTest,
    /// N* of the sequential method: the total units of two arms where its intervals are
    /// tightest. Default: twice `minimumSampleSize`, at least 5 000 (GrowthBook's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_tuning: Option<f64>,
    /// The Bayesian method's prior on the tested difference (on its scale: a relative lift,
    /// or the metric's unit); flat when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSpec>,
}

/// A normal prior.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriorSpec {
    #[serde(default)]
    pub mean: f64,
    pub stddev: f64,
}

/// The fixed-horizon test of two conversion rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProportionTest {
    /// Welch's t with each arm's variance p(1 − p).
    #[default]
    Welch,
    /// The z test with the pooled proportion under the null (absolute difference only; the
    /// relative lift is always Welch's).
    PooledZ,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            method: Method::default(),
            alpha: DEFAULT_ALPHA,
            correction: Correction::default(),
            power: DEFAULT_POWER,
            minimum_detectable_effect: None,
            cuped: true,
            cuped_lookback: None,
            difference: Scale::default(),
            proportions: ProportionTest::default(),
            sequential_tuning: None,
            prior: None,
        }
    }
}

fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}

fn default_power() -> f64 {
    DEFAULT_POWER
}

fn yes() -> bool {
    true
}

/// How variants are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Fixed horizon (Welch t, two proportions): read once, when the planned sample is reached.
    Fixed,
    /// Always-valid confidence sequences: may be read, and acted on, at any time.
    #[default]
    Sequential,
    /// Gaussian posterior of the relative lift: chance to win and credible interval.
    Bayesian,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Relative => "relative",
            Scale::Absolute => "absolute",
        }
    }
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Fixed => "fixed",
            Method::Sequential => "sequential",
            Method::Bayesian => "bayesian",
        }
    }
}

/// Multiple-testing correction across metrics × variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Holm's step-down: family-wise error at alpha, never worse than Bonferroni.
    #[default]
    Holm,
    /// Benjamini–Hochberg: false-discovery rate at alpha.
    BenjaminiHochberg,
    /// Bonferroni: p · m.
    Bonferroni,
    /// Every comparison at alpha on its own.
    None,
}

impl Correction {
    pub fn as_str(self) -> &'static str {
        match self {
            Correction::Holm => "holm",
            Correction::BenjaminiHochberg => "benjamini-hochberg",
            Correction::Bonferroni => "bonferroni",
            Correction::None => "none",
        }
    }
}

impl Experiment {
    /// The experiment's key.
    pub fn key(&self) -> &str {
        self.metadata.name.as_str()
    }

    /// What of `self` would count units differently from `stored`, the same experiment as it
    /// was applied and has counted so far: its split, its variants' names, a metric's events,
    /// window or fixed cap, a metric it did not have, the CUPED lookback. The field path and
    /// why; `None` when only what the analysis reads changed (method, alpha, weights, percentile
    /// caps, guardrails, ...). Stored units and aggregates follow the counting they were made
    /// with, so it cannot change under them.
    pub fn counting_change(&self, stored: &Experiment) -> Option<(String, &'static str)> {
        let (new, old) = (&self.spec, &stored.spec);
        if new.split != old.split {
            return Some(("spec.split".into(), "units were assigned by it"));
        }
        let names = new.variants.iter().map(|v| &v.name);
        if !names.eq(old.variants.iter().map(|v| &v.name)) {
            return Some((
                "spec.variants".into(),
                "units are counted under the variants' names, in order",
            ));
        }
        for (i, m) in new.metrics.iter().enumerate() {
            let path = format!("spec.metrics[{i}]");
            let Some(before) = old.metrics.iter().find(|o| o.name == m.name) else {
                return Some((path, "a new metric would miss the events already counted"));
            };
            let counting =
                |m: &MetricSpec| (m.definition().ok(), m.window, m.cap.and_then(|c| c.value));
            if counting(m) != counting(before) {
                return Some((
                    path,
                    "its events, window and fixed cap made the values already counted",
                ));
            }
        }
        let lookback = |s: &ExperimentSpec| {
            s.analysis
                .cuped
                .then_some(s.analysis.cuped_lookback)
                .flatten()
        };
        if lookback(new) != lookback(old) {
            return Some((
                "spec.analysis.cupedLookback".into(),
                "covariates were counted with it at each exposure",
            ));
        }
        None
    }

    /// The control variant (the first).
    pub fn control(&self) -> Option<&VariantSpec> {
        self.spec.variants.first()
    }

    /// Every metric the experiment aggregates, in order: those of `metrics`, then the built-ins
    /// named only by guardrails. Each with its definition and direction.
    ///
    /// # Errors
    /// As [`Experiment::validate`].
    pub fn all_metrics(
        &self,
    ) -> Result<Vec<(MetricName, MetricDefinition, Better)>, InvalidExperiment> {
        self.validate()?;
        Ok(check::all_metrics(&self.spec))
    }
}

impl ExperimentSpec {
    /// Σ weights (positive in a valid spec).
    pub fn total_weight(&self) -> u64 {
        self.variants.iter().map(|v| u64::from(v.weight)).sum()
    }
}

#[cfg(test)]
mod tests;
