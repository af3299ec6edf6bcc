//! Notifications as their receivers read them: the generic webhook's JSON, a Slack Block Kit
//! message, a CDEvent in a CloudEvent. Pure: a [`Notice`] in, a body out.

use serde_json::{Value, json};
use switchyard_core::manifest::notifier::{NotificationKind, SinkKind};
use switchyard_core::ports::EventKind;

/// CDEvents specification version of the events sent (schemas in `tests/cdevents/schemas`).
pub const CDEVENTS_VERSION: &str = "0.4.1";

/// One event, as a notification tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NotificationKind,
    pub event_kind: EventKind,
    /// The event's id in the log.
    pub event: i64,
    /// Unique per notifier and event.
    pub key: String,
    /// RFC 3339.
    pub at: String,
    pub app: Option<String>,
    pub environment: Option<String>,
    /// The version the event is about (the canary's, the release's, the run's).
    pub version: Option<String>,
    /// The release traffic went back to (rollbacks and aborts).
    pub stable: Option<String>,
    /// The rollout is an undo: back to the release the last one replaced.
    pub undo: bool,
    pub rollout: Option<i64>,
    /// `pipeline/NAME` or `app/NAME`, for pipeline events.
    pub subject: Option<String>,
    pub run: Option<i64>,
    pub stage: Option<String>,
    pub actor: String,
    pub reason: String,
    pub data: Value,
    /// Where to look: the dashboard page, the incident and its report.
    pub links: Vec<(&'static str, String)>,
}

impl Notice {
    /// A headline: `shop-us v3 rolled back`, `pipeline shop v3 finished`.
    pub fn title(&self) -> String {
        let what = match self.kind {
            NotificationKind::RolloutStarted => "rollout started",
            NotificationKind::RolloutStep => "rollout step",
            NotificationKind::RolloutPaused => "rollout paused",
            NotificationKind::RolloutAwaitingApproval => "awaiting approval",
            NotificationKind::RolloutPromoted => "promoted",
            NotificationKind::RolloutRolledBack => "rolled back",
            NotificationKind::RolloutAborted => "aborted",
            NotificationKind::RolloutFailed => "failed",
            NotificationKind::PipelineStarted => "release started",
            NotificationKind::PipelineStage => "stage",
            NotificationKind::PipelineAwaitingApproval => "stage awaiting approval",
            NotificationKind::PipelineFinished => "release finished",
            NotificationKind::FlagChanged => "flag changed",
            NotificationKind::ExperimentStopped => "experiment stopped",
        };
        let who = self
            .subject
            .clone()
            .or_else(|| self.app.clone())
            .unwrap_or_else(|| "switchyard".into());
        match &self.version {
            Some(v) => format!("{who} {v}: {what}"),
            None => format!("{who}: {what}"),
        }
    }

    /// The generic webhook's body.
    pub fn webhook(&self) -> Value {
        let links: serde_json::Map<String, Value> = self
            .links
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        json!({
            "id": self.key,
            "type": self.kind.as_str(),
            "event": {"id": self.event, "kind": self.event_kind.as_str()},
            "at": self.at,
            "title": self.title(),
            "app": self.app,
            "environment": self.environment,
            "version": self.version,
            "stable": self.stable,
            "rollout": self.rollout,
            "undo": self.undo,
            "pipeline": self.subject.as_ref().map(|s| json!({"subject": s, "run": self.run, "stage": self.stage})),
            "actor": self.actor,
            "reason": self.reason,
            "data": self.data,
            "links": links,
        })
    }

    /// A Slack incoming-webhook message: what, why and a link, in Block Kit.
    pub fn slack(&self) -> Value {
        let icon = match self.kind {
            NotificationKind::RolloutRolledBack
            | NotificationKind::RolloutFailed
            | NotificationKind::RolloutAborted => ":rotating_light:",
            NotificationKind::RolloutPromoted => ":white_check_mark:",
            NotificationKind::RolloutAwaitingApproval
            | NotificationKind::PipelineAwaitingApproval => ":raised_hand:",
            _ => ":information_source:",
        };
        let title = self.title();
        let mut fields = Vec::new();
        for (label, value) in [
            ("App", self.app.as_deref()),
            ("Environment", self.environment.as_deref()),
            ("Version", self.version.as_deref()),
            ("Back on", self.stable.as_deref()),
            ("Pipeline", self.subject.as_deref()),
            ("Stage", self.stage.as_deref()),
        ] {
            if let Some(v) = value {
                fields
                    .push(json!({"type": "mrkdwn", "text": format!("*{label}:*\n{}", escape(v))}));
            }
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": format!("{icon} {title}"), "emoji": true}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Why:* {}", escape(&self.reason))}}),
        ];
        if !fields.is_empty() {
            blocks.push(json!({"type": "section", "fields": fields}));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("by {} at {}", escape(&self.actor), self.at)}]}));
        if !self.links.is_empty() {
            let buttons: Vec<Value> = self
                .links
                .iter()
                .map(|(k, url)| {
                    json!({"type": "button", "text": {"type": "plain_text", "text": link_label(k)}, "url": url})
                })
                .collect();
            blocks.push(json!({"type": "actions", "elements": buttons}));
        }
        json!({"text": format!("{title}: {}", self.reason), "blocks": blocks})
    }

    /// The CDEvent of this notice in a CloudEvent (structured mode), or `None` when CDEvents
    /// has no event for it.
    pub fn cdevent(&self, source: &str) -> Option<Value> {
        let (kind, subject) = match (self.event_kind, self.kind) {
            (EventKind::Promoted, _) => {
                let kind = match (self.rollout, self.undo) {
                    (None, _) => "service.deployed",
                    (Some(_), true) => "service.rolledback",
                    (Some(_), false) => "service.upgraded",
                };
                (kind, self.service(self.version.as_deref(), source)?)
            }
            (EventKind::RolledBack | EventKind::Aborted, _) => (
                "service.rolledback",
                self.service(self.stable.as_deref(), source)?,
            ),
            (EventKind::PipelineStarted, _) => {
                ("pipelinerun.started", self.pipeline_run(source, None)?)
            }
            (EventKind::PipelineFinished, _) => {
                let outcome = match self.data.get("phase").and_then(Value::as_str) {
                    Some("Succeeded") => "success",
                    Some("Cancelled") => "cancel",
                    _ => "failure",
                };
                (
                    "pipelinerun.finished",
                    self.pipeline_run(source, Some(outcome))?,
                )
            }
            _ => return None,
        };
        let type_ = format!("dev.cdevents.{kind}.0.2.0");
        let cdevent = json!({
            "context": {
                "version": CDEVENTS_VERSION,
                "id": self.key,
                "source": source,
                "type": type_,
                "timestamp": self.at,
            },
            "subject": subject,
        });
        Some(json!({
            "specversion": "1.0",
            "id": self.key,
            "source": source,
            "type": type_,
            "time": self.at,
            "datacontenttype": "application/json",
            "data": cdevent,
        }))
    }

    fn service(&self, version: Option<&str>, source: &str) -> Option<Value> {
        let app = self.app.as_deref()?;
        let version = version?;
        Some(json!({
            "id": app,
            "source": source,
            "type": "service",
            "content": {
                "environment": {"id": self.environment.as_deref().unwrap_or("default")},
                "artifactId": format!("pkg:generic/{app}@{version}"),
            },
        }))
    }

    fn pipeline_run(&self, source: &str, outcome: Option<&str>) -> Option<Value> {
        let subject = self.subject.as_deref()?;
        let url = self
            .links
            .iter()
            .find(|(k, _)| *k == "pipeline")
            .map(|(_, u)| u.clone())
            .unwrap_or_default();
        let mut content = json!({"pipelineName": subject, "url": url});
        if let Some(outcome) = outcome {
            content["outcome"] = json!(outcome);
            if outcome != "success" {
                content["errors"] = json!(self.reason);
            }
        }
        Some(json!({
            "id": format!("{subject}/runs/{}", self.run?),
            "source": source,
            "type": "pipelineRun",
            "content": content,
        }))
    }
}

fn link_label(key: &str) -> &'static str {
    match key {
        "incident" => "Open the incident",
        "report" => "Incident report",
        "pipeline" => "The pipeline run",
        _ => "Open in Switchyard",
    }
}

/// Slack's mrkdwn escapes: `&`, `<`, `>`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The kind of notification an event makes, if it makes one.
pub fn kind_of(kind: EventKind, data: &Value) -> Option<NotificationKind> {
    use NotificationKind as N;
    Some(match kind {
        EventKind::RolloutStarted => N::RolloutStarted,
        EventKind::StepStarted
            if data.get("awaiting").and_then(Value::as_str) == Some("approval") =>
        {
            N::RolloutAwaitingApproval
        }
        EventKind::StepStarted => N::RolloutStep,
        EventKind::Paused => N::RolloutPaused,
        EventKind::Promoted => N::RolloutPromoted,
        EventKind::RolledBack => N::RolloutRolledBack,
        EventKind::Aborted => N::RolloutAborted,
        EventKind::Failed => N::RolloutFailed,
        EventKind::PipelineStarted => N::PipelineStarted,
        EventKind::StageStarted
        | EventKind::StageSucceeded
        | EventKind::StageFailed
        | EventKind::StageWaiting
        | EventKind::Approved => N::PipelineStage,
        EventKind::WindowOverridden if data.get("run").is_some() => N::PipelineStage,
        EventKind::AwaitingApproval => N::PipelineAwaitingApproval,
        EventKind::PipelineFinished => N::PipelineFinished,
        EventKind::FlagChanged => N::FlagChanged,
        EventKind::ExperimentStopped => N::ExperimentStopped,
        _ => return None,
    })
}

/// The body a sink sends, and its content type; `None` when the sink has no form for it.
pub fn body(
    notice: &Notice,
    sink: SinkKind,
    cdevents_source: Option<&str>,
) -> Option<(&'static str, Value)> {
    match sink {
        SinkKind::Webhook => Some(("application/json", notice.webhook())),
        SinkKind::Slack => Some(("application/json", notice.slack())),
        SinkKind::CdEvents => notice
            .cdevent(cdevents_source.unwrap_or("/switchyard"))
            .map(|v| ("application/cloudevents+json", v)),
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `key`: the webhook's signature header.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests;
