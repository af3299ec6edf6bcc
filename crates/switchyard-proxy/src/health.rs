//! Active health checks: one task per instance, probing while the app's table asks for checks
//! and feeding results through [`Health`] thresholds into the instance's availability.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::endpoint::{Endpoint, Health};

/// Starts checking `endpoint` until it is removed or the app stops.
pub fn spawn(app: &Arc<AppState>, endpoint: Arc<Endpoint>) {
    let app2 = app.clone();
    app.tasks.spawn(async move {
        tokio::select! {
            () = check_loop(&app2, &endpoint) => {}
            () = endpoint.removed.cancelled() => {}
            () = app2.stop.cancelled() => {}
        }
    });
}

async fn check_loop(app: &AppState, endpoint: &Endpoint) {
    let mut changes = app.table_changed.subscribe();
    let mut health = Health::default();
    loop {
        let config = app.active.load().router.table().health_check.clone();
        let Some(hc) = config else {
            // Without checks the instance is trusted; wait for a table that asks for them.
            if !health.is_healthy() {
                health = Health::default();
                set(app, endpoint, true);
            }
            if changes.changed().await.is_err() {
                return;
            }
            continue;
        };
        let ok = app
            .upstream
            .load_full()
            .probe(endpoint, &hc.path, hc.timeout)
            .await;
        if let Some(now_healthy) = health.observe(ok, hc.healthy_threshold, hc.unhealthy_threshold)
        {
            tracing::info!(app = %app.app, endpoint = %endpoint.label, healthy = now_healthy, "health changed");
            set(app, endpoint, now_healthy);
        }
        tokio::time::sleep(hc.interval.max(Duration::from_millis(10))).await;
    }
}

fn set(app: &AppState, endpoint: &Endpoint, healthy: bool) {
    endpoint.set_healthy(healthy);
    app.telemetry
        .set_endpoint_healthy(&app.app, &endpoint.label, healthy);
}
