//! [`SimConfig`]: the scenario, one field per `switchyard sim canary` flag.

use serde::{Deserialize, Serialize};

use switchyard_core::manifest::app::AdaptiveStep;

use crate::judge::spec::{DEFAULT_ALPHA, DEFAULT_MARGIN, DEFAULT_MAX_INCREASE};
use crate::sim::SimError;

/// A simulated canary: two releases, the traffic, and how many seeded repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Baseline (stable) error probability per request (`--baseline-error`).
    pub baseline_error: f64,
    /// Canary error probability per request (`--canary-error`).
    pub canary_error: f64,
    /// Baseline median latency, ms (`--baseline-latency-ms`).
    pub baseline_latency_ms: f64,
    /// Canary median latency, ms (`--canary-latency-ms`).
    pub canary_latency_ms: f64,
    /// Log-normal spread σ of both releases' latency (`--latency-sigma`).
    pub latency_sigma: f64,
    /// Total requests per second over both releases (`--rps`).
    pub rps: f64,
    /// Canary share of traffic, percent (`--weight`).
    pub weight: f64,
    /// Length of each run, seconds (`--duration`).
    pub duration: u64,
    /// Repetitions (`--runs`); each also runs an A/A twin.
    pub runs: u32,
    /// Seed of every random draw (`--seed`).
    pub seed: u64,
    /// Our judge's error-rate `margin` (`--margin`).
    pub margin: f64,
    /// Our judge's latency `maxIncrease` (`--max-increase`).
    pub max_increase: f64,
    /// Our judge's `alpha` (`--alpha`).
    pub alpha: f64,
    /// The adaptive canary's `maxWeight`, percent (`--max-weight`).
    pub max_weight: f64,
    /// The adaptive canary's `minWeight`, percent (`--min-weight`).
    pub min_weight: f64,
    /// The adaptive canary's `errorBudget`, extra failed requests (`--error-budget`).
    pub error_budget: f64,
    /// Seconds between the adaptive canary's looks (`--adaptive-interval`).
    pub adaptive_interval: u64,
    /// Traffic swings between (1 − d) and (1 + d) × `rps` over a 30-minute cycle, a day
    /// compressed (`--diurnal`).
    pub diurnal: f64,
    /// Shared error bursts per hour (`--bursts`): a dependency outage during which half of the
    /// requests of both releases fail, for 20 s.
    pub bursts: f64,
    /// Share of requests of both releases that take 20 × their latency (`--tail-share`): a heavy
    /// tail of timeouts and retries.
    pub tail_share: f64,
}

impl Default for SimConfig {
    /// The reference scenario: 100 rps, 10 % canary at 5 % errors vs 1 %, 10 minutes,
    /// 1000 runs; the judge at its defaults.
    fn default() -> Self {
        SimConfig {
            baseline_error: 0.01,
            canary_error: 0.05,
            baseline_latency_ms: 100.0,
            canary_latency_ms: 100.0,
            latency_sigma: 0.5,
            rps: 100.0,
            weight: 10.0,
            duration: 600,
            runs: 1000,
            seed: 1,
            margin: DEFAULT_MARGIN,
            max_increase: DEFAULT_MAX_INCREASE,
            alpha: DEFAULT_ALPHA,
            max_weight: 20.0,
            min_weight: 1.0,
            error_budget: AdaptiveStep::DEFAULT_ERROR_BUDGET,
            adaptive_interval: 1,
            diurnal: 0.0,
            bursts: 0.0,
            tail_share: 0.0,
        }
    }
}

impl SimConfig {
    /// Checks every field's range (the judge's fields when the judge is built).
    ///
    /// # Errors
    /// [`SimError::Invalid`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), SimError> {
        let check = |field, value: f64, ok: bool, expected| {
            if ok {
                Ok(())
            } else {
                Err(SimError::Invalid {
                    field,
                    value,
                    expected,
                })
            }
        };
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        let latency = |x: f64| x.is_finite() && x > 0.0 && x <= 1e6;
        check(
            "baseline_error",
            self.baseline_error,
            unit(self.baseline_error),
            "in [0, 1]",
        )?;
        check(
            "canary_error",
            self.canary_error,
            unit(self.canary_error),
            "in [0, 1]",
        )?;
        check(
            "baseline_latency_ms",
            self.baseline_latency_ms,
            latency(self.baseline_latency_ms),
            "in (0, 1e6]",
        )?;
        check(
            "canary_latency_ms",
            self.canary_latency_ms,
            latency(self.canary_latency_ms),
            "in (0, 1e6]",
        )?;
        check(
            "latency_sigma",
            self.latency_sigma,
            (0.0..=5.0).contains(&self.latency_sigma),
            "in [0, 5]",
        )?;
        check(
            "rps",
            self.rps,
            self.rps > 0.0 && self.rps <= 100_000.0,
            "in (0, 100000]",
        )?;
        check(
            "weight",
            self.weight,
            self.weight > 0.0 && self.weight < 100.0,
            "in (0, 100)",
        )?;
        check(
            "duration",
            self.duration as f64,
            (1..=86_400).contains(&self.duration),
            "in [1, 86400] seconds",
        )?;
        check(
            "min_weight",
            self.min_weight,
            self.min_weight >= 1.0 && self.min_weight <= self.max_weight,
            "in [1, max_weight]",
        )?;
        check(
            "max_weight",
            self.max_weight,
            self.max_weight >= 1.0 && self.max_weight <= 99.0,
            "in [1, 99]",
        )?;
        check(
            "error_budget",
            self.error_budget,
            self.error_budget.is_finite() && self.error_budget > 0.0,
            "> 0",
        )?;
        check(
            "adaptive_interval",
            self.adaptive_interval as f64,
            (1..=3600).contains(&self.adaptive_interval),
            "in [1, 3600] seconds",
        )?;
        check(
            "diurnal",
            self.diurnal,
            (0.0..1.0).contains(&self.diurnal),
            "in [0, 1)",
        )?;
        check(
            "bursts",
            self.bursts,
            (0.0..=3600.0).contains(&self.bursts),
            "in [0, 3600] per hour",
        )?;
        check(
            "tail_share",
            self.tail_share,
            unit(self.tail_share),
            "in [0, 1]",
        )?;
        check(
            "runs",
            f64::from(self.runs),
            (1..=1_000_000).contains(&self.runs),
            "in [1, 1000000]",
        )
    }

    /// The same scenario with the canary set to the baseline's parameters.
    pub fn a_a(&self) -> SimConfig {
        SimConfig {
            canary_error: self.baseline_error,
            canary_latency_ms: self.baseline_latency_ms,
            ..self.clone()
        }
    }
}
