//! `/api/v1/notifications`: the outbox, newest first: what was sent, what waits for a retry,
//! what was given up, with the last error of each.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use switchyard_control::auth::{Action, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

/// The notification routes, merged into the API's router.
pub fn routes() -> Router<ServerContext> {
    Router::new().route("/api/v1/notifications", get(list))
}

/// Query of `GET /api/v1/notifications`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `pending`, `delivered` or `failed`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// One notification as listed (its body left out).
#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: i64,
    pub notifier: String,
    pub kind: String,
    pub event: i64,
    pub key: String,
    pub sink: String,
    pub url: String,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// The outbox: counts by notifier and status, and the most recent notifications.
#[derive(Debug, Serialize)]
pub struct Outbox {
    pub counts: Vec<Count>,
    pub notifications: Vec<NotificationView>,
}

#[derive(Debug, Serialize)]
pub struct Count {
    pub notifier: String,
    pub status: String,
    pub count: u64,
}

/// `GET /api/v1/notifications`.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    tag = "notifications",
    params(
        ("status" = Option<String>, Query, description = "only `pending`, `delivered` or `failed` ones"),
        ("limit" = Option<u32>, Query, description = "at most this many (100 by default, at most 1000)")
    ),
    responses((status = 200, description = "counts by notifier and status, and the most recent notifications, newest first", body = Object), (status = "default", description = "an error, in the stable body", body = switchyard_api::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Outbox>, ApiError> {
    caller.may(Action::Read, Scope::Everything)?;
    if let Some(s) = query.status.as_deref() {
        if !matches!(s, "pending" | "delivered" | "failed") {
            return Err(ApiError::bad_request(format!(
                "`status` is `{s}`; use pending, delivered or failed"
            )));
        }
    }
    let limit = query.limit.unwrap_or(100).min(1000);
    let records = ctx
        .notifications
        .list(query.status.as_deref(), limit)
        .await?;
    let counts = ctx.notifications.counts().await?;
    Ok(Json(Outbox {
        counts: counts
            .into_iter()
            .map(|(notifier, status, count)| Count {
                notifier,
                status,
                count,
            })
            .collect(),
        notifications: records
            .into_iter()
            .map(|r| NotificationView {
                id: r.id,
                notifier: r.notification.notifier,
                kind: r.notification.kind,
                event: r.notification.event,
                key: r.notification.key,
                sink: r.notification.sink,
                url: r.notification.url,
                status: r.status,
                attempts: r.attempts,
                next_attempt_at: r.next_attempt_at.to_rfc3339(),
                last_error: r.last_error,
                created_at: r.created_at.to_rfc3339(),
                delivered_at: r.delivered_at.map(|t| t.to_rfc3339()),
            })
            .collect(),
    }))
}

/// The outbox's metric: notifications by notifier and status.
pub const NOTIFICATIONS: &str = "switchyard_notifications";

/// The outbox's counts in the Prometheus text format.
pub fn encode(counts: &[(String, String, u64)]) -> String {
    let mut out = format!(
        "# HELP {NOTIFICATIONS} Notifications in the outbox, by notifier and status (pending, delivered, failed: given up).\n\
         # TYPE {NOTIFICATIONS} gauge\n",
    );
    for (notifier, status, n) in counts {
        out.push_str(&format!(
            "{NOTIFICATIONS}{{notifier=\"{}\",status=\"{}\"}} {n}\n",
            crate::rollout_metrics::escape(notifier),
            status
        ));
    }
    out
}
