//! [`JudgeState`]: the running totals of one judge, persisted with the rollout as JSON, and the
//! verdict at any look.

use serde::{Deserialize, Serialize};
use switchyard_stats::ProportionCounts;

use crate::judge::adaptive;
use crate::judge::error::JudgeError;
use crate::judge::error_rate;
use crate::judge::histogram::LogHistogram;
use crate::judge::log_latency::{self, LogMoments};
use crate::judge::needed::additional_canary_requests;
use crate::judge::observation::{ArmInterval, IntervalObservation};
use crate::judge::quantile;
use crate::judge::risk_ratio::RiskRatio;
use crate::judge::spec::{Compare, JudgeSpec, OnTimeout};
use crate::judge::verdict::{
    ArmEvidence, Decision, Evidence, JudgeMethod, JudgeOutcome, JudgeVerdict,
};

/// Totals of one release since the judge started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmTotals {
    /// Requests.
    pub requests: u64,
    /// Errors.
    pub errors: u64,
    /// Log-latency moments (`compare: latency`).
    #[serde(default)]
    pub log_latency: LogMoments,
    /// Latency histogram (`compare: latency_pXX`).
    #[serde(default)]
    pub histogram: LogHistogram,
}

impl ArmTotals {
    fn counts(&self) -> ProportionCounts {
        ProportionCounts {
            trials: self.requests,
            successes: self.errors,
        }
    }

    fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    fn add(&mut self, interval: &ArmInterval, compare: Compare) {
        self.requests += interval.requests;
        self.errors += interval.errors;
        if compare == Compare::Latency {
            for &(bound, count) in &interval.latency {
                self.log_latency.add(bound, count);
            }
        } else if compare.quantile().is_some() {
            for &(bound, count) in &interval.latency {
                self.histogram.add(bound, count);
            }
        }
    }
}

/// One judge's state: its spec, when it started, and the totals of both releases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeState {
    spec: JudgeSpec,
    /// Start of the first counted interval (or the explicit start), ms.
    started_at_ms: Option<u64>,
    canary: ArmTotals,
    baseline: ArmTotals,
    /// The risk-ratio test of an adaptive judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    risk: Option<Box<RiskRatio>>,
    /// End of the last recorded interval, ms (the request rate of an interval needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_at_ms: Option<u64>,
    /// The canary weight an adaptive judge chose for the next interval, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u8>,
}

impl JudgeState {
    /// An empty judge.
    ///
    /// # Errors
    /// [`JudgeError::InvalidSpec`] when the spec is out of range.
    pub fn new(spec: JudgeSpec) -> Result<Self, JudgeError> {
        crate::judge::spec::validate(&spec)?;
        let adaptive = spec.adaptive;
        Ok(JudgeState {
            risk: adaptive.map(|_| Box::new(RiskRatio::new(spec.max_increase))),
            weight: adaptive.map(|plan| plan.min_weight),
            spec,
            started_at_ms: None,
            canary: ArmTotals::default(),
            baseline: ArmTotals::default(),
            last_at_ms: None,
        })
    }

    /// Sets when the judge started (the analysis step began), for `maxDuration`. Without it the
    /// first recorded interval's `at_ms` is the start.
    pub fn start(&mut self, at_ms: u64) {
        self.started_at_ms = Some(at_ms);
    }

    /// The specification.
    pub fn spec(&self) -> &JudgeSpec {
        &self.spec
    }

    /// Canary totals.
    pub fn canary(&self) -> &ArmTotals {
        &self.canary
    }

    /// Baseline totals.
    pub fn baseline(&self) -> &ArmTotals {
        &self.baseline
    }

    /// The canary weight an adaptive judge chose for the next interval (`None` for a judge of
    /// a fixed split).
    pub fn weight(&self) -> Option<u8> {
        self.weight
    }

    /// Adds one interval of both releases.
    ///
    /// # Errors
    /// More errors than requests, or a latency bucket bound that is negative or not finite; the
    /// state is unchanged.
    pub fn record(&mut self, interval: &IntervalObservation) -> Result<(), JudgeError> {
        for (arm, a) in [
            ("canary", &interval.canary),
            ("baseline", &interval.baseline),
        ] {
            if a.errors > a.requests {
                return Err(JudgeError::ErrorsAboveRequests {
                    arm,
                    errors: a.errors,
                    requests: a.requests,
                });
            }
            if let Some(&(bound, _)) = a
                .latency
                .iter()
                .find(|(b, _)| !(b.is_finite() && *b >= 0.0))
            {
                return Err(JudgeError::InvalidBucket { arm, bound });
            }
        }
        self.started_at_ms.get_or_insert(interval.at_ms);
        self.canary.add(&interval.canary, self.spec.compare);
        self.baseline.add(&interval.baseline, self.spec.compare);
        let (c, b) = (&interval.canary, &interval.baseline);
        if let (Some(risk), Some(plan)) = (self.risk.as_deref_mut(), self.spec.adaptive) {
            risk.record((c.requests, c.errors), (b.requests, b.errors));
            let seconds = self.last_at_ms.map_or(0.0, |last| {
                interval.at_ms.saturating_sub(last) as f64 / 1000.0
            });
            if seconds > 0.0 {
                let rps = (c.requests + b.requests) as f64 / seconds;
                self.weight = Some(adaptive::next_weight(risk, &plan, self.spec.alpha, rps));
            }
        }
        self.last_at_ms = Some(interval.at_ms);
        Ok(())
    }

    /// The verdict at `now_ms`: the test's decision, or `onTimeout` once `maxDuration` has
    /// passed without one.
    ///
    /// # Errors
    /// [`JudgeError::Stats`] only if the statistics library refuses a validated configuration.
    pub fn verdict(&self, now_ms: u64) -> Result<JudgeVerdict, JudgeError> {
        let (mut outcome, mut evidence) = self.evidence()?;
        let elapsed_ms = self
            .started_at_ms
            .map_or(0, |start| now_ms.saturating_sub(start));
        let expired = self
            .spec
            .max_duration
            .is_some_and(|max| u128::from(elapsed_ms) >= max.as_millis());
        let timed_out = outcome == JudgeOutcome::Inconclusive && expired;
        if timed_out {
            outcome = match self.spec.on_timeout {
                OnTimeout::Fail => JudgeOutcome::Fail,
                OnTimeout::Pass => JudgeOutcome::Pass,
                OnTimeout::Inconclusive => JudgeOutcome::Inconclusive,
            };
        }
        if outcome != JudgeOutcome::Inconclusive {
            evidence.needed_more = None;
        }
        Ok(JudgeVerdict {
            outcome,
            timed_out,
            elapsed_ms,
            evidence,
        })
    }

    fn arm(&self, totals: &ArmTotals, value: Option<f64>) -> ArmEvidence {
        ArmEvidence {
            requests: totals.requests,
            errors: totals.errors,
            value,
        }
    }

    /// The test's outcome and the evidence, `needed_more` included.
    fn evidence(&self) -> Result<(JudgeOutcome, Evidence), JudgeError> {
        if let Some(risk) = self.risk.as_deref() {
            return Ok(self.risk_evidence(risk));
        }
        let spec = &self.spec;
        let (c, b) = (&self.canary, &self.baseline);
        let mut evidence = Evidence {
            compare: spec.compare,
            method: JudgeMethod::SequentialTwoProportion,
            canary: self.arm(c, c.error_rate()),
            baseline: self.arm(b, b.error_rate()),
            estimate: None,
            interval: None,
            boundary: spec.margin,
            p_value: None,
            threshold_s: None,
            needed_more: None,
            next_weight: None,
            extra_failures: None,
        };
        // The scale the estimate is shown on (latency ratios are tested on logs).
        let mut show: fn(f64) -> f64 = |x| x;
        let (decision, canary_n) = match spec.compare {
            Compare::ErrorRate => (
                error_rate::decide(
                    c.counts(),
                    b.counts(),
                    spec.max_increase,
                    spec.margin,
                    spec.alpha,
                )?,
                c.requests,
            ),
            Compare::Latency => {
                evidence.method = JudgeMethod::LogLatencyConfidenceSequence;
                evidence.canary.value = c.log_latency.geometric_mean();
                evidence.baseline.value = b.log_latency.geometric_mean();
                evidence.boundary = spec.max_increase;
                show = f64::exp;
                let d = log_latency::decide(
                    &c.log_latency,
                    &b.log_latency,
                    spec.max_increase,
                    spec.alpha,
                );
                (d, c.log_latency.n)
            }
            Compare::LatencyP50 | Compare::LatencyP95 | Compare::LatencyP99 => {
                let p = spec.compare.quantile().unwrap_or(0.5);
                evidence.method = JudgeMethod::QuantileExceedance;
                evidence.canary.value = c.histogram.quantile(p);
                evidence.baseline.value = b.histogram.quantile(p);
                evidence.boundary = 0.0;
                let q =
                    quantile::decide(&c.histogram, &b.histogram, p, spec.max_increase, spec.alpha)?;
                evidence.threshold_s = q.map(|q| q.threshold);
                (q.map(|q| q.decision), c.histogram.total())
            }
        };
        if let Some(d) = decision {
            if spec.compare == Compare::ErrorRate {
                // The tolerated difference at the current baseline rate.
                evidence.boundary = d.boundary;
            }
            evidence.estimate = Some(show(d.estimate));
            evidence.interval = Some([show(d.interval[0]), show(d.interval[1])]);
            evidence.p_value = Some(d.p_value);
            let total = match spec.compare {
                Compare::ErrorRate => c.requests + b.requests,
                Compare::Latency => c.log_latency.n + b.log_latency.n,
                _ => c.histogram.total() + b.histogram.total(),
            };
            // Decisions carry their boundary on the test's own scale (log for latency).
            let distance = (d.estimate - d.boundary).abs();
            evidence.needed_more =
                additional_canary_requests(distance, d.std_error, canary_n, total, spec.alpha);
        }
        let outcome = decision.map_or(JudgeOutcome::Inconclusive, |d: Decision| d.outcome());
        Ok((outcome, evidence))
    }

    /// The outcome and evidence of an adaptive judge's risk-ratio test.
    fn risk_evidence(&self, risk: &RiskRatio) -> (JudgeOutcome, Evidence) {
        let (c, b) = (&self.canary, &self.baseline);
        let e = risk.evidence(self.spec.alpha);
        let outcome = if e.fail {
            JudgeOutcome::Fail
        } else if e.pass {
            JudgeOutcome::Pass
        } else {
            JudgeOutcome::Inconclusive
        };
        let informed = e.estimate.is_some();
        let evidence = Evidence {
            compare: self.spec.compare,
            method: JudgeMethod::RiskRatioMartingale,
            canary: self.arm(c, c.error_rate()),
            baseline: self.arm(b, b.error_rate()),
            estimate: e.estimate,
            interval: informed.then_some(e.interval),
            boundary: e.boundary,
            p_value: informed.then_some(e.p_value),
            threshold_s: None,
            needed_more: risk.needed_more(self.spec.alpha),
            next_weight: self.weight,
            extra_failures: Some(risk.extra_failures()),
        };
        (outcome, evidence)
    }
}
