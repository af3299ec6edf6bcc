//! Notifications: the event log, followed from a cursor, rendered into an outbox in the store
//! (the rows and the cursor's move in one transaction, so an event is queued once per
//! notifier, across restarts), then delivered at least once with backoff. Receivers drop
//! repeats by the idempotency key every attempt carries.
//!
//! Who gets what: the notifiers an app names get its rollouts' notifications; those a pipeline
//! names get its runs' (those an app names, its releases'); `flag.changed` and
//! `experiment.stopped` go to the notifiers whose `events` name them. `events` filters.

pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_core::manifest::Notifier;
use switchyard_core::ports::{
    AppRecord, Delivery, EventQuery, EventRecord, NewNotification, NotificationRecord,
    NotificationStore, StateStore, StoreError,
};
use switchyard_core::{AppName, Clock};

pub use render::Notice;

/// Delivers one notification over HTTP.
#[async_trait::async_trait]
pub trait NotificationSender: Send + Sync {
    /// POSTs `body` to `url` with `headers`.
    ///
    /// # Errors
    /// Unless the receiver answered 2xx: what it answered, or why it could not be reached.
    async fn send(&self, url: &str, headers: &[(String, String)], body: &str)
    -> Result<(), String>;
}

/// Attempts in flight at most (each records its outcome on a connection of the store's pool).
const IN_FLIGHT: usize = 16;

/// Attempts before a notification is given up.
pub const MAX_ATTEMPTS: u32 = 12;

/// Delay before attempt `n + 1` after `n` failed ones: 1 s, 2 s, 4 s ... at most 5 min.
pub fn backoff(failed: u32) -> Duration {
    let secs = 1u64 << failed.saturating_sub(1).min(9);
    Duration::from_secs(secs.min(300))
}

/// Reads the daemon's environment (the webhooks' HMAC keys).
pub type Secrets = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The notification service.
pub struct Notifications {
    store: Arc<dyn StateStore>,
    outbox: Arc<dyn NotificationStore>,
    sender: Arc<dyn NotificationSender>,
    clock: Arc<dyn Clock>,
    /// The base of links when a notifier names no `dashboardUrl`.
    link_base: String,
    secrets: Secrets,
    /// Notifications being attempted now, not to be started again.
    in_flight: std::sync::Mutex<std::collections::BTreeSet<i64>>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").finish_non_exhaustive()
    }
}

impl Notifications {
    pub fn new(
        store: Arc<dyn StateStore>,
        outbox: Arc<dyn NotificationStore>,
        sender: Arc<dyn NotificationSender>,
        clock: Arc<dyn Clock>,
        link_base: String,
        secrets: Secrets,
    ) -> Self {
        Self {
            store,
            outbox,
            sender,
            clock,
            link_base: link_base.trim_end_matches('/').to_owned(),
            secrets,
            in_flight: std::sync::Mutex::default(),
        }
    }

    /// Queues the notifications of the events logged since the last pass, then starts the
    /// attempts due (without waiting for them: a slow receiver holds up only its own
    /// notifications). Returns how many were queued and started.
    ///
    /// # Errors
    /// Store failures.
    pub async fn run_once(self: &Arc<Self>) -> Result<(usize, usize), StoreError> {
        let queued = self.dispatch().await?;
        let started = self.deliver().await?.len();
        Ok((queued, started))
    }

    /// Renders the events after the cursor into the outbox.
    ///
    /// # Errors
    /// Store failures.
    pub async fn dispatch(&self) -> Result<usize, StoreError> {
        let Some(from) = self.outbox.notification_cursor().await? else {
            // The first pass: history is not told again; what follows is.
            let last = self
                .store
                .events(&EventQuery {
                    limit: Some(1),
                    ..EventQuery::default()
                })
                .await?;
            let head = last.last().map_or(0, |e| e.id);
            self.outbox
                .enqueue_notifications(None, head, &[], self.clock.now())
                .await?;
            return Ok(0);
        };
        let events = self
            .store
            .events(&EventQuery {
                after: Some(from),
                ..EventQuery::default()
            })
            .await?;
        let Some(to) = events.last().map(|e| e.id) else {
            return Ok(0);
        };
        let rows = self.render(&events).await?;
        let moved = self
            .outbox
            .enqueue_notifications(Some(from), to, &rows, self.clock.now())
            .await?;
        Ok(if moved { rows.len() } else { 0 })
    }

    /// The outbox rows of `events`.
    async fn render(&self, events: &[EventRecord]) -> Result<Vec<NewNotification>, StoreError> {
        let notifiers = self.store.notifiers().await?;
        if notifiers.is_empty() {
            return Ok(Vec::new());
        }
        let apps: BTreeMap<AppName, AppRecord> = self
            .store
            .apps()
            .await?
            .into_iter()
            .map(|a| (a.manifest.metadata.name.clone(), a))
            .collect();
        let pipelines: BTreeMap<String, Vec<String>> = self
            .store
            .pipelines()
            .await?
            .into_iter()
            .map(|p| {
                let names = p.spec.notifiers.iter().map(ToString::to_string).collect();
                (p.metadata.name.to_string(), names)
            })
            .collect();
        let mut rows = Vec::new();
        for record in events {
            let event = &record.event;
            let Some(kind) = render::kind_of(event.kind, &event.data) else {
                continue;
            };
            let subject = event.data.get("subject").and_then(Value::as_str);
            let named: Vec<String> = if kind.by_default() {
                let app_named = |app: &str| {
                    AppName::new(app)
                        .ok()
                        .and_then(|a| apps.get(&a))
                        .map(|a| {
                            a.manifest
                                .spec
                                .notifiers
                                .iter()
                                .map(ToString::to_string)
                                .collect()
                        })
                        .unwrap_or_default()
                };
                match (subject, &event.app) {
                    (Some(s), _) if s.starts_with("pipeline/") => pipelines
                        .get(&s["pipeline/".len()..])
                        .cloned()
                        .unwrap_or_default(),
                    (Some(s), _) if s.starts_with("app/") => app_named(&s["app/".len()..]),
                    (_, Some(app)) => app_named(app.as_str()),
                    _ => Vec::new(),
                }
            } else {
                notifiers
                    .iter()
                    .filter(|n| n.spec.events.contains(&kind))
                    .map(|n| n.metadata.name.to_string())
                    .collect()
            };
            let mut notice: Option<Notice> = None;
            for notifier in notifiers
                .iter()
                .filter(|n| named.contains(&n.metadata.name.to_string()))
            {
                if !notifier.spec.wants(kind) {
                    continue;
                }
                let notice = match &notice {
                    Some(n) => n,
                    None => notice.insert(self.notice(record, kind, &apps).await?),
                };
                if let Some(row) = self.row(notifier, notice) {
                    rows.push(row);
                }
            }
        }
        Ok(rows)
    }

    /// The notice of one event (for notifier-independent fields; the key and links are set
    /// per notifier in [`Notifications::row`]).
    async fn notice(
        &self,
        record: &EventRecord,
        kind: switchyard_core::manifest::notifier::NotificationKind,
        apps: &BTreeMap<AppName, AppRecord>,
    ) -> Result<Notice, StoreError> {
        let event = &record.event;
        let data = &event.data;
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let (mut version, mut stable, mut undo) = (text("version"), None, false);
        if let Some(id) = event.rollout {
            if let Some(r) = self.store.rollout(id).await? {
                version = Some(r.version.to_string());
                undo = r.state.get("kind").and_then(Value::as_str) == Some("undo");
                stable = r
                    .state
                    .pointer("/stable/version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
        }
        let app = event.app.as_ref().map(ToString::to_string);
        let environment = event
            .app
            .as_ref()
            .and_then(|a| apps.get(a))
            .and_then(|a| a.manifest.metadata.environment())
            .map(str::to_owned);
        Ok(Notice {
            kind,
            event_kind: event.kind,
            event: record.id,
            key: String::new(),
            at: event.at.to_rfc3339(),
            app,
            environment,
            version,
            stable,
            undo,
            rollout: event.rollout,
            subject: text("subject"),
            run: data.get("run").and_then(Value::as_i64),
            stage: text("stage"),
            actor: event.actor.clone(),
            reason: event.reason.clone(),
            data: data.clone(),
            links: Vec::new(),
        })
    }

    /// The outbox row of `notice` for `notifier`, or `None` when its sink has no form for it.
    fn row(&self, notifier: &Notifier, notice: &Notice) -> Option<NewNotification> {
        let spec = &notifier.spec;
        let (sink, url) = spec.sink()?;
        let base = spec
            .dashboard_url
            .as_ref()
            .map_or(self.link_base.as_str(), |u| u.as_str());
        let mut notice = notice.clone();
        notice.key = format!("{}-{}", notifier.metadata.name, notice.event);
        notice.links = links(base, &notice);
        let source = spec.cdevents.as_ref().and_then(|c| c.source.as_deref());
        let (content_type, body) = render::body(&notice, sink, source)?;
        Some(NewNotification {
            notifier: notifier.metadata.name.to_string(),
            event: notice.event,
            kind: notice.kind.as_str().to_owned(),
            key: notice.key.clone(),
            sink: sink.as_str().to_owned(),
            url: url.as_str().to_owned(),
            content_type: content_type.to_owned(),
            body: body.to_string(),
            secret_env: spec.webhook.as_ref().and_then(|w| w.secret_env.clone()),
        })
    }

    /// Starts an attempt at every notification due now that is not being attempted already,
    /// each in its own task that records its outcome; returns the tasks (each answers whether
    /// its notification was delivered).
    ///
    /// # Errors
    /// Store failures.
    pub async fn deliver(
        self: &Arc<Self>,
    ) -> Result<Vec<tokio::task::JoinHandle<bool>>, StoreError> {
        let busy = lock(&self.in_flight).len();
        let due = self
            .outbox
            .due_notifications(
                self.clock.now(),
                u32::try_from(IN_FLIGHT + busy).unwrap_or(u32::MAX),
            )
            .await?;
        let fresh: Vec<NotificationRecord> = {
            let mut in_flight = lock(&self.in_flight);
            let room = IN_FLIGHT.saturating_sub(in_flight.len());
            due.into_iter()
                .filter(|n| in_flight.insert(n.id))
                .take(room)
                .collect()
        };
        Ok(fresh
            .into_iter()
            .map(|n| {
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    let outcome = this.attempt(&n).await;
                    let delivered = matches!(outcome, Delivery::Delivered { .. });
                    if !delivered {
                        tracing::warn!(notifier = %n.notification.notifier, key = %n.notification.key, attempts = n.attempts + 1, outcome = ?outcome, "notification not delivered");
                    }
                    if let Err(e) = this.outbox.record_delivery(n.id, &outcome).await {
                        // Attempted again once due: receivers drop the repeat by its key.
                        tracing::error!(key = %n.notification.key, error = %e, "a notification's delivery could not be recorded");
                    }
                    lock(&this.in_flight).remove(&n.id);
                    delivered
                })
            })
            .collect())
    }

    async fn attempt(&self, n: &NotificationRecord) -> Delivery {
        let note = &n.notification;
        let mut headers = vec![
            ("content-type".to_owned(), note.content_type.clone()),
            ("idempotency-key".to_owned(), note.key.clone()),
            ("x-switchyard-event".to_owned(), note.kind.clone()),
        ];
        let failed = |error: String| {
            let now = self.clock.now();
            if n.attempts + 1 >= MAX_ATTEMPTS {
                Delivery::GaveUp { at: now, error }
            } else {
                Delivery::Retry {
                    next: now.plus(backoff(n.attempts + 1)),
                    error,
                }
            }
        };
        if let Some(env) = &note.secret_env {
            match (self.secrets)(env) {
                Some(key) => headers.push((
                    "x-switchyard-signature-256".to_owned(),
                    render::signature(key.as_bytes(), note.body.as_bytes()),
                )),
                None => {
                    return failed(format!(
                        "the signing key `{env}` is not set in the daemon's environment"
                    ));
                }
            }
        }
        match self.sender.send(&note.url, &headers, &note.body).await {
            Ok(()) => Delivery::Delivered {
                at: self.clock.now(),
            },
            Err(e) => failed(e),
        }
    }

    /// The most recent notifications, newest first (only `status` when given).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        self.outbox.notifications(status, limit).await
    }

    /// `(notifier, status, count)` of the whole outbox.
    ///
    /// # Errors
    /// Store failures.
    pub async fn counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.outbox.notification_counts().await
    }
}

/// The set of attempts in flight; a poisoned lock (a panicked attempt) is still a set.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The links of a notice under `base`: the app's dashboard page, the incident and its report
/// for an automatic rollback, the pipeline run.
fn links(base: &str, notice: &Notice) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // The incident first: it is what to open after an automatic rollback.
    if notice.event_kind == switchyard_core::ports::EventKind::RolledBack {
        if let Some(id) = notice.rollout {
            out.push(("incident", format!("{base}/ui/incidents/{id}")));
            out.push(("report", format!("{base}/api/v1/incidents/{id}/report")));
        }
    }
    if let Some(app) = &notice.app {
        out.push(("dashboard", format!("{base}/ui/apps/{}", encode(app))));
    }
    if let Some(subject) = &notice.subject {
        let name = subject.split_once('/').map_or(subject.as_str(), |(_, n)| n);
        out.push((
            "pipeline",
            format!("{base}/api/v1/pipelines/{}", encode(name)),
        ));
    }
    out
}

/// Names are letters, digits, `-`, `_` and `.`: nothing to escape in a path segment but what
/// a future name might bring.
fn encode(segment: &str) -> String {
    segment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.~".contains(c) {
                c.to_string()
            } else {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
