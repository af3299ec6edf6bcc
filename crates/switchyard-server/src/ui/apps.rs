//! `/ui/`: every app the caller may see, with its stable release, the rollout in progress or
//! the last one (phase, step, weights), the health of each release's instances and the last
//! verdict; filtered by environment (the app's `environment` label).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use serde::Deserialize;
use switchyard_control::RolloutSnapshot;
use switchyard_control::auth::{Action, Scope};
use switchyard_core::AppName;
use switchyard_core::ports::AppRecord;

use super::page::{Nav, PageResult, escape, phase_badge, render};
use crate::auth::Caller;
use crate::router::ServerContext;

#[derive(Debug, Deserialize)]
pub struct AppsParams {
    environment: Option<String>,
}

/// `GET /ui/?environment=`.
pub async fn page(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(params): Query<AppsParams>,
) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let records: Vec<AppRecord> = ctx
        .store
        .apps()
        .await?
        .into_iter()
        .filter(|r| caller.principal.sees(r.manifest.metadata.name.as_str()))
        .collect();
    let environments: BTreeSet<&str> = records.iter().filter_map(environment).collect();
    let wanted = params.environment.as_deref().filter(|e| !e.is_empty());
    let latest = ctx.controller.latest_of_every_app().await?;
    let mut rows = String::new();
    let mut shown = 0;
    for record in records
        .iter()
        .filter(|r| wanted.is_none() || environment(r) == wanted)
    {
        row(
            &mut rows,
            &ctx,
            record,
            latest.get(&record.manifest.metadata.name),
        );
        shown += 1;
    }
    let mut main = String::from("<h1>Apps</h1>");
    filter(&mut main, &environments, wanted);
    if shown == 0 {
        main.push_str(
            "<p class=\"empty\">No apps yet. Apply a manifest with <code>switchyard apply -f \
             app.yaml</code>.</p>",
        );
    } else {
        let _ = write!(
            main,
            "<div class=\"scroll\"><table class=\"apps\"><caption>{shown} app{}{}</caption>\
             <thead><tr><th scope=\"col\">App</th><th scope=\"col\">Environment</th>\
             <th scope=\"col\">Stable</th><th scope=\"col\">Rollout</th><th scope=\"col\">Weights</th>\
             <th scope=\"col\">Instances</th><th scope=\"col\">Last verdict</th></tr></thead>\
             <tbody>{rows}</tbody></table></div>",
            if shown == 1 { "" } else { "s" },
            wanted.map_or_else(String::new, |e| format!(" in {}", escape(e)))
        );
    }
    Ok(render("Apps", Some(Nav::Apps), Some(&caller), &main))
}

fn environment(record: &AppRecord) -> Option<&str> {
    record.manifest.metadata.environment()
}

fn filter(out: &mut String, environments: &BTreeSet<&str>, wanted: Option<&str>) {
    if environments.is_empty() {
        return;
    }
    out.push_str(
        "<form class=\"filters\" method=\"get\" action=\"/ui/\"><label for=\"environment\">\
         Environment</label><select id=\"environment\" name=\"environment\">\
         <option value=\"\">every environment</option>",
    );
    for env in environments {
        let selected = if wanted == Some(*env) {
            " selected"
        } else {
            ""
        };
        let env = escape(env);
        let _ = write!(out, "<option value=\"{env}\"{selected}>{env}</option>");
    }
    out.push_str("</select><button type=\"submit\">Filter</button></form>");
}

fn row(
    out: &mut String,
    ctx: &ServerContext,
    record: &AppRecord,
    latest: Option<&RolloutSnapshot>,
) {
    let name = &record.manifest.metadata.name;
    let href = format!("/ui/apps/{}", escape(name.as_str()));
    let env = environment(record).map_or_else(|| "–".into(), escape);
    let stable = record
        .stable
        .as_ref()
        .map_or_else(|| "–".into(), |s| escape(s.version.as_str()));
    let (rollout, weights, verdict) = match latest {
        Some(s) => {
            let r = &s.rollout;
            let step = if r.phase.is_terminal() {
                String::new()
            } else {
                format!(
                    " · step {}/{}",
                    (r.step + 1).min(r.steps.len()),
                    r.steps.len()
                )
            };
            let weights = if r.phase.is_terminal() {
                "–".into()
            } else {
                format!(
                    "{} {}% · {} {}%",
                    escape(r.stable.version.as_str()),
                    100 - r.weight,
                    escape(r.canary.version.as_str()),
                    r.weight
                )
            };
            (
                format!(
                    "{} {}{step}",
                    phase_badge(r.phase.name()),
                    escape(r.canary.version.as_str())
                ),
                weights,
                last_verdict(s),
            )
        }
        None => ("–".into(), "–".into(), "–".into()),
    };
    let unhealthy = ctx.dataplane.unhealthy_endpoints(name);
    let mut releases: Vec<&switchyard_core::Version> =
        record.stable.iter().map(|s| &s.version).collect();
    if let Some(s) = latest.filter(|s| !s.rollout.phase.is_terminal()) {
        releases.push(&s.rollout.canary.version);
    }
    let instances: Vec<String> = releases
        .into_iter()
        .map(|v| {
            let endpoints = ctx.controller.endpoints(name, v);
            let states = endpoints
                .iter()
                .map(|e| crate::view::instance_health(e, unhealthy.as_ref()));
            format!("{}: {}", escape(v.as_str()), health(states))
        })
        .collect();
    let _ = write!(
        out,
        "<tr><th scope=\"row\"><a href=\"{href}\">{}</a></th><td>{env}</td><td>{stable}</td>\
         <td>{rollout}</td><td>{weights}</td><td>{}</td><td>{verdict}</td></tr>",
        escape(name.as_str()),
        if instances.is_empty() {
            "–".into()
        } else {
            instances.join("<br>")
        }
    );
}

/// Instances counted by health (`healthy`, `unhealthy`, `unknown`, as
/// [`crate::view::instance_health`] names them): `2 healthy`, `1 healthy, 1 unhealthy`,
/// `2 unknown`, or `none`.
pub fn health<'a>(states: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts = [0usize; 3];
    for state in states {
        match state {
            "healthy" => counts[0] += 1,
            "unhealthy" => counts[1] += 1,
            _ => counts[2] += 1,
        }
    }
    let parts: Vec<String> = [("good", "healthy"), ("bad", "unhealthy"), ("", "unknown")]
        .into_iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|((class, word), n)| {
            if class.is_empty() {
                format!("{n} {word}")
            } else {
                format!("<span class=\"{class}\">{n} {word}</span>")
            }
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The rollout's outcome once it ended; while it runs, the latest measurement of its analysis.
fn last_verdict(s: &RolloutSnapshot) -> String {
    let r = &s.rollout;
    if r.phase.is_terminal() {
        let reason = r.reason.as_deref().unwrap_or("");
        return format!(
            "{}<span class=\"note\">{}</span>",
            phase_badge(r.phase.name()),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" {}", escape(reason))
            }
        );
    }
    let last = r
        .analysis
        .iter()
        .chain(r.background.iter())
        .flat_map(|run| run.metrics.iter())
        .filter_map(|m| m.last.as_ref())
        .max_by_key(|m| m.at);
    match last {
        Some(m) => {
            let phase = serde_json::to_value(m.phase)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "<span class=\"verdict {}\">{}</span> <span class=\"note\">{}: {}</span>",
                escape(&phase.to_ascii_lowercase()),
                escape(&phase),
                escape(&m.metric),
                escape(&m.message)
            )
        }
        None => "–".into(),
    }
}

/// The app named in a path, as a page error when it is not a name.
pub fn app_name(name: &str) -> Result<AppName, super::page::PageError> {
    Ok(crate::handlers::app_name(name)?)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn health_counts_the_instances_a_proxy_avoids() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let none = BTreeSet::new();
        let one = BTreeSet::from([b]);
        let states = |set: Option<&BTreeSet<SocketAddr>>, endpoints: &[SocketAddr]| {
            health(
                endpoints
                    .iter()
                    .map(|e| crate::view::instance_health(e, set)),
            )
        };
        assert!(states(Some(&none), &[a, b]).contains("2 healthy"));
        let mixed = states(Some(&one), &[a, b]);
        assert!(
            mixed.contains("1 healthy") && mixed.contains("1 unhealthy"),
            "{mixed}"
        );
        assert_eq!(states(None, &[a]), "1 unknown");
        assert_eq!(states(Some(&none), &[]), "none");
    }
}
