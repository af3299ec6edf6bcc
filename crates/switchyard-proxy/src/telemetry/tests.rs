use std::time::Duration;

use switchyard_core::ReleaseMetrics;

use super::*;

const WINDOW: Duration = Duration::from_secs(10);

fn has_series(t: &Telemetry, release: &str) -> bool {
    t.encode_prometheus()
        .contains(&format!("release=\"{release}\""))
}

#[tokio::test(start_paused = true)]
async fn removed_release_is_forgotten_once_its_window_is_empty() {
    let t = Telemetry::with_ring_seconds(10);
    let stable = t.release("shop", "stable");
    let canary = t.release("shop", "canary");
    tokio::time::advance(Duration::from_secs(3)).await;
    canary.record(500, Duration::from_millis(3), Some(REASON_CONNECT));
    canary.count_mirror_skipped(MIRROR_SKIP_BODY_TOO_LARGE);
    stable.record(200, Duration::from_millis(1), None);
    drop(canary);

    // Still answerable while its window holds data: the analysis engine may ask about the last
    // seconds of a release that was just rolled back.
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(
        t.window("shop", "canary", WINDOW).map(|w| w.requests),
        Some(1)
    );
    assert!(has_series(&t, "canary"));

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(t.tracked_releases(), 1);
    assert!(t.window("shop", "canary", WINDOW).is_none());
    assert!(!has_series(&t, "canary"), "{}", t.encode_prometheus());
    assert!(has_series(&t, "stable"));

    // A held release stays however long it has been idle.
    tokio::time::advance(Duration::from_secs(1000)).await;
    assert_eq!(
        t.window("shop", "stable", WINDOW).map(|w| w.requests),
        Some(0)
    );
    drop(stable);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_keeps_its_release() {
    let t = Telemetry::with_ring_seconds(10);
    let guard = t.release("shop", "canary").in_flight();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(t.tracked_releases(), 1);
    drop(guard);
    // Sweeps run at most once a second.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        t.tracked_releases(),
        0,
        "nothing recorded in the last window"
    );
}

#[tokio::test(start_paused = true)]
async fn memory_follows_live_releases_not_history() {
    let t = Telemetry::with_ring_seconds(10);
    let stable = t.release("shop", "stable");
    for i in 0..100 {
        let canary = t.release("shop", &format!("canary-{i}"));
        canary.record(200, Duration::from_millis(1), None);
        drop(canary);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(t.tracked_releases() <= 11, "{}", t.tracked_releases());
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(t.tracked_releases(), 1);
    drop(stable);
}
