//! What a judge says at one look, and the evidence behind it: counts, estimates, the
//! always-valid interval, the boundary it was compared with, the p-value, and how much more
//! traffic an undecided judge needs.

use serde::{Deserialize, Serialize};
use switchyard_stats::MarginEvidence;

use crate::judge::spec::Compare;

/// The judge's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeOutcome {
    /// Evidence that the canary is no worse than the boundary allows.
    Pass,
    /// Evidence that the canary is worse than the boundary allows.
    Fail,
    /// Not enough evidence either way yet.
    Inconclusive,
}

/// The test behind a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeMethod {
    /// Confidence sequence on canary − baseline error rate (`compare: error_rate`).
    SequentialTwoProportion,
    /// Confidence sequence on the difference of mean log-latencies (`compare: latency`).
    LogLatencyConfidenceSequence,
    /// Two-proportion confidence sequence on the share of canary requests slower than
    /// `maxIncrease` × the baseline's quantile (`compare: latency_pXX`).
    QuantileExceedance,
    /// Likelihood-ratio martingale on the canary/baseline error-rate ratio, conditioned on each
    /// interval's split (an `adaptive` step).
    RiskRatioMartingale,
}

/// Totals of one release and its value of the compared metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArmEvidence {
    /// Requests judged.
    pub requests: u64,
    /// Errors among them.
    pub errors: u64,
    /// Error rate, geometric-mean latency (s) or quantile latency (s); `None` without data.
    pub value: Option<f64>,
}

/// Everything a verdict rests on. `estimate`, `interval` and `boundary` are on the scale of the
/// test: the error-rate difference (canary − baseline), the latency ratio (canary / baseline),
/// the difference between the canary's share of requests above `threshold_s` and 1 − p, or
/// (adaptive steps) the ratio of the canary's error rate to the baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The compared metric.
    pub compare: Compare,
    /// The test.
    pub method: JudgeMethod,
    /// Canary totals.
    pub canary: ArmEvidence,
    /// Baseline totals.
    pub baseline: ArmEvidence,
    /// Point estimate; `None` until both releases have traffic.
    pub estimate: Option<f64>,
    /// Always-valid interval at level 1 − alpha.
    pub interval: Option<[f64; 2]>,
    /// Error rates: the tolerated canary − baseline difference at the current baseline,
    /// (`maxIncrease` − 1) × baseline + `margin`; latency: `maxIncrease`; quantiles: 0.
    pub boundary: f64,
    /// Always-valid p-value of "estimate = boundary".
    pub p_value: Option<f64>,
    /// Latency threshold T = maxIncrease × baseline quantile (quantile comparisons only).
    pub threshold_s: Option<f64>,
    /// Estimated additional canary requests to decide at the current effect size and traffic
    /// split; `None` once decided or when the estimate equals the boundary.
    pub needed_more: Option<u64>,
    /// An adaptive judge's canary weight for the next interval, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_weight: Option<u8>,
    /// An adaptive judge's estimate of the extra failed requests the canary has served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_failures: Option<f64>,
}

/// The verdict at one look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeVerdict {
    /// Pass, Fail or Inconclusive.
    pub outcome: JudgeOutcome,
    /// The outcome comes from `onTimeout`: the judge was still undecided at `maxDuration`.
    pub timed_out: bool,
    /// Milliseconds since the judge's first interval started being counted.
    pub elapsed_ms: u64,
    /// The numbers behind it.
    pub evidence: Evidence,
}

/// A test's result on its own scale, before it is presented as [`Evidence`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Point estimate.
    pub estimate: f64,
    /// Its standard error (for the traffic estimate).
    pub std_error: f64,
    /// Always-valid interval.
    pub interval: [f64; 2],
    /// What the interval is compared with.
    pub boundary: f64,
    /// Always-valid p-value of estimate = boundary.
    pub p_value: f64,
    /// Where the interval lies relative to the boundary.
    pub evidence: MarginEvidence,
}

impl Decision {
    /// Classifies the interval against the boundary.
    pub fn from_interval(
        estimate: f64,
        std_error: f64,
        interval: [f64; 2],
        boundary: f64,
        p_value: f64,
    ) -> Self {
        let evidence = if interval[0] > boundary {
            MarginEvidence::AboveMargin
        } else if interval[1] < boundary {
            MarginEvidence::BelowMargin
        } else {
            MarginEvidence::Inconclusive
        };
        Decision {
            estimate,
            std_error,
            interval,
            boundary,
            p_value,
            evidence,
        }
    }

    /// Above the boundary fails, below passes.
    pub fn outcome(&self) -> JudgeOutcome {
        match self.evidence {
            MarginEvidence::AboveMargin => JudgeOutcome::Fail,
            MarginEvidence::BelowMargin => JudgeOutcome::Pass,
            MarginEvidence::Inconclusive => JudgeOutcome::Inconclusive,
        }
    }
}

impl JudgeVerdict {
    /// One line for logs and the terminal, e.g.
    /// `fail: error_rate canary 5.10% vs baseline 0.98% (diff 0.0412, 99% CS [0.021, 0.061], boundary 0.005, p 0.0003)`.
    pub fn summary(&self) -> String {
        let e = &self.evidence;
        let outcome = match self.outcome {
            JudgeOutcome::Pass => "pass",
            JudgeOutcome::Fail => "fail",
            JudgeOutcome::Inconclusive => "inconclusive",
        };
        let timeout = if self.timed_out {
            " after maxDuration"
        } else {
            ""
        };
        let value = |v: Option<f64>| match (e.compare, v) {
            (_, None) => "-".to_owned(),
            (Compare::ErrorRate, Some(v)) => format!("{:.2}%", v * 100.0),
            (_, Some(v)) => format!("{:.1}ms", v * 1000.0),
        };
        let mut line = format!(
            "{outcome}{timeout}: {} canary {} ({} req) vs baseline {} ({} req)",
            serde_json::to_value(e.compare)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            value(e.canary.value),
            e.canary.requests,
            value(e.baseline.value),
            e.baseline.requests,
        );
        if let (Some(est), Some([lo, hi]), Some(p)) = (e.estimate, e.interval, e.p_value) {
            line.push_str(&format!(
                "; estimate {est:.4}, interval [{lo:.4}, {hi:.4}], boundary {:.4}, p {p:.2e}",
                e.boundary
            ));
        }
        if let Some(w) = e.next_weight {
            line.push_str(&format!("; next weight {w}%"));
        }
        if let Some(n) = e.needed_more {
            line.push_str(&format!("; about {n} more canary requests to decide"));
        }
        line
    }
}
