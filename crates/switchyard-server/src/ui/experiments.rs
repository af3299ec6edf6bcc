//! `/ui/experiments`: every experiment; `/ui/experiments/{key}`: its results as the report
//! draws them (recommendation, sample-ratio warning, exposure balance, interval plots per
//! metric, guardrails, lift over time, sample plan), a link to the self-contained report, and
//! Stop for the roles that may stop it.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use switchyard_control::auth::{Action, Scope};
use switchyard_core::manifest::experiment::SplitSpec;
use switchyard_experiments::port::ExperimentStatus;
use switchyard_experiments::report::render_sections;

use super::page::{Nav, PageResult, escape, render, time};
use crate::auth::Caller;
use crate::router::ServerContext;

/// `GET /ui/experiments`.
pub async fn list(State(ctx): State<ServerContext>, caller: Caller) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let live = ctx.experiments.live();
    let mut main = String::from("<h1>Experiments</h1>");
    if live.records.is_empty() {
        main.push_str(
            "<p class=\"empty\">No experiments yet. Apply one with <code>switchyard apply -f \
             experiments.yaml</code>.</p>",
        );
        return Ok(render(
            "Experiments",
            Some(Nav::Experiments),
            Some(&caller),
            &main,
        ));
    }
    main.push_str(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Experiment</th>\
         <th scope=\"col\">Split</th><th scope=\"col\">Variants</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Started</th></tr></thead><tbody>",
    );
    for (key, record) in &live.records {
        let key = escape(key);
        let split = match &record.manifest.spec.split {
            SplitSpec::Flag(_) => "flag".to_owned(),
            SplitSpec::Traffic(t) => format!("traffic of app {}", escape(t.app.as_str())),
        };
        let variants: Vec<String> = record
            .manifest
            .spec
            .variants
            .iter()
            .map(|v| escape(v.name.as_str()))
            .collect();
        let _ = write!(
            main,
            "<tr><th scope=\"row\"><a href=\"/ui/experiments/{key}\">{key}</a></th><td>{split}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            variants.join(", "),
            status(&record.status),
            time(record.started_at)
        );
    }
    main.push_str("</tbody></table></div>");
    Ok(render(
        "Experiments",
        Some(Nav::Experiments),
        Some(&caller),
        &main,
    ))
}

fn status(status: &ExperimentStatus) -> String {
    match status {
        ExperimentStatus::Running => "<span class=\"badge busy\">running</span>".into(),
        ExperimentStatus::Stopped { reason, actor, at } => format!(
            "<span class=\"badge done\">stopped</span> <span class=\"note\">{} by {}: {}</span>",
            time(*at),
            escape(actor),
            escape(reason)
        ),
    }
}

/// `GET /ui/experiments/{key}`.
pub async fn detail(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let record = ctx.experiments.record(&key)?;
    let (results, snapshots) = ctx.experiments.results_over_time(&key).await?;
    let may_stop = match switchyard_control::Manifests::traffic_app(&record.manifest) {
        Some(app) => caller.may(Action::StopExperiments, Scope::App(app)),
        None => caller.may(Action::StopExperiments, Scope::Any),
    }
    .is_ok();
    let k = escape(&key);
    let mut main = format!(
        "<p class=\"crumbs\"><a href=\"/ui/experiments\">Experiments</a> / {k}</p>\
         <h1>Experiment <code>{k}</code></h1><p class=\"meta\">{} · {}</p>\
         <p class=\"links\"><a href=\"/api/v1/experiments/{k}/report\">The HTML report</a> \
         (self-contained: save it, send it)</p>",
        status(&record.status),
        escape(&results.settings_line())
    );
    if may_stop && record.status == ExperimentStatus::Running {
        let _ = write!(
            main,
            "<div class=\"buttons\"><button type=\"button\" class=\"danger\" \
             data-stop-experiment=\"/api/v1/experiments/{k}/stop\">Stop the experiment</button> \
             <span class=\"note\">everyone gets control from then on</span></div>"
        );
    }
    main.push_str("<div class=\"report\">");
    main.push_str(&render_sections(&results, &snapshots));
    main.push_str("</div>");
    Ok(render(&key, Some(Nav::Experiments), Some(&caller), &main))
}
