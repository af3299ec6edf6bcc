//! The notification outbox: notifications rendered from the event log, kept until their
//! receiver took them (at least once), with their attempts and errors.

use serde::{Deserialize, Serialize};

use super::store::StoreError;
use crate::time::Timestamp;

/// A notification to queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotification {
    pub notifier: String,
    /// The event it tells of.
    pub event: i64,
    /// `rollout.rolled_back`, `pipeline.finished`, ...
    pub kind: String,
    /// Unique per notifier and event; sent with every attempt so that receivers drop repeats.
    pub key: String,
    /// `webhook`, `slack` or `cdevents`.
    pub sink: String,
    pub url: String,
    pub content_type: String,
    /// The exact body, rendered once: every attempt sends (and signs) the same bytes.
    pub body: String,
    /// The daemon's environment variable holding the webhook's HMAC key.
    pub secret_env: Option<String>,
}

/// A queued notification and how its delivery stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub id: i64,
    #[serde(flatten)]
    pub notification: NewNotification,
    /// `pending`, `delivered` or `failed` (given up).
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered {
        at: Timestamp,
    },
    /// Failed; tried again at `next`.
    Retry {
        next: Timestamp,
        error: String,
    },
    /// Failed for the last time.
    GaveUp {
        at: Timestamp,
        error: String,
    },
}

/// The outbox.
#[async_trait::async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// The last event rendered into the outbox; `None` before the first.
    ///
    /// # Errors
    /// Backend failures.
    async fn notification_cursor(&self) -> Result<Option<i64>, StoreError>;

    /// Queues `rows` and moves the cursor from `from` to `to`, in one transaction; `false`
    /// (and nothing written) when the cursor is no longer at `from`.
    ///
    /// # Errors
    /// Backend failures.
    async fn enqueue_notifications(
        &self,
        from: Option<i64>,
        to: i64,
        rows: &[NewNotification],
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Pending notifications due at `now`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Backend failures.
    async fn due_notifications(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Records the outcome of an attempt at notification `id`.
    ///
    /// # Errors
    /// Backend failures.
    async fn record_delivery(&self, id: i64, outcome: &Delivery) -> Result<(), StoreError>;

    /// The most recent notifications, newest first; only those of `status` when given.
    ///
    /// # Errors
    /// Backend failures.
    async fn notifications(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// How many notifications each notifier has, by status: `(notifier, status, count)`.
    ///
    /// # Errors
    /// Backend failures.
    async fn notification_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError>;
}
