//! The metric providers against real servers and programs: a real Prometheus, a local HTTP
//! server, and `sh` scripts. Measurements go through [`ProviderRouter`], as in the daemon.

mod command;
mod prometheus;
mod web;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use switchyard_analysis::{
    MeasureError, MeasureRequest, MetricProvider, Observation, ProviderRouter,
};
use switchyard_core::manifest::analysis::ProviderSpec;
use switchyard_core::name::{AppName, Version};
use switchyard_core::{ReleaseMetrics, ReleaseTotals, WindowStats};
use switchyard_policy::Policy;

/// A data plane that has seen no traffic.
struct NoTraffic;

impl ReleaseMetrics for NoTraffic {
    fn window(&self, _: &str, _: &str, _: Duration) -> Option<WindowStats> {
        None
    }

    fn latency_buckets(&self, _: &str, _: &str, _: Duration) -> Vec<(f64, u64)> {
        Vec::new()
    }

    fn totals(&self, _: &str, _: &str) -> Option<ReleaseTotals> {
        None
    }
}

/// A provider spec written as the manifest's `provider` object.
fn spec(json: serde_json::Value) -> ProviderSpec {
    serde_json::from_value(json).unwrap()
}

/// The policy of these tests: `sh` may run; calls reach loopback.
fn policy() -> Arc<Policy> {
    let sh = Policy::parse(
        "run: [sh]\nreach: [127.0.0.0/8, localhost]\n",
        Path::new("p.yaml"),
    );
    Arc::new(sh.unwrap())
}

/// Measures app `shop` with canary `v2` and stable `v1`, under [`policy`].
async fn measure(spec: &ProviderSpec) -> Result<Observation, MeasureError> {
    measure_under(spec, policy()).await
}

/// Measures as [`measure`] does, under `policy`.
async fn measure_under(
    spec: &ProviderSpec,
    policy: Arc<Policy>,
) -> Result<Observation, MeasureError> {
    let router = ProviderRouter::new(Arc::new(NoTraffic), policy).unwrap();
    let (app, canary, stable) = (
        AppName::new("shop").unwrap(),
        Version::new("v2").unwrap(),
        Version::new("v1").unwrap(),
    );
    let request = MeasureRequest {
        app: &app,
        canary: &canary,
        stable: &stable,
        provider: spec,
        default_window: Duration::from_secs(60),
        namespace: "",
    };
    router.measure(&request).await
}

/// The reason of a provider error; any other outcome fails the test.
fn provider_error(outcome: Result<Observation, MeasureError>) -> String {
    match outcome {
        Err(MeasureError::Provider { reason }) => reason,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[tokio::test]
async fn builtin_metrics_still_route_to_the_data_plane() {
    let outcome = measure(&spec(
        serde_json::json!({"builtin": {"metric": "error_rate"}}),
    ))
    .await;
    assert!(
        matches!(&outcome, Err(MeasureError::NoData { reason }) if reason.contains("no requests")),
        "{outcome:?}"
    );
}
