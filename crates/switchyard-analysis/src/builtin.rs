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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use switchyard_core::ReleaseTotals;
    use switchyard_core::name::{AppName, Version};

    use super::*;

    /// Proxies whose reports arrive after `late` checks: until then the numbers lag behind
    /// (no requests); after, they hold the 7 requests answered before the measurement.
    struct Reporting {
        since: Instant,
        checks: AtomicU32,
        late: u32,
    }

    impl Reporting {
        fn reported(&self) -> bool {
            self.checks.load(Ordering::SeqCst) > self.late
        }
    }

    impl ReleaseMetrics for Reporting {
        fn window(&self, _: &str, _: &str, _: Duration) -> Option<WindowStats> {
            let requests = if self.reported() { 7 } else { 0 };
            Some(WindowStats {
                requests,
                ..WindowStats::default()
            })
        }

        fn latency_buckets(&self, _: &str, _: &str, _: Duration) -> Vec<(f64, u64)> {
            Vec::new()
        }

        fn totals(&self, _: &str, _: &str) -> Option<ReleaseTotals> {
            None
        }

        fn complete_until(&self) -> Option<Instant> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Some(if self.reported() {
                Instant::now()
            } else {
                self.since
            })
        }
    }

    async fn requests(metrics: Reporting) -> Value {
        let provider = BuiltinProvider::new(Arc::new(metrics));
        let spec: ProviderSpec =
            serde_json::from_value(serde_json::json!({"builtin": {"metric": "requests"}})).unwrap();
        let (app, canary, stable) = (
            AppName::new("shop").unwrap(),
            Version::new("v2").unwrap(),
            Version::new("v1").unwrap(),
        );
        let request = MeasureRequest {
            app: &app,
            canary: &canary,
            stable: &stable,
            provider: &spec,
            default_window: Duration::from_secs(60),
            namespace: "",
        };
        provider.measure(&request).await.unwrap().result
    }

    #[tokio::test(start_paused = true)]
    async fn a_measurement_waits_for_the_reports_of_what_happened_before_it() {
        let late = Reporting {
            since: Instant::now(),
            checks: AtomicU32::new(0),
            late: 3,
        };
        assert_eq!(requests(late).await, Value::Number(7.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_holds_a_measurement_up_for_a_bounded_time_only() {
        let silent = Reporting {
            since: Instant::now(),
            checks: AtomicU32::new(0),
            late: u32::MAX,
        };
        let started = tokio::time::Instant::now();
        assert_eq!(requests(silent).await, Value::Number(0.0));
        assert!(tokio::time::Instant::now() - started >= COMPLETE_WAIT);
    }
}
