//! The proxy's own telemetry as a metric provider (`provider: {builtin: {metric: error_rate}}`).

use std::sync::Arc;

use switchyard_core::expr::Value;
use switchyard_core::manifest::analysis::{BuiltinMetric, ProviderSpec, ReleaseRole};
use switchyard_core::{ReleaseMetrics, WindowStats};

use crate::provider::{MeasureError, MeasureRequest, MetricProvider, Observation};

/// Reads per-release windows from the data plane.
#[derive(Clone)]
pub struct BuiltinProvider {
    metrics: Arc<dyn ReleaseMetrics>,
}

impl std::fmt::Debug for BuiltinProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinProvider").finish_non_exhaustive()
    }
}

impl BuiltinProvider {
    pub fn new(metrics: Arc<dyn ReleaseMetrics>) -> Self {
        Self { metrics }
    }
}

/// The value of `metric` in `stats`; `None` when the window has no traffic to compute it from.
pub fn metric_value(metric: BuiltinMetric, stats: &WindowStats) -> Option<f64> {
    match metric {
        BuiltinMetric::ErrorRate => stats.error_rate(),
        BuiltinMetric::SuccessRate => stats.success_rate(),
        BuiltinMetric::LatencyP50 => stats.p50,
        BuiltinMetric::LatencyP95 => stats.p95,
        BuiltinMetric::LatencyP99 => stats.p99,
        BuiltinMetric::LatencyP999 => stats.p999,
        BuiltinMetric::LatencyMean => stats.mean,
        BuiltinMetric::Rps => Some(stats.rps()),
        BuiltinMetric::Requests => Some(stats.requests as f64),
    }
}

/// How long a measurement waits for proxies to report what happened until it was asked (they
/// report every second); a proxy that stays silent longer does not hold it up further.
const COMPLETE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl BuiltinProvider {
    /// Waits until the numbers include every request answered before now (proxies report
    /// periodically), for at most [`COMPLETE_WAIT`].
    async fn complete(&self) {
        let asked = std::time::Instant::now();
        let deadline = tokio::time::Instant::now() + COMPLETE_WAIT;
        while self.metrics.complete_until().is_some_and(|t| t < asked)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[async_trait::async_trait]
impl MetricProvider for BuiltinProvider {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Result<Observation, MeasureError> {
        let ProviderSpec::Builtin(spec) = request.provider else {
            return Err(MeasureError::Unsupported {
                provider: request.provider.kind(),
            });
        };
        let window = spec.window.unwrap_or(request.default_window);
        let app = request.app.as_str();
        let (subject, baseline) = match spec.release {
            ReleaseRole::Canary => (request.canary, request.stable),
            ReleaseRole::Stable => (request.stable, request.stable),
        };
        self.complete().await;
        let stats = self
            .metrics
            .window(app, subject.as_str(), window)
            .unwrap_or_default();
        let Some(value) = metric_value(spec.metric, &stats) else {
            return Err(MeasureError::NoData {
                reason: format!(
                    "release {subject} had no requests in the last {}",
                    switchyard_core::duration::format(window)
                ),
            });
        };
        let baseline = self
            .metrics
            .window(app, baseline.as_str(), window)
            .and_then(|s| metric_value(spec.metric, &s))
            .map(Value::Number);
        Ok(Observation {
            result: Value::Number(value),
            baseline,
            samples: Some(stats.requests),
        })
    }
}
