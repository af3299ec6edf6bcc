//! `/ui/incidents`: every automatic rollback; `/ui/incidents/{id}`: one, as its report shows it
//! (the same sections as the self-contained `GET /api/v1/incidents/{id}/report`): what decided
//! and why, the traffic the bad release took, the judge's evidence over time, each release's
//! traffic over the rollout, the measurements, the timeline, and what to look at next.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use switchyard_control::auth::{Action, Scope};
use switchyard_control::incidents::{self, Incident};
use switchyard_core::AppName;

use super::charts;
use super::page::{self, Nav, PageResult, escape, percent, render, time};
use super::rollout::{judge, measurements, timeline};
use crate::auth::Caller;
use crate::router::ServerContext;

/// `GET /ui/incidents`.
pub async fn list(State(ctx): State<ServerContext>, caller: Caller) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let all: Vec<_> = incidents::list(ctx.store.as_ref())
        .await?
        .into_iter()
        .filter(|i| caller.principal.sees(&i.app))
        .collect();
    let mut main = String::from(
        "<h1>Incidents</h1><p class=\"note\">Every release Switchyard rolled back by itself, newest first.</p>",
    );
    if all.is_empty() {
        main.push_str("<p class=\"empty\">No automatic rollback yet.</p>");
    } else {
        main.push_str(
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Incident</th>\
             <th scope=\"col\">App</th><th scope=\"col\">Release</th><th scope=\"col\">Decided</th>\
             <th scope=\"col\">By</th><th scope=\"col\">Why</th></tr></thead><tbody>",
        );
        for i in &all {
            let _ = write!(
                main,
                "<tr><th scope=\"row\"><a href=\"/ui/incidents/{id}\">#{id}</a></th><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td class=\"why\">{}</td></tr>",
                escape(&i.app),
                escape(&i.version),
                time(i.decided_at),
                escape(&i.decided_by),
                escape(&i.reason),
                id = i.id
            );
        }
        main.push_str("</tbody></table></div>");
    }
    Ok(render(
        "Incidents",
        Some(Nav::Incidents),
        Some(&caller),
        &main,
    ))
}

/// The incident of rollout `id`, as a page error when there is none or the caller may not see it.
pub async fn load(
    ctx: &ServerContext,
    caller: &Caller,
    id: i64,
) -> Result<Incident, crate::ApiError> {
    let incident = incidents::get(ctx.store.as_ref(), id)
        .await?
        .filter(|i| caller.principal.sees(&i.summary.app))
        .ok_or_else(|| {
            crate::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                format!("no incident {id}: rollout {id} was not rolled back by Switchyard"),
            )
        })?;
    let app = AppName::new(incident.summary.app.clone())
        .map_err(|e| crate::ApiError::bad_request(e.to_string()))?;
    caller.may(Action::Read, Scope::App(&app))?;
    Ok(incident)
}

/// `GET /ui/incidents/{id}`. An id that is no number names no incident: a 404 page, like any
/// other unknown id (not the API's JSON error for a malformed path).
pub async fn detail(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> PageResult {
    let id: i64 = id
        .parse()
        .map_err(|_| page::not_found(format!("incident `{id}` does not exist")))?;
    let incident = load(&ctx, &caller, id).await.map_err(page::PageError)?;
    let s = &incident.summary;
    let main = format!(
        "<p class=\"crumbs\"><a href=\"/ui/incidents\">Incidents</a> / #{id}</p>{}\
         <p class=\"links\"><a href=\"/ui/apps/{app}\">The app</a> · \
         <a href=\"/api/v1/incidents/{id}/report\">The report as one file</a></p>{}",
        heading(&incident),
        sections(&incident),
        app = escape(&s.app),
    );
    Ok(render(
        &format!("Incident {id}"),
        Some(Nav::Incidents),
        Some(&caller),
        &main,
    ))
}

fn heading(incident: &Incident) -> String {
    let s = &incident.summary;
    format!(
        "<h1>{} {} rolled back</h1><p class=\"meta\">replacing {} · rollout {} started {} · \
         rolled back {}{}</p>",
        escape(&s.app),
        escape(&s.version),
        escape(&incident.stable_version),
        s.id,
        time(incident.started_at),
        time(s.decided_at),
        incident
            .detected_after_s
            .map_or_else(String::new, |d| format!(
                ", {d:.1} s after the canary's first request"
            ))
    )
}

/// The report's sections (headings from `h2`).
pub fn sections(incident: &Incident) -> String {
    let s = &incident.summary;
    let mut out = format!(
        "<section class=\"panel\"><h2>What decided</h2><p><strong>{}</strong>: {}</p></section>",
        escape(&s.decided_by),
        escape(&s.reason)
    );
    out.push_str("<section class=\"panel\"><h2>Traffic the release took</h2>");
    match &incident.exposure {
        Some(e) => {
            let _ = write!(
                out,
                "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Release</th>\
                 <th scope=\"col\">Requests</th><th scope=\"col\">Errors</th>\
                 <th scope=\"col\">Error rate</th></tr></thead><tbody>"
            );
            for (role, r) in [("canary", &e.canary), ("stable", &e.stable)] {
                let rate = (r.requests > 0).then(|| r.errors as f64 / r.requests as f64);
                let _ = write!(
                    out,
                    "<tr><th scope=\"row\">{} ({role})</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&r.version),
                    r.requests,
                    r.errors,
                    percent(rate)
                );
            }
            let _ = write!(
                out,
                "</tbody></table></div><p class=\"note\">The canary's counts cover the rollout; \
                 the stable release's, its whole life so far.</p><p>Largest canary weight: {}%.{}</p>",
                e.max_weight,
                incident.sticky_share.map_or_else(
                    || " Routing was not sticky: any user may have met it.".into(),
                    |share| format!(
                        " Routing was sticky: about {} of users were served by {}.",
                        percent(Some(share)),
                        escape(&s.version)
                    )
                )
            );
        }
        None => out.push_str("<p class=\"note\">Not recorded for this rollback.</p>"),
    }
    out.push_str("</section>");
    let _ = write!(
        out,
        "<section class=\"panel\"><h2>The judge's evidence</h2>{}</section>\
         <section class=\"panel\"><h2>Traffic over the rollout</h2><div class=\"charts\">{}</div></section>\
         <section class=\"panel\"><h2>Measurements</h2>{}</section>\
         <section class=\"panel\"><h2>Timeline</h2>{}</section>\
         <section class=\"panel\"><h2>What to look at next</h2><ul><li>{}</li></ul></section>",
        judge(&incident.measurements, false),
        charts::traffic(&incident.traffic),
        measurements(&incident.measurements, &s.app),
        timeline(&incident.timeline),
        incident
            .next
            .iter()
            .map(|n| escape(n))
            .collect::<Vec<_>>()
            .join("</li><li>")
    );
    out
}

/// The self-contained report: one HTML file, inline CSS and SVG, no script.
pub fn report(incident: &Incident) -> String {
    let style = page::STYLESHEET.get_or_init(super::stylesheet);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Incident {} · {} {}</title><style>{style}</style></head><body><main>{}{}\
         <footer class=\"note\"><p>Written by Switchyard from its event log.</p></footer></main>\
         </body></html>\n",
        incident.summary.id,
        escape(&incident.summary.app),
        escape(&incident.summary.version),
        heading(incident),
        sections(incident)
    )
}
