//! `GET /api/v1/flags/stream`: Server-Sent Events telling clients to refetch.
//!
//! Notification only, in the format of OFREP's SSE proposal (ADR 0008): after every change an
//! event `message` with id = the new revision and data
//! `{"type": "refetchEvaluation", "revision": N, "lastModified": <unix seconds>}`. Changes that
//! follow each other quickly may be coalesced into one event (the latest revision). Comments
//! keep idle connections open; the stream ends when the daemon stops.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::json;

use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::FlagContext;

/// The event type clients must act on.
pub const REFETCH_EVENT: &str = "refetchEvaluation";

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[utoipa::path(
    get,
    path = "/api/v1/flags/stream",
    tag = "flags",
    responses((status = 200, description = "server-sent events (text/event-stream): refetch after every change"), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn stream(
    State(ctx): State<FlagContext>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.may(Action::Evaluate, Scope::Any)?;
    // Subscribed before the response starts: a client that has seen the headers sees every
    // later change.
    let changes = ctx.flags.subscribe();
    let shutdown = ctx.flags.shutdown().clone();
    let clock = ctx.clock;
    let events =
        futures_util::stream::unfold((changes, shutdown), move |(mut changes, shutdown)| {
            let clock = clock.clone();
            async move {
                tokio::select! {
                    () = shutdown.cancelled() => None,
                    changed = changes.changed() => {
                        changed.ok()?;
                        let revision = *changes.borrow_and_update();
                        let data = json!({
                            "type": REFETCH_EVENT,
                            "revision": revision,
                            "lastModified": clock.now().as_millis() / 1000,
                        });
                        let event = Event::default()
                            .event("message")
                            .id(revision.to_string())
                            .data(data.to_string());
                        Some((Ok(event), (changes, shutdown)))
                    }
                }
            }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
