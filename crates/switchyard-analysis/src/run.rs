//! One analysis: metrics measured at intervals and judged by their conditions, with the
//! semantics of Argo Rollouts' AnalysisRun.
//!
//! - A measurement is *Successful* when `successCondition` holds, *Failed* when
//!   `failureCondition` holds or `successCondition` does not (with no `failureCondition`),
//!   *Inconclusive* when both are given and neither holds, *Error* when the provider failed or
//!   the condition could not be evaluated.
//! - A metric fails when its failed measurements exceed `failureLimit`, is inconclusive when
//!   inconclusive ones exceed `inconclusiveLimit`, errs when errors in a row exceed
//!   `consecutiveErrorLimit`, and succeeds after `count` measurements otherwise.
//! - Deliberate difference: a window without traffic is *Inconclusive* ("no data"), not Error:
//!   low traffic is not evidence against a release.
//! - Dry-run metrics are measured and recorded but never change the outcome.
//!
//! Waiting is data: each metric stores when its next measurement is due.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::manifest::analysis::{AnalysisTemplateSpec, MetricSpec};
use switchyard_core::{ReleaseTotals, Timestamp};

use crate::judge::spec::share_alpha;
use crate::judge::{IntervalObservation, JudgeOutcome, JudgeSpec, JudgeState};
use crate::provider::{MeasureError, Observation};

/// The outcome of a metric, or of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// The verdict on one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementPhase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// One measurement with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub at: Timestamp,
    pub template: String,
    pub metric: String,
    pub phase: MeasurementPhase,
    /// The measured value, as shown.
    pub value: Option<String>,
    pub baseline: Option<String>,
    pub samples: Option<u64>,
    /// The condition that decided, or why none could.
    pub message: String,
    pub dry_run: bool,
    /// A judge's evidence: counts, estimates, interval, boundary, p-value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<serde_json::Value>,
}

/// The progress of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRun {
    pub template: String,
    pub spec: MetricSpec,
    pub next_at: Timestamp,
    pub taken: u32,
    pub successful: u32,
    pub failed: u32,
    pub inconclusive: u32,
    pub errors: u32,
    pub consecutive_errors: u32,
    pub status: RunStatus,
    pub last: Option<Measurement>,
    /// The statistical judge of a `judge:` metric, with its running totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeState>,
    /// The data plane's totals of canary and baseline at the judge's last look; the next
    /// interval is the difference from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_totals: Option<[ReleaseTotals; 2]>,
}

/// All metrics of the templates an analysis step names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRun {
    pub started_at: Timestamp,
    pub metrics: Vec<MetricRun>,
}

impl AnalysisRun {
    /// Starts measuring the metrics of `templates` at `now` (plus each metric's initial delay).
    pub fn new<'a>(
        templates: impl IntoIterator<Item = (&'a str, &'a AnalysisTemplateSpec)>,
        now: Timestamp,
    ) -> Self {
        let metrics: Vec<(&str, &MetricSpec)> = templates
            .into_iter()
            .flat_map(|(name, spec)| spec.metrics.iter().map(move |m| (name, m)))
            .collect();
        // The judges of one analysis share its error budget (see `share_alpha`).
        let mut judges: Vec<JudgeSpec> = metrics
            .iter()
            .filter_map(|(_, m)| m.judge.clone())
            .collect();
        share_alpha(&mut judges);
        let mut shared = judges.into_iter();
        let metrics = metrics
            .into_iter()
            .map(|(name, m)| MetricRun {
                template: name.to_string(),
                spec: m.clone(),
                next_at: now.plus(m.initial_delay.unwrap_or_default()),
                taken: 0,
                successful: 0,
                failed: 0,
                inconclusive: 0,
                errors: 0,
                consecutive_errors: 0,
                status: RunStatus::Running,
                last: None,
                judge_totals: None,
                judge: m.judge.as_ref().and_then(|_| {
                    let mut state = JudgeState::new(shared.next()?).ok()?;
                    state.start(now.as_millis());
                    Some(state)
                }),
            })
            .collect();
        Self {
            started_at: now,
            metrics,
        }
    }

    /// Indices of metrics whose next measurement is due at `now`.
    pub fn due(&self, now: Timestamp) -> Vec<usize> {
        (0..self.metrics.len())
            .filter(|&i| {
                self.metrics[i].status == RunStatus::Running && self.metrics[i].next_at <= now
            })
            .collect()
    }

    /// When the next measurement is due, if any metric still runs.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.metrics
            .iter()
            .filter(|m| m.status == RunStatus::Running)
            .map(|m| m.next_at)
            .min()
    }

    /// Records the outcome of measuring metric `index` at `now` and returns the measurement.
    /// Does nothing (and returns `None`) for an index out of range or a finished metric.
    pub fn record(
        &mut self,
        index: usize,
        outcome: Result<Observation, MeasureError>,
        now: Timestamp,
    ) -> Option<Measurement> {
        let metric = self
            .metrics
            .get_mut(index)
            .filter(|m| m.status == RunStatus::Running)?;
        let measurement = judge(metric, outcome, now);
        metric.apply(&measurement, now);
        Some(measurement)
    }

    /// Records one interval of both releases for the judge of metric `index` and returns the
    /// measurement. A judge's verdict is final: Pass succeeds the metric, Fail fails it;
    /// Inconclusive keeps it running (and only becomes inconclusive after `maxDuration` with
    /// `onTimeout: inconclusive`).
    pub fn record_judge(
        &mut self,
        index: usize,
        interval: &IntervalObservation,
        totals: [ReleaseTotals; 2],
        now: Timestamp,
    ) -> Option<Measurement> {
        let metric = self
            .metrics
            .get_mut(index)
            .filter(|m| m.status == RunStatus::Running)?;
        metric.judge_totals = Some(totals);
        let mut m = Measurement {
            at: now,
            template: metric.template.clone(),
            metric: metric.spec.name.to_string(),
            phase: MeasurementPhase::Error,
            value: None,
            baseline: None,
            samples: Some(interval.canary.requests),
            message: String::new(),
            dry_run: metric.spec.dry_run,
            evidence: None,
        };
        let verdict = match metric.judge.as_mut() {
            None => Err("the judge could not be built from its spec".to_string()),
            Some(judge) => judge
                .record(interval)
                .and_then(|()| judge.verdict(now.as_millis()))
                .map_err(|e| e.to_string()),
        };
        match verdict {
            Ok(v) => {
                m.phase = match v.outcome {
                    JudgeOutcome::Pass => MeasurementPhase::Successful,
                    JudgeOutcome::Fail => MeasurementPhase::Failed,
                    JudgeOutcome::Inconclusive => MeasurementPhase::Inconclusive,
                };
                m.value = v.evidence.canary.value.map(|x| x.to_string());
                m.baseline = v.evidence.baseline.value.map(|x| x.to_string());
                m.samples = Some(v.evidence.canary.requests);
                m.message = v.summary();
                m.evidence = serde_json::to_value(&v.evidence).ok();
                metric.status = match (v.outcome, v.timed_out) {
                    (JudgeOutcome::Pass, _) => RunStatus::Successful,
                    (JudgeOutcome::Fail, _) => RunStatus::Failed,
                    (JudgeOutcome::Inconclusive, true) => RunStatus::Inconclusive,
                    (JudgeOutcome::Inconclusive, false) => RunStatus::Running,
                };
                metric.taken += 1;
                match m.phase {
                    MeasurementPhase::Successful => metric.successful += 1,
                    MeasurementPhase::Failed => metric.failed += 1,
                    _ => metric.inconclusive += 1,
                }
            }
            Err(e) => {
                m.message = format!("judge error: {e}");
                metric.errors += 1;
                metric.consecutive_errors += 1;
                if metric.consecutive_errors > metric.spec.consecutive_error_limit {
                    metric.status = RunStatus::Error;
                }
            }
        }
        metric.next_at = now.plus(metric.spec.interval.unwrap_or(Duration::from_secs(10)));
        metric.last = Some(m.clone());
        Some(m)
    }

    /// The outcome of the whole run: failed or errored if any (non-dry-run) metric is, then
    /// inconclusive, then running, and successful when every metric is.
    pub fn status(&self) -> RunStatus {
        let live: Vec<RunStatus> = self
            .metrics
            .iter()
            .map(|m| {
                if m.spec.dry_run && m.status != RunStatus::Running {
                    RunStatus::Successful
                } else {
                    m.status
                }
            })
            .collect();
        for wanted in [
            RunStatus::Failed,
            RunStatus::Error,
            RunStatus::Inconclusive,
            RunStatus::Running,
        ] {
            if live.contains(&wanted) {
                return wanted;
            }
        }
        RunStatus::Successful
    }
}

impl MetricRun {
    fn apply(&mut self, m: &Measurement, now: Timestamp) {
        match m.phase {
            MeasurementPhase::Error => {
                self.errors += 1;
                self.consecutive_errors += 1;
            }
            phase => {
                self.consecutive_errors = 0;
                self.taken += 1;
                match phase {
                    MeasurementPhase::Successful => self.successful += 1,
                    MeasurementPhase::Failed => self.failed += 1,
                    _ => self.inconclusive += 1,
                }
            }
        }
        self.status = if self.failed > self.spec.failure_limit {
            RunStatus::Failed
        } else if self.consecutive_errors > self.spec.consecutive_error_limit {
            RunStatus::Error
        } else if self.inconclusive > self.spec.inconclusive_limit {
            RunStatus::Inconclusive
        } else if self.taken >= self.spec.count() {
            RunStatus::Successful
        } else {
            RunStatus::Running
        };
        self.next_at = now.plus(self.spec.interval.unwrap_or(Duration::from_secs(1)));
        self.last = Some(m.clone());
    }
}

fn judge(
    metric: &MetricRun,
    outcome: Result<Observation, MeasureError>,
    now: Timestamp,
) -> Measurement {
    let mut m = Measurement {
        at: now,
        template: metric.template.clone(),
        metric: metric.spec.name.to_string(),
        phase: MeasurementPhase::Error,
        value: None,
        baseline: None,
        samples: None,
        message: String::new(),
        dry_run: metric.spec.dry_run,
        evidence: None,
    };
    let obs = match outcome {
        Ok(obs) => obs,
        Err(MeasureError::NoData { reason }) => {
            m.phase = MeasurementPhase::Inconclusive;
            m.message = format!("no data: {reason}");
            return m;
        }
        Err(e) => {
            m.message = e.to_string();
            return m;
        }
    };
    m.value = Some(obs.result.to_string());
    m.baseline = obs.baseline.as_ref().map(ToString::to_string);
    m.samples = obs.samples;
    let eval = |c: &switchyard_core::Condition| c.evaluate(&obs.result, obs.baseline.as_ref());
    let failure = metric.spec.failure_condition.as_ref().map(|c| (c, eval(c)));
    let success = metric.spec.success_condition.as_ref().map(|c| (c, eval(c)));
    let (phase, message) = match (failure, success) {
        (Some((c, Err(e))), _) | (_, Some((c, Err(e)))) => (
            MeasurementPhase::Error,
            format!("`{c}` could not be evaluated: {e}"),
        ),
        (Some((c, Ok(true))), _) => (
            MeasurementPhase::Failed,
            format!("failure condition `{c}` holds"),
        ),
        (_, Some((c, Ok(true)))) => (
            MeasurementPhase::Successful,
            format!("success condition `{c}` holds"),
        ),
        (None, Some((c, Ok(false)))) => (
            MeasurementPhase::Failed,
            format!("success condition `{c}` does not hold"),
        ),
        (Some((c, Ok(false))), None) => (
            MeasurementPhase::Successful,
            format!("failure condition `{c}` does not hold"),
        ),
        (Some(_), Some((c, Ok(false)))) => (
            MeasurementPhase::Inconclusive,
            format!("neither condition holds (`{c}` is false)"),
        ),
        (None, None) => (
            MeasurementPhase::Error,
            "the metric has no condition".to_string(),
        ),
    };
    m.phase = phase;
    m.message = message;
    m
}

#[cfg(test)]
mod tests;
