//! `/ui/apps/{app}`: one app's rollout, live. The page is rendered whole; then
//! `/ui/apps/{app}/live` (server-sent events) sends the sections that changed, whenever the
//! rollout is written and every [`REFRESH`] for the traffic. Commands go to the JSON API with
//! the rollout and step the page shows, so a click on a stale page gets the API's 409.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use switchyard_analysis::Measurement;
use switchyard_api::RolloutView;
use switchyard_control::RolloutSnapshot;
use switchyard_control::auth::{Action, Scope};
use switchyard_control::controller::history::TrafficSample;
use switchyard_core::AppName;
use switchyard_core::ports::{AppRecord, EventKind, EventQuery, EventRecord};
use switchyard_rollout::machine::Phase;

use super::apps::{app_name, health};
use super::charts::{self, Line, Unit};
use super::page::{
    self, Nav, PageError, PageResult, escape, millis, percent, phase_badge, render, time,
};
use crate::auth::Caller;
use crate::router::ServerContext;

/// How often the live view re-reads traffic when nothing was written.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Events shown in the timeline.
const TIMELINE: u32 = 50;
/// Measurements read for the table and the judge's charts.
const MEASUREMENTS: u32 = 500;
/// Measurements shown in the table.
const MEASUREMENT_ROWS: usize = 30;

/// The live sections: id and heading.
const SECTIONS: [(&str, &str); 8] = [
    ("summary", "Rollout"),
    ("steps", "Steps"),
    ("actions", "Actions"),
    ("traffic", "Traffic now"),
    ("charts", "Traffic over the rollout"),
    ("judge", "The judge's evidence"),
    ("measurements", "Measurements"),
    ("timeline", "Timeline"),
];

/// Everything the sections show, read at one instant.
struct Live {
    app: AppName,
    record: AppRecord,
    snapshot: Option<RolloutSnapshot>,
    view: Option<RolloutView>,
    measurements: Vec<Measurement>,
    timeline: Vec<EventRecord>,
    history: Vec<TrafficSample>,
    frozen: Option<String>,
    may_operate: bool,
    may_deploy: bool,
}

async fn load(ctx: &ServerContext, app: &AppName, caller: &Caller) -> Result<Live, PageError> {
    let record = ctx
        .store
        .app(app)
        .await?
        .ok_or_else(|| page::not_found(format!("app `{app}` does not exist")))?;
    let snapshot = ctx.controller.latest(app).await?;
    let (measurements, timeline, history) = match &snapshot {
        Some(s) => {
            let measurements = ctx
                .store
                .events(&EventQuery {
                    app: Some(app.clone()),
                    rollout: Some(s.id),
                    kinds: vec![EventKind::Measurement],
                    limit: Some(MEASUREMENTS),
                    ..EventQuery::default()
                })
                .await?
                .into_iter()
                .filter_map(|e| serde_json::from_value::<Measurement>(e.event.data).ok())
                .collect();
            let timeline = ctx
                .store
                .events(&EventQuery {
                    app: Some(app.clone()),
                    rollout: Some(s.id),
                    kinds: EventKind::ALL
                        .into_iter()
                        .filter(|k| *k != EventKind::Measurement)
                        .collect(),
                    limit: Some(TIMELINE),
                    ..EventQuery::default()
                })
                .await?;
            (measurements, timeline, ctx.controller.traffic_history(s.id))
        }
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    Ok(Live {
        view: snapshot
            .as_ref()
            .map(|s| crate::view::rollout_view_in(ctx, s)),
        frozen: ctx.controller.frozen(app).await?,
        may_operate: caller.may(Action::Operate, Scope::App(app)).is_ok(),
        may_deploy: caller.may(Action::Deploy, Scope::App(app)).is_ok(),
        app: app.clone(),
        record,
        snapshot,
        measurements,
        timeline,
        history,
    })
}

/// `GET /ui/apps/{app}`.
pub async fn page(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
) -> PageResult {
    let app = app_name(&app)?;
    caller.may(Action::Read, Scope::App(&app))?;
    let live = load(&ctx, &app, &caller).await?;
    let name = escape(app.as_str());
    let record = &live.record;
    let mut about = Vec::new();
    if let Some(env) = record.manifest.metadata.environment() {
        about.push(format!("environment {}", escape(env)));
    }
    if let Some(listen) = record.manifest.spec.listen {
        about.push(format!("listens on {listen}"));
    }
    about.push(format!(
        "stable {}",
        record
            .stable
            .as_ref()
            .map_or_else(|| "none yet".into(), |s| escape(s.version.as_str()))
    ));
    let mut main = format!(
        "<p class=\"crumbs\"><a href=\"/ui/\">Apps</a> / {name}</p><h1>{name}</h1>\
         <p class=\"meta\">{}</p><div class=\"live\" data-live=\"/ui/apps/{name}/live\">",
        about.join(" · ")
    );
    for (id, title, html) in sections(&live) {
        let _ = write!(
            main,
            "<section class=\"panel panel-{id}\" aria-labelledby=\"h-{id}\"><h2 id=\"h-{id}\">{title}</h2>"
        );
        if id == "actions" && (live.may_operate || live.may_deploy) {
            main.push_str(
                "<p class=\"reason\"><label for=\"reason\">Reason</label> \
                 <input id=\"reason\" name=\"reason\" type=\"text\" autocomplete=\"off\" \
                 placeholder=\"why (recorded with an approval or an abort)\"></p>",
            );
        }
        let _ = write!(main, "<div id=\"s-{id}\">{html}</div></section>");
    }
    main.push_str("</div>");
    Ok(render(app.as_str(), Some(Nav::Apps), Some(&caller), &main))
}

/// `GET /ui/apps/{app}/live`: server-sent events named `sections`, each a JSON object from
/// element id (`s-summary`, ...) to its new HTML, with only what changed since the last one
/// (everything in the first). The stream ends when the session or the token does.
pub async fn live(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    let app = app_name(&app)?;
    caller.may(Action::Read, Scope::App(&app))?;
    load(&ctx, &app, &caller).await?;
    let mut ticker = tokio::time::interval(REFRESH);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let follow = Follow {
        changes: ctx.controller.changes(),
        shutdown: ctx.flags.shutdown().clone(),
        bearer: crate::auth::bearer(&headers).map(str::to_owned),
        session: super::session_cookie(&headers),
        ticker,
        sent: BTreeMap::new(),
        first: true,
        ctx,
        app,
        caller,
    };
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        let sections = follow.next().await?;
        let data = serde_json::Value::Object(
            sections
                .into_iter()
                .map(|(id, html)| (format!("s-{id}"), serde_json::Value::String(html)))
                .collect(),
        );
        let event = Event::default().event("sections").data(data.to_string());
        Some((Ok(event), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One viewer's live stream.
struct Follow {
    ctx: ServerContext,
    app: AppName,
    caller: Caller,
    /// What the viewer authenticated with, checked again before each render: a revoked token
    /// or an ended session ends the stream.
    bearer: Option<String>,
    session: Option<String>,
    changes: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio_util::sync::CancellationToken,
    ticker: tokio::time::Interval,
    sent: BTreeMap<&'static str, String>,
    first: bool,
}

impl Follow {
    /// The sections that changed, once some did; `None` when the stream ends.
    async fn next(&mut self) -> Option<Vec<(&'static str, String)>> {
        loop {
            if !self.first {
                tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    changed = self.changes.changed() => changed.ok()?,
                    _ = self.ticker.tick() => {}
                }
            }
            self.first = false;
            if let Some(tokens) = &self.ctx.security.tokens {
                match (&self.bearer, &self.session) {
                    (Some(token), _) => {
                        tokens.authenticate(token).ok()?;
                    }
                    (None, Some(id)) => {
                        self.ctx.security.sessions.principal(tokens, id).ok()?;
                    }
                    (None, None) => return None,
                }
            }
            let Ok(live) = load(&self.ctx, &self.app, &self.caller).await else {
                continue;
            };
            let changed: Vec<(&'static str, String)> = sections(&live)
                .into_iter()
                .filter(|(id, _, html)| self.sent.get(id) != Some(html))
                .map(|(id, _, html)| (id, html))
                .collect();
            if changed.is_empty() {
                continue;
            }
            for (id, html) in &changed {
                self.sent.insert(id, html.clone());
            }
            return Some(changed);
        }
    }
}

fn sections(live: &Live) -> Vec<(&'static str, &'static str, String)> {
    SECTIONS
        .into_iter()
        .map(|(id, title)| {
            let html = match id {
                "summary" => summary(live),
                "steps" => steps(live),
                "actions" => actions(live),
                "traffic" => traffic(live),
                "charts" => charts::traffic(&live.history),
                "judge" => judge(
                    &live.measurements,
                    live.view.as_ref().is_some_and(|v| v.active),
                ),
                "measurements" => measurements(&live.measurements, live.app.as_str()),
                _ => timeline(&live.timeline),
            };
            (id, title, html)
        })
        .collect()
}

fn summary(live: &Live) -> String {
    let mut out = String::new();
    if let Some(reason) = &live.frozen {
        let _ = write!(
            out,
            "<p class=\"banner\" role=\"alert\">Emergency stop: no rollout starts until it is \
             lifted (<code>switchyard unfreeze {}</code>). {}</p>",
            escape(live.app.as_str()),
            escape(reason)
        );
    }
    let (Some(s), Some(v)) = (&live.snapshot, &live.view) else {
        out.push_str("<p>No rollout yet: the next deploy starts one.</p>");
        return out;
    };
    let r = &s.rollout;
    let _ = write!(
        out,
        "<p class=\"headline\">{} <strong>{}</strong> replacing <strong>{}</strong> · rollout {} \
         · started {}</p>",
        phase_badge(&v.phase),
        escape(&v.version),
        escape(&v.stable_version),
        v.id,
        time(r.started_at)
    );
    if v.active {
        let stable = 100 - u32::from(v.weight);
        let _ = write!(
            out,
            "<div class=\"weights\" data-weight=\"{w}\"><p>Weights: {} <strong>{stable}%</strong> · \
             {} <strong>{w}%</strong></p><svg viewBox=\"0 0 100 4\" preserveAspectRatio=\"none\" \
             aria-hidden=\"true\"><rect width=\"100\" height=\"4\" fill=\"#0072b2\"/>\
             <rect x=\"{stable}\" width=\"{w}\" height=\"4\" fill=\"#e69f00\"/></svg></div>",
            escape(&v.stable_version),
            escape(&v.version),
            w = v.weight,
        );
    }
    if let Some(until) = r.phase.deadline() {
        let _ = write!(out, "<p>Waiting until {}.</p>", time(until));
    }
    if let Some(routes) = &v.routes {
        if v.active && routes.proxies > 0 {
            let _ = write!(
                out,
                "<p class=\"note\">Routes in force on {} of {} live prox{}.</p>",
                routes.applied,
                routes.proxies,
                if routes.proxies == 1 { "y" } else { "ies" }
            );
        }
        if let Some(cluster) = &routes.cluster {
            let _ = write!(out, "<p class=\"note\">{}</p>", escape(cluster));
        }
    }
    if let Some(reason) = &v.reason {
        let _ = write!(out, "<p class=\"reason-text\">{}</p>", escape(reason));
    }
    if v.phase == "RolledBack" {
        let _ = write!(
            out,
            "<p><a href=\"/ui/incidents/{}\">The incident report</a></p>",
            v.id
        );
    }
    if let Some(after) = v.decided_after_s {
        let _ = write!(
            out,
            "<p class=\"note\">Decided {after:.1} s after the canary's first request.</p>"
        );
    }
    out
}

fn steps(live: &Live) -> String {
    let Some(v) = &live.view else {
        return "<p class=\"note\">–</p>".into();
    };
    let mut out = String::from("<ol class=\"steps\">");
    for (i, step) in v.steps.iter().enumerate() {
        let (class, current) = match i.cmp(&v.step) {
            std::cmp::Ordering::Less => ("done", ""),
            std::cmp::Ordering::Equal if v.active => ("current", " aria-current=\"step\""),
            std::cmp::Ordering::Equal => ("todo", ""),
            std::cmp::Ordering::Greater => ("todo", ""),
        };
        let _ = write!(out, "<li class=\"{class}\"{current}>{}</li>", escape(step));
    }
    out.push_str("</ol>");
    out
}

/// The commands the caller's role allows in the rollout's phase, each carrying the rollout and
/// step shown.
fn actions(live: &Live) -> String {
    if !live.may_operate && !live.may_deploy {
        return "<p class=\"note\">Your role may not change rollouts.</p>".into();
    }
    let app = escape(live.app.as_str());
    let mut buttons = Vec::new();
    let (rollout, step) = match &live.snapshot {
        Some(s) if !s.rollout.phase.is_terminal() => {
            let phase = &s.rollout.phase;
            if live.may_operate {
                if matches!(phase, Phase::AwaitingApproval { .. }) {
                    buttons.push(("approve", "Approve", "primary"));
                }
                buttons.push(("promote", "Promote", "primary"));
                if matches!(phase, Phase::Paused { .. }) {
                    buttons.push(("resume", "Resume", ""));
                } else {
                    buttons.push(("pause", "Pause", ""));
                }
                buttons.push(("abort", "Abort", "danger"));
            }
            (s.id, s.rollout.step)
        }
        Some(s) => {
            if live.may_deploy {
                buttons.push(("undo", "Undo", ""));
            }
            (s.id, s.rollout.step)
        }
        None => return "<p class=\"note\">Nothing to act on until a rollout starts.</p>".into(),
    };
    if buttons.is_empty() {
        return "<p class=\"note\">No command applies now.</p>".into();
    }
    let mut out = format!(
        "<div class=\"buttons\" data-app=\"{app}\" data-rollout=\"{rollout}\" data-step=\"{step}\">"
    );
    for (command, label, class) in buttons {
        let url = if command == "undo" {
            format!("/api/v1/apps/{app}/undo")
        } else {
            format!("/api/v1/apps/{app}/rollout/{command}")
        };
        let _ = write!(
            out,
            "<button type=\"button\" class=\"{class}\" data-command=\"{command}\" data-url=\"{url}\">{label}</button>"
        );
    }
    out.push_str("</div>");
    out
}

fn traffic(live: &Live) -> String {
    let Some(v) = &live.view else {
        return "<p class=\"note\">–</p>".into();
    };
    let mut out = format!(
        "<div class=\"scroll\"><table><caption>over the last {:.0} s</caption><thead><tr>\
         <th scope=\"col\">Release</th><th scope=\"col\">Role</th><th scope=\"col\">Weight</th>\
         <th scope=\"col\">Instances</th><th scope=\"col\">Requests/s</th>\
         <th scope=\"col\">Errors</th><th scope=\"col\">p50</th><th scope=\"col\">p99</th>\
         </tr></thead><tbody>",
        v.traffic.first().map_or(10.0, |t| t.window_s)
    );
    for t in &v.traffic {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}%</td><td>{}</td><td>{:.1}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&t.version),
            escape(&t.role),
            t.weight,
            health(t.endpoints.iter().map(|e| e.health.as_str())),
            t.rps,
            percent(t.error_rate),
            millis(t.p50_ms),
            millis(t.p99_ms)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The judge's looks per metric: estimate, interval and boundary over time, and, while the
/// rollout is `active`, how far from a decision the last look was.
pub fn judge(measurements: &[Measurement], active: bool) -> String {
    let mut metrics: BTreeMap<(String, String), Vec<&Measurement>> = BTreeMap::new();
    for m in measurements.iter().filter(|m| m.evidence.is_some()) {
        metrics
            .entry((m.template.clone(), m.metric.clone()))
            .or_default()
            .push(m);
    }
    if metrics.is_empty() {
        return "<p class=\"note\">No statistical judge has looked yet.</p>".into();
    }
    let mut out = String::new();
    for ((template, metric), looks) in metrics {
        let mut band = Vec::new();
        let mut estimate = Vec::new();
        let mut boundary = Vec::new();
        for m in &looks {
            let Some(e) = &m.evidence else { continue };
            let t = m.at.as_millis() as f64;
            if let Some([lo, hi]) = pair(e.get("interval")) {
                band.push((t, lo, hi));
            }
            if let Some(v) = e.get("estimate").and_then(serde_json::Value::as_f64) {
                estimate.push((t, v));
            }
            if let Some(v) = e.get("boundary").and_then(serde_json::Value::as_f64) {
                boundary.push((t, v));
            }
        }
        let label = format!("{template}/{metric}: estimate, interval and boundary");
        let lines = [
            Line {
                name: "estimate (band: interval)".into(),
                points: estimate,
                dashed: false,
                colour: 0,
            },
            Line {
                name: "boundary".into(),
                points: boundary,
                dashed: true,
                colour: 5,
            },
        ];
        let _ = write!(
            out,
            "<figure><figcaption>{}/{}</figcaption>{}</figure>",
            escape(&template),
            escape(&metric),
            charts::over_time(&label, Unit::Number, &lines, Some(&band))
        );
        if let Some(last) = looks.last() {
            let evidence = last.evidence.as_ref();
            let needed = evidence
                .and_then(|e| e.get("needed_more"))
                .and_then(serde_json::Value::as_u64);
            let _ = write!(
                out,
                "<p><span class=\"verdict {}\">{:?}</span> {}</p>",
                format!("{:?}", last.phase).to_ascii_lowercase(),
                last.phase,
                escape(&last.message)
            );
            if let (Some(n), true) = (needed, active) {
                let _ = write!(
                    out,
                    "<p class=\"pending\">Not enough evidence yet: about {} more canary requests \
                     at the current effect and split.</p>",
                    switchyard_core::human::number(&n.to_string())
                );
            }
        }
    }
    out
}

fn pair(v: Option<&serde_json::Value>) -> Option<[f64; 2]> {
    let a = v?.as_array()?;
    Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?])
}

/// The latest measurements, newest first.
pub fn measurements(measurements: &[Measurement], app: &str) -> String {
    if measurements.is_empty() {
        return "<p class=\"note\">No measurement yet.</p>".into();
    }
    let mut out = String::from(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">At</th><th scope=\"col\">Metric</th>\
         <th scope=\"col\">Result</th><th scope=\"col\">Value</th><th scope=\"col\">Baseline</th>\
         <th scope=\"col\">Samples</th><th scope=\"col\">Why</th></tr></thead><tbody>",
    );
    for m in measurements.iter().rev().take(MEASUREMENT_ROWS) {
        let phase = format!("{:?}", m.phase);
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}/{}</td><td><span class=\"verdict {}\">{}</span>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"why\">{}</td></tr>",
            time(m.at),
            escape(&m.template),
            escape(&m.metric),
            phase.to_ascii_lowercase(),
            phase,
            if m.dry_run { " (dry run)" } else { "" },
            m.value.as_deref().map_or_else(|| "–".into(), shown_value),
            m.baseline
                .as_deref()
                .map_or_else(|| "–".into(), shown_value),
            m.samples.map_or_else(|| "–".into(), |n| n.to_string()),
            escape(&m.message)
        );
    }
    out.push_str("</tbody></table></div>");
    if measurements.len() > MEASUREMENT_ROWS {
        let _ = write!(
            out,
            "<p class=\"note\">The latest {MEASUREMENT_ROWS} of {}; all with <code>switchyard \
             analysis {}</code>.</p>",
            measurements.len(),
            escape(app)
        );
    }
    out
}

/// A measured value as people read it: numbers to four significant digits, escaped.
fn shown_value(text: &str) -> String {
    escape(&switchyard_core::human::number(text))
}

/// Events, newest first, with their actors.
pub fn timeline(events: &[EventRecord]) -> String {
    if events.is_empty() {
        return "<p class=\"note\">Nothing happened yet.</p>".into();
    }
    let mut out = String::from("<ol class=\"timeline\" reversed>");
    for e in events.iter().rev() {
        let source = e
            .event
            .source
            .as_deref()
            .map_or_else(String::new, |s| format!(" from {}", escape(s)));
        let _ = write!(
            out,
            "<li>{} <span class=\"kind\">{}</span> <span class=\"actor\">{}{source}</span>: {}</li>",
            time(e.event.at),
            e.event.kind.as_str(),
            escape(&e.event.actor),
            escape(&e.event.reason)
        );
    }
    out.push_str("</ol>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_values_are_shown_to_four_digits() {
        assert_eq!(shown_value("0.2457627118644068"), "0.2458");
        assert_eq!(shown_value("0"), "0");
        assert_eq!(shown_value("12.5"), "12.5");
        assert_eq!(shown_value("1234.567"), "1235");
        assert_eq!(shown_value("0.000123456"), "0.0001235");
        assert_eq!(shown_value("250000"), "250000");
        assert_eq!(shown_value("<b>"), "&lt;b&gt;");
    }
}
