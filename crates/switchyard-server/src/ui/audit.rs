//! `/ui/audit`: the event log, newest first, filtered by app, principal (the actor) and kind.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use serde::Deserialize;
use switchyard_control::auth::{Action, Scope};
use switchyard_core::ports::{EventKind, EventQuery};

use super::page::{Nav, PageResult, escape, render, time};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::router::ServerContext;

/// Events shown at once.
pub const PAGE: u32 = 200;

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    app: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
}

/// `GET /ui/audit?app=&actor=&kind=`.
pub async fn page(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(params): Query<AuditParams>,
) -> PageResult {
    let filled = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let app = filled(params.app);
    let actor = filled(params.actor);
    let kind = filled(params.kind);
    let app_name = app.as_deref().map(crate::handlers::app_name).transpose()?;
    match &app_name {
        Some(app) => caller.may(Action::Read, Scope::App(app))?,
        None => caller.may(Action::Read, Scope::Everything)?,
    }
    let kind = kind
        .as_deref()
        .map(|k| {
            EventKind::parse(k)
                .map_err(|k| ApiError::bad_request(format!("unknown event kind `{k}`")))
        })
        .transpose()?;
    let events = ctx
        .store
        .events(&EventQuery {
            app: app_name,
            actor: actor.clone(),
            kinds: kind.into_iter().collect(),
            limit: Some(PAGE),
            ..EventQuery::default()
        })
        .await?;
    let mut main =
        String::from("<h1>Audit</h1><form class=\"filters\" method=\"get\" action=\"/ui/audit\">");
    let _ = write!(
        main,
        "<label for=\"f-app\">App</label><input id=\"f-app\" name=\"app\" value=\"{}\">\
         <label for=\"f-actor\">Principal</label><input id=\"f-actor\" name=\"actor\" value=\"{}\">\
         <label for=\"f-kind\">Kind</label><select id=\"f-kind\" name=\"kind\">\
         <option value=\"\">every kind</option>",
        escape(app.as_deref().unwrap_or("")),
        escape(actor.as_deref().unwrap_or(""))
    );
    for k in EventKind::ALL {
        let selected = if kind == Some(k) { " selected" } else { "" };
        let _ = write!(
            main,
            "<option value=\"{0}\"{selected}>{0}</option>",
            k.as_str()
        );
    }
    main.push_str("</select><button type=\"submit\">Filter</button></form>");
    if events.is_empty() {
        main.push_str("<p class=\"empty\">No event matches.</p>");
    } else {
        let _ = write!(
            main,
            "<div class=\"scroll\"><table class=\"audit\"><caption>{}{} events, newest first\
             </caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">At</th>\
             <th scope=\"col\">Kind</th><th scope=\"col\">App</th><th scope=\"col\">Principal</th>\
             <th scope=\"col\">From</th><th scope=\"col\">What</th></tr></thead><tbody>",
            if events.len() as u32 == PAGE {
                "the latest "
            } else {
                ""
            },
            events.len()
        );
        for e in events.iter().rev() {
            let ev = &e.event;
            let _ = write!(
                main,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"why\">{}</td></tr>",
                e.id,
                time(ev.at),
                ev.kind.as_str(),
                ev.app
                    .as_ref()
                    .map_or_else(|| "–".into(), |a| escape(a.as_str())),
                escape(&ev.actor),
                ev.source.as_deref().map_or_else(|| "–".into(), escape),
                escape(&ev.reason)
            );
        }
        main.push_str("</tbody></table></div>");
    }
    Ok(render("Audit", Some(Nav::Audit), Some(&caller), &main))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_and_parses_back() {
        let names: std::collections::BTreeSet<&str> =
            EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Ok(k));
        }
    }
}
