//! Traffic mirroring: a copy of the request head goes to another release in the background; its
//! answer is read and thrown away. The real request never waits for it.
//!
//! Only requests without a body are mirrored (see [`crate::route`]: the router offers requests
//! up to the mirror's body limit; bodies are not copied, so a request with a body is skipped).

use std::sync::Arc;

use http_body_util::BodyExt;
use rand::rngs::SmallRng;

use crate::app::{ActiveRelease, AppState};
use crate::balancer;
use crate::body::{Replayable, empty};
use crate::forward::RequestHead;

pub fn spawn(app: &Arc<AppState>, target: &ActiveRelease, head: &RequestHead, rng: &mut SmallRng) {
    let has_body = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0");
    if has_body || head.headers.contains_key(http::header::UPGRADE) {
        return;
    }
    let Ok(endpoint) = balancer::pick(&target.endpoints, &[], tokio::time::Instant::now(), rng)
    else {
        return;
    };
    target.stats.count_mirrored();
    let app2 = app.clone();
    let head = head.clone();
    let guard = endpoint.start_request();
    app.tasks.spawn(async move {
        let _guard = guard;
        let exchange = async {
            if let Ok(resp) = app2
                .upstream
                .send(&head, &endpoint, Replayable::new(empty()).0)
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
}
