//! `kind: Notifier`: where Switchyard tells people and systems what it did. A generic webhook
//! (JSON, signed with HMAC-SHA256, with an idempotency key), a Slack incoming webhook (a Block
//! Kit message), or CDEvents (CloudEvents over HTTP). Apps and pipelines name the notifiers of
//! their events; `events` filters what a notifier gets.

use serde::{Deserialize, Serialize};

use super::ObjectMeta;

/// A `Notifier` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notifier {
    pub metadata: ObjectMeta,
    pub spec: NotifierSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotifierSpec {
    /// A generic webhook: JSON with a signature header and an idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSink>,
    /// A Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackSink>,
    /// CDEvents, as CloudEvents in structured mode over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdevents: Option<CdEventsSink>,
    /// The notifications it gets (`rollout.rolled_back`, `pipeline.finished`, ...); every
    /// rollout and pipeline notification when empty. `flag.changed` and `experiment.stopped`
    /// come only to notifiers that name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationKind>,
    /// Where people open the dashboard (`https://switchyard.example`): the base of the links
    /// in notifications. The daemon's own API address when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<SinkUrl>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookSink {
    pub url: SinkUrl,
    /// The environment variable of the daemon that holds the HMAC-SHA256 key; unsigned when
    /// absent. The key never enters the manifest or the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlackSink {
    pub url: SinkUrl,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CdEventsSink {
    pub url: SinkUrl,
    /// The events' `source` (a URI reference); `/switchyard` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An absolute `http://` or `https://` URL with a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SinkUrl(String);

impl SinkUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SinkUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let url = url::Url::parse(&text).map_err(|e| {
            format!("expected an absolute URL such as `https://hooks.example/switchyard`, got `{text}` ({e})")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`{text}`: expected an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{text}`: the URL has no host"));
        }
        Ok(Self(text.trim_end_matches('/').to_owned()))
    }
}

impl From<SinkUrl> for String {
    fn from(url: SinkUrl) -> String {
        url.0
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    #[serde(rename = "rollout.started")]
    RolloutStarted,
    #[serde(rename = "rollout.step")]
    RolloutStep,
    #[serde(rename = "rollout.paused")]
    RolloutPaused,
    #[serde(rename = "rollout.awaiting_approval")]
    RolloutAwaitingApproval,
    #[serde(rename = "rollout.promoted")]
    RolloutPromoted,
    #[serde(rename = "rollout.rolled_back")]
    RolloutRolledBack,
    #[serde(rename = "rollout.aborted")]
    RolloutAborted,
    #[serde(rename = "rollout.failed")]
    RolloutFailed,
    #[serde(rename = "pipeline.started")]
    PipelineStarted,
    #[serde(rename = "pipeline.stage")]
    PipelineStage,
    #[serde(rename = "pipeline.awaiting_approval")]
    PipelineAwaitingApproval,
    #[serde(rename = "pipeline.finished")]
    PipelineFinished,
    #[serde(rename = "flag.changed")]
    FlagChanged,
    #[serde(rename = "experiment.stopped")]
    ExperimentStopped,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::RolloutStarted => "rollout.started",
            NotificationKind::RolloutStep => "rollout.step",
            NotificationKind::RolloutPaused => "rollout.paused",
            NotificationKind::RolloutAwaitingApproval => "rollout.awaiting_approval",
            NotificationKind::RolloutPromoted => "rollout.promoted",
            NotificationKind::RolloutRolledBack => "rollout.rolled_back",
            NotificationKind::RolloutAborted => "rollout.aborted",
            NotificationKind::RolloutFailed => "rollout.failed",
            NotificationKind::PipelineStarted => "pipeline.started",
            NotificationKind::PipelineStage => "pipeline.stage",
            NotificationKind::PipelineAwaitingApproval => "pipeline.awaiting_approval",
            NotificationKind::PipelineFinished => "pipeline.finished",
            NotificationKind::FlagChanged => "flag.changed",
            NotificationKind::ExperimentStopped => "experiment.stopped",
        }
    }

    /// Whether a notifier with no `events` filter gets it: every rollout and pipeline kind.
    pub fn by_default(self) -> bool {
        !matches!(
            self,
            NotificationKind::FlagChanged | NotificationKind::ExperimentStopped
        )
    }
}

/// Where a notifier sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Webhook,
    Slack,
    CdEvents,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::CdEvents => "cdevents",
        }
    }
}

impl NotifierSpec {
    /// The sink and its URL (the spec has exactly one, once checked).
    pub fn sink(&self) -> Option<(SinkKind, &SinkUrl)> {
        match (&self.webhook, &self.slack, &self.cdevents) {
            (Some(w), None, None) => Some((SinkKind::Webhook, &w.url)),
            (None, Some(s), None) => Some((SinkKind::Slack, &s.url)),
            (None, None, Some(c)) => Some((SinkKind::CdEvents, &c.url)),
            _ => None,
        }
    }

    /// Whether it gets notifications of `kind`.
    pub fn wants(&self, kind: NotificationKind) -> bool {
        if self.events.is_empty() {
            kind.by_default()
        } else {
            self.events.contains(&kind)
        }
    }

    /// The problem with this notifier's fields, as a field path and a message.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.sink().is_none() {
            return Err((
                "spec".into(),
                "a notifier needs exactly one of `webhook`, `slack` or `cdevents`".into(),
            ));
        }
        if let Some(env) = self.webhook.as_ref().and_then(|w| w.secret_env.as_deref()) {
            let ok = !env.is_empty()
                && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !env.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                return Err((
                    "spec.webhook.secretEnv".into(),
                    format!("`{env}` is not an environment variable name"),
                ));
            }
        }
        Ok(())
    }
}
