//! Traffic mirroring: a copy of the request goes to another release in the background; its
//! answer is read and thrown away. The real request never waits for it.
//!
//! Bodies are copied while they stream (see [`crate::tee`]), up to the mirror's
//! `max_body_bytes`: a body declared longer is not mirrored, a body of unknown length that
//! passes the cap has its copy abandoned; both are counted in
//! `switchyard_proxy_mirror_skipped_requests_total`. Upgrades are never mirrored.

use std::sync::Arc;

use http::header;
use http_body::Body;
use http_body_util::BodyExt;
use rand::rngs::SmallRng;

use crate::app::{ActiveRelease, AppState};
use crate::balancer;
use crate::body::{ProxyBody, Replayable, empty};
use crate::forward::RequestHead;
use crate::tee;
use crate::telemetry::names::{
    MIRROR_SKIP_BODY_TOO_LARGE, MIRROR_SKIP_NO_ENDPOINT, MIRROR_SKIP_UPGRADE,
};

/// Starts a copy of the request to `target` and returns the body to send to the real upstream
/// (the same body, or a tee of it that feeds the copy).
pub fn spawn(
    app: &Arc<AppState>,
    target: &ActiveRelease,
    cap: u64,
    head: &RequestHead,
    body: ProxyBody,
    rng: &mut SmallRng,
) -> ProxyBody {
    let stats = &target.stats;
    if head.headers.contains_key(header::UPGRADE) {
        stats.count_mirror_skipped(MIRROR_SKIP_UPGRADE);
        return body;
    }
    if declared_length(head).is_some_and(|n| n > cap) {
        stats.count_mirror_skipped(MIRROR_SKIP_BODY_TOO_LARGE);
        return body;
    }
    let Ok(endpoint) = balancer::pick(&target.endpoints, &[], tokio::time::Instant::now(), rng)
    else {
        stats.count_mirror_skipped(MIRROR_SKIP_NO_ENDPOINT);
        return body;
    };
    let (real, copy) = if body.is_end_stream() {
        (body, empty())
    } else {
        let (real, copy) = tee::tee(body, cap, stats.clone());
        (real.boxed_unsync(), copy.boxed_unsync())
    };
    stats.count_mirrored();
    let app2 = app.clone();
    let head = head.clone();
    let guard = endpoint.start_request();
    app.tasks.spawn(async move {
        let _guard = guard;
        let exchange = async {
            if let Ok(resp) = app2
                .upstream
                .load_full()
                .send(head, &endpoint, Replayable::owned(copy))
                .await
            {
                let _ = resp.into_body().collect().await;
            }
        };
        tokio::select! {
            () = exchange => {}
            () = app2.force.cancelled() => {}
        }
    });
    real
}

fn declared_length(head: &RequestHead) -> Option<u64> {
    head.headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
