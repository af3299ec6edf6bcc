//! The `judge:` field of an analysis metric: what to compare, against which release, and how
//! much worse the canary may be. The judge itself lives in `switchyard-analysis`.
//!
//! ```yaml
//! judge: {compare: error_rate, against: stable, maxIncrease: 1.2, margin: 0.0002, alpha: 0.01}
//! judge: {compare: latency_p99, maxIncrease: 1.2, maxDuration: 15m, onTimeout: fail}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default absolute allowance on top of `maxIncrease` × the baseline's error rate (0.02
/// percentage points): what keeps a service without errors from failing a canary over its first.
pub const DEFAULT_MARGIN: f64 = 0.0002;
/// Default tolerated ratio canary / baseline, of error rates (with the margin) and latencies.
pub const DEFAULT_MAX_INCREASE: f64 = 1.2;
/// Default error budget of the whole sequence of looks.
pub const DEFAULT_ALPHA: f64 = 0.01;
/// Which metric the judge compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Share of requests answered 5xx (or never answered).
    ErrorRate,
    /// The latency distribution as a whole: ratio of geometric means (mean log-latency).
    Latency,
    /// The median latency.
    LatencyP50,
    /// The 95th percentile latency.
    LatencyP95,
    /// The 99th percentile latency.
    LatencyP99,
}

impl Compare {
    /// The quantile level for the `latency_pXX` comparisons.
    pub fn quantile(self) -> Option<f64> {
        match self {
            Compare::LatencyP50 => Some(0.50),
            Compare::LatencyP95 => Some(0.95),
            Compare::LatencyP99 => Some(0.99),
            Compare::ErrorRate | Compare::Latency => None,
        }
    }

    /// Whether the comparison reads latency histograms.
    pub fn uses_latency(self) -> bool {
        self != Compare::ErrorRate
    }
}

/// The release the canary is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// The stable release over the same intervals.
    #[default]
    Stable,
    /// A fresh copy of the stable release at the canary's size and weight, started with the
    /// rollout and removed after it (as Kayenta recommends): both sides are equally new, so
    /// warm-up and long-running effects do not bias the comparison.
    Baseline,
}

/// What an undecided judge becomes once `maxDuration` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Roll back: the canary could not show it is no worse in time.
    #[default]
    Fail,
    /// Promote: no evidence of harm was found in time.
    Pass,
    /// Stay inconclusive and let the rollout decide (Argo's inconclusive: pause for a human).
    Inconclusive,
}

/// A statistical judge of canary against baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JudgeSpec {
    /// The metric compared.
    pub compare: Compare,
    /// The baseline release.
    #[serde(default)]
    pub against: Against,
    /// Error rates: the absolute allowance in "canary ≤ maxIncrease × baseline + margin".
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Tolerated ratio canary / baseline: of error rates (plus `margin`; 1.2 = 20 % more
    /// errors) and of latencies (1.2 = 20 % slower).
    #[serde(default = "default_max_increase")]
    pub max_increase: f64,
    /// Probability of a wrong decision over the whole, continuously watched, judge.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How long the judge may stay inconclusive before `onTimeout` applies; unlimited if absent.
    #[serde(
        default,
        with = "crate::duration::serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_duration: Option<Duration>,
    /// The outcome of a judge still inconclusive at `maxDuration`.
    #[serde(default)]
    pub on_timeout: OnTimeout,
    /// Where both releases' traffic is read: the built-in proxy's telemetry when absent;
    /// Prometheus for apps whose traffic the proxy does not see (`kubernetes` apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<JudgeSource>,
    /// Set by an `adaptive` canary step, never in a template: the judge tests the canary's
    /// error rate by a risk-ratio martingale and chooses the canary's next weight itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptivePlan>,
}

/// How an `adaptive` step may move the canary's weight: between `min_weight` and `max_weight`
/// percent, keeping the extra failed requests the canary may cause within `error_budget`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdaptivePlan {
    /// Smallest weight, percent (the step starts there).
    pub min_weight: u8,
    /// Largest weight, percent.
    pub max_weight: u8,
    /// Extra failed requests (beyond what the baseline's error rate would give) the canary may
    /// serve before its verdict.
    pub error_budget: f64,
}

/// `source:` — exactly one of `prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JudgeSource {
    Prometheus(PrometheusTotals),
}

crate::manifest::one_of::one_of!(JudgeSource { "prometheus" => Prometheus(PrometheusTotals) });

/// Queries for a release's monotonic totals, as the built-in telemetry keeps them: the judge
/// takes the difference between two looks, so each request counts once. Rendered per release
/// (`{{release}}` is `canary` or `stable`, `{{version}}` its version, `{{namespace}}` the
/// app's namespace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusTotals {
    /// Base URL of the server.
    pub address: super::HttpUrl,
    /// Requests the release answered, e.g. `sum(http_requests_total{version="{{version}}"})`.
    pub requests: super::Template,
    /// Of those, the ones answered 5xx (or not at all).
    pub errors: super::Template,
    /// Cumulative latency buckets by `le`, in seconds, e.g.
    /// `sum by (le) (http_request_duration_seconds_bucket{version="{{version}}"})`; needed to
    /// compare latencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<super::Template>,
    /// Time for each query (default 10 s).
    #[serde(
        default,
        with = "crate::duration::serde_humantime_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl PrometheusTotals {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(10))
    }
}

fn default_margin() -> f64 {
    DEFAULT_MARGIN
}

fn default_max_increase() -> f64 {
    DEFAULT_MAX_INCREASE
}

fn default_alpha() -> f64 {
    DEFAULT_ALPHA
}

impl JudgeSpec {
    /// A judge of `compare` with every other field at its default.
    pub fn new(compare: Compare) -> Self {
        JudgeSpec {
            compare,
            against: Against::Stable,
            margin: DEFAULT_MARGIN,
            max_increase: DEFAULT_MAX_INCREASE,
            alpha: DEFAULT_ALPHA,
            max_duration: None,
            on_timeout: OnTimeout::Fail,
            source: None,
            adaptive: None,
        }
    }

    /// The field whose value is out of range, with the value and the range, if any.
    pub fn out_of_range(&self) -> Option<(&'static str, f64, &'static str)> {
        if !(0.0..1.0).contains(&self.margin) {
            return Some(("margin", self.margin, "in [0, 1)"));
        }
        if !(1.0..=100.0).contains(&self.max_increase) {
            return Some(("maxIncrease", self.max_increase, "in [1, 100]"));
        }
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            return Some(("alpha", self.alpha, "in (0, 0.5]"));
        }
        None
    }
}
