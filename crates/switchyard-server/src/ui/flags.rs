//! `/ui/flags?environment=`: every flag as one environment sees it (on or off, the rollout
//! percentage, variants, targeting in words), with a switch and a percentage field for the
//! roles that may edit flags there; `/ui/flags/{key}`: one flag and its audit trail, each entry
//! with what changed. Edits go to the JSON API, which changes the live set before it answers:
//! the next OFREP evaluation sees them.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use switchyard_control::auth::{Action, Scope};
use switchyard_control::flags::{FlagServiceError, edit};
use switchyard_core::ports::FlagAuditQuery;

use super::page::{self, Nav, PageResult, escape, render, time};
use crate::auth::Caller;
use crate::router::ServerContext;

/// Audit entries shown on a flag's page.
const AUDIT_ENTRIES: u32 = 50;
/// Changes listed per audit entry.
const CHANGES_SHOWN: usize = 20;

#[derive(Debug, Deserialize)]
pub struct FlagsParams {
    environment: Option<String>,
}

/// `GET /ui/flags?environment=`.
pub async fn list(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Query(params): Query<FlagsParams>,
) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let live = ctx.flags.live();
    let documents = edit::documents(&live.set).map_err(crate::error::ApiError::from)?;
    let mut environments: BTreeSet<String> = live
        .set
        .flags
        .iter()
        .flat_map(|f| f.environments.keys().cloned())
        .collect();
    let env = params
        .environment
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    if let Some(env) = &env {
        edit::check_environment(env).map_err(crate::error::ApiError::from)?;
        environments.insert(env.clone());
    }
    let may_edit = env
        .as_deref()
        .is_some_and(|e| caller.may(Action::EditFlags, Scope::Environment(e)).is_ok());
    let mut main = format!(
        "<h1>Flags</h1><form class=\"filters\" method=\"get\" action=\"/ui/flags\">\
         <label for=\"environment\">Environment</label>\
         <input id=\"environment\" name=\"environment\" list=\"environments\" value=\"{}\" \
         autocomplete=\"off\" placeholder=\"production\"><datalist id=\"environments\">",
        escape(env.as_deref().unwrap_or(""))
    );
    for e in &environments {
        let _ = write!(main, "<option value=\"{}\">", escape(e));
    }
    main.push_str("</datalist><button type=\"submit\">Show</button></form>");
    if env.is_none() {
        main.push_str(
            "<p class=\"note\">Every flag's own state. Choose an environment to see and switch \
             the flags as its SDK keys get them.</p>",
        );
    }
    if documents.flags.is_empty() {
        main.push_str(
            "<p class=\"empty\">No flags yet. Apply a set with <code>switchyard flags apply -f \
             flags.yaml</code>.</p>",
        );
        return Ok(render("Flags", Some(Nav::Flags), Some(&caller), &main));
    }
    let _ = write!(
        main,
        "<div class=\"scroll\"><table class=\"flags\"><caption>revision {}</caption><thead><tr>\
         <th scope=\"col\">Flag</th><th scope=\"col\">{}</th><th scope=\"col\">Rollout</th>\
         <th scope=\"col\">Variants</th><th scope=\"col\">Targeting</th></tr></thead><tbody>",
        live.revision,
        env.as_deref()
            .map_or_else(|| "State".into(), |e| format!("In {}", escape(e)))
    );
    for (key, flag) in &documents.flags {
        row(&mut main, key, flag, env.as_deref(), may_edit);
    }
    main.push_str("</tbody></table></div>");
    Ok(render("Flags", Some(Nav::Flags), Some(&caller), &main))
}

fn row(out: &mut String, key: &str, flag: &Value, env: Option<&str>, may_edit: bool) {
    let k = escape(key);
    let u = page::path_segment(key);
    let enabled = enabled_in(flag, env);
    let state = match (env, may_edit) {
        (Some(e), true) => {
            let e = escape(e);
            let (to, label) = if enabled {
                ("disable", "On")
            } else {
                ("enable", "Off")
            };
            format!(
                "<button type=\"button\" class=\"switch\" role=\"switch\" aria-checked=\"{enabled}\" \
                 aria-label=\"{k} in {e}\" data-flag-toggle=\"/api/v1/flags/{u}/environments/{e}/{to}\">\
                 {label}</button>"
            )
        }
        _ => format!(
            "<span class=\"badge {}\">{}</span>",
            if enabled { "ok" } else { "off" },
            if enabled { "on" } else { "off" }
        ),
    };
    let percent = rollout_percent(flag, env);
    let rollout = match (env, may_edit) {
        (Some(e), true) => format!(
            "<form class=\"inline\" data-flag-rollout=\"/api/v1/flags/{u}/rollout\" \
             data-environment=\"{e}\"><label class=\"visually-hidden\" for=\"r-{k}\">Rollout \
             percentage of {k} in {e}</label><input id=\"r-{k}\" type=\"number\" min=\"0\" \
             max=\"100\" step=\"any\" required value=\"{}\"><span>%</span>\
             <button type=\"submit\">Set</button></form>",
            percent.map_or_else(String::new, |p| number(&Value::from(p))),
            e = escape(e),
        ),
        _ => percent.map_or_else(|| "–".into(), |p| format!("{}%", number(&Value::from(p)))),
    };
    let _ = write!(
        out,
        "<tr><th scope=\"row\"><a href=\"/ui/flags/{u}\">{k}</a><br><span class=\"note\">{}</span></th>\
         <td>{state}</td><td>{rollout}</td><td>{}</td><td>{}</td></tr>",
        escape(flag.get("type").and_then(Value::as_str).unwrap_or("")),
        variants(flag),
        targeting(flag)
    );
}

/// Whether `flag` is on in `env` (its own kill switch without one).
fn enabled_in(flag: &Value, env: Option<&str>) -> bool {
    let own = flag.get("enabled").and_then(Value::as_bool).unwrap_or(true);
    env.and_then(|e| flag.pointer(&format!("/environments/{}/enabled", pointer_escape(e))))
        .and_then(Value::as_bool)
        .unwrap_or(own)
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// The percentage of the rollout rule `switchyard flags rollout` writes for `env` (or the one
/// for every environment).
fn rollout_percent(flag: &Value, env: Option<&str>) -> Option<f64> {
    let rules = flag.get("rules")?.as_array()?;
    let named = |name: &str| {
        rules
            .iter()
            .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|r| r.pointer("/rollout/percentage"))
            .and_then(Value::as_f64)
    };
    env.and_then(|e| named(&format!("rollout:{e}")))
        .or_else(|| named("rollout"))
}

fn variants(flag: &Value) -> String {
    let Some(variants) = flag.get("variants").and_then(Value::as_object) else {
        return "–".into();
    };
    let mut out = String::from("<ul class=\"chips\">");
    for (name, value) in variants {
        let _ = write!(
            out,
            "<li><strong>{}</strong> = <code>{}</code></li>",
            escape(name),
            escape(&value.to_string())
        );
    }
    out.push_str("</ul>");
    out
}

/// The flag's targeting in words: its rules in order, what it serves otherwise.
pub fn targeting(flag: &Value) -> String {
    if flag.get("semantics").and_then(Value::as_str) == Some("flagd") {
        return format!(
            "flagd targeting <code>{}</code>; otherwise {}",
            escape(
                &flag
                    .get("targeting")
                    .map_or_else(|| "null".into(), Value::to_string)
            ),
            variant_name(flag.get("defaultVariant"))
        );
    }
    let mut lines = Vec::new();
    for p in flag
        .get("prerequisites")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        lines.push(format!("requires {}", compact(p)));
    }
    let rules = flag.get("rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let name = rule
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(String::new, |n| format!("<em>{}</em>: ", escape(n)));
        let when = rule
            .get("when")
            .map_or_else(|| "everyone".into(), condition);
        let rollout = rule
            .get("rollout")
            .map_or_else(String::new, |r| format!(", {}", rollout_words(r)));
        let serve = rule
            .get("serve")
            .or_else(|| flag.get("serve"))
            .map_or_else(|| variant_name(flag.get("defaultVariant")), serve_words);
        lines.push(format!("{}. {name}if {when}{rollout} → {serve}", i + 1));
    }
    let fallback = if rules.is_none_or(Vec::is_empty) {
        flag.get("serve")
            .map_or_else(|| variant_name(flag.get("defaultVariant")), serve_words)
    } else {
        variant_name(flag.get("defaultVariant"))
    };
    lines.push(format!(
        "{} {fallback}",
        if lines.is_empty() {
            "serves"
        } else {
            "otherwise"
        }
    ));
    if let Some(off) = flag.get("offVariant") {
        lines.push(format!("when off: {}", variant_name(Some(off))));
    }
    format!(
        "<ul class=\"rules\"><li>{}</li></ul>",
        lines.join("</li><li>")
    )
}

fn variant_name(v: Option<&Value>) -> String {
    match v.and_then(Value::as_str) {
        Some(name) => format!("<strong>{}</strong>", escape(name)),
        None => "the caller's default".into(),
    }
}

fn serve_words(serve: &Value) -> String {
    if let Some(v) = serve.get("variant") {
        return variant_name(Some(v));
    }
    if let Some(split) = serve.get("split") {
        let arms: Vec<String> = split
            .get("variants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{} {}",
                    variant_name(a.get("variant")),
                    a.get("weight").map_or_else(String::new, Value::to_string)
                )
            })
            .collect();
        return format!("split {}", arms.join(" / "));
    }
    compact(serve)
}

fn rollout_words(rollout: &Value) -> String {
    if let Some(p) = rollout.get("percentage") {
        return format!("{}% of them", number(p));
    }
    if let Some(r) = rollout.get("ramp") {
        return format!(
            "ramping from {}% to {}% between {} and {}",
            r.get("from").map_or_else(String::new, number),
            r.get("to").map_or_else(String::new, number),
            escape(r.get("start").and_then(Value::as_str).unwrap_or("?")),
            escape(r.get("end").and_then(Value::as_str).unwrap_or("?"))
        );
    }
    compact(rollout)
}

/// A condition in words: `country in fr, de and not (plan in free)`.
pub fn condition(c: &Value) -> String {
    let Some((kind, inner)) = c
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
    else {
        return compact(c);
    };
    let group = |items: &Value, joiner: &str, empty: &str| {
        let parts: Vec<String> = items
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let text = condition(item);
                if item.get("all").is_some() || item.get("any").is_some() {
                    format!("({text})")
                } else {
                    text
                }
            })
            .collect();
        if parts.is_empty() {
            empty.to_owned()
        } else {
            parts.join(joiner)
        }
    };
    match kind.as_str() {
        "all" => group(inner, " and ", "always"),
        "any" => group(inner, " or ", "never"),
        "not" => format!("not ({})", condition(inner)),
        "segment" => format!(
            "in segment <em>{}</em>",
            escape(inner.as_str().unwrap_or_default())
        ),
        "attribute" => {
            let values: Vec<String> = inner
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| escape(&v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect();
            format!(
                "<code>{}</code> {}{} {}",
                escape(inner.get("name").and_then(Value::as_str).unwrap_or("?")),
                escape(inner.get("op").and_then(Value::as_str).unwrap_or("?")),
                if inner.get("caseInsensitive").and_then(Value::as_bool) == Some(true) {
                    " (any case)"
                } else {
                    ""
                },
                values.join(", ")
            )
        }
        _ => compact(c),
    }
}

/// A JSON number as people write it: `25`, not `25.0`.
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => v.to_string(),
    }
}

fn compact(v: &Value) -> String {
    format!("<code>{}</code>", escape(&v.to_string()))
}

/// `GET /ui/flags/{key}`.
pub async fn detail(
    State(ctx): State<ServerContext>,
    caller: Caller,
    Path(key): Path<String>,
) -> PageResult {
    caller.may(Action::Read, Scope::Any)?;
    let live = ctx.flags.live();
    let documents = edit::documents(&live.set).map_err(crate::error::ApiError::from)?;
    let flag = documents
        .flags
        .get(&key)
        .ok_or_else(|| page::not_found(format!("flag `{key}` does not exist")))?;
    let entries = ctx
        .flags
        .store()
        .flag_audit(&FlagAuditQuery {
            key: Some(key.clone()),
            after: None,
            limit: Some(AUDIT_ENTRIES),
        })
        .await
        .map_err(FlagServiceError::from)
        .map_err(crate::error::ApiError::from)?;
    let k = escape(&key);
    let mut main = format!(
        "<p class=\"crumbs\"><a href=\"/ui/flags\">Flags</a> / {k}</p><h1>Flag <code>{k}</code></h1>\
         <p class=\"meta\">{}{}</p>",
        escape(flag.get("type").and_then(Value::as_str).unwrap_or("")),
        flag.get("description")
            .and_then(Value::as_str)
            .map_or_else(String::new, |d| format!(" · {}", escape(d)))
    );
    main.push_str("<section class=\"panel\"><h2>State</h2><ul>");
    let _ = write!(
        main,
        "<li>everywhere without an entry: {}</li>",
        if enabled_in(flag, None) { "on" } else { "off" }
    );
    for (env, state) in flag
        .get("environments")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let on = state
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let _ = write!(
            main,
            "<li><a href=\"/ui/flags?environment={e}\">{e}</a>: {}</li>",
            if on { "on" } else { "off" },
            e = escape(env)
        );
    }
    let _ = write!(
        main,
        "</ul></section><section class=\"panel\"><h2>Variants</h2>{}</section>\
         <section class=\"panel\"><h2>Targeting</h2>{}</section>\
         <section class=\"panel\"><h2>Audit trail</h2>",
        variants(flag),
        targeting(flag)
    );
    if entries.is_empty() {
        main.push_str("<p class=\"note\">No change recorded.</p>");
    } else {
        main.push_str("<ol class=\"timeline\" reversed>");
        for e in entries.iter().rev() {
            let changes = changes(e.before.as_ref(), e.after.as_ref());
            let _ = write!(
                main,
                "<li>{} <span class=\"actor\">{}</span>{}<ul class=\"changes\"><li>{}</li></ul></li>",
                time(e.at),
                escape(&e.actor),
                if e.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape(&e.reason))
                },
                changes.join("</li><li>")
            );
        }
        main.push_str("</ol>");
    }
    main.push_str("</section>");
    Ok(render(&key, Some(Nav::Flags), Some(&caller), &main))
}

/// What changed between two versions of a document, one line per changed field
/// (`environments.production.enabled: true → false`).
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    match (before, after) {
        (None, Some(_)) => return vec!["created".into()],
        (Some(_), None) => return vec!["deleted".into()],
        (None, None) => return Vec::new(),
        _ => {}
    }
    let mut found = Vec::new();
    walk(String::new(), before, after, &mut found);
    let total = found.len();
    let mut lines: Vec<String> = found
        .into_iter()
        .take(CHANGES_SHOWN)
        .map(|(path, a, b)| {
            let show = |v: Option<&Value>| v.map_or_else(|| "–".into(), |v| escape(&v.to_string()));
            format!(
                "<code>{}</code>: {} → {}",
                escape(if path.is_empty() { "(document)" } else { &path }),
                show(a),
                show(b)
            )
        })
        .collect();
    if total > CHANGES_SHOWN {
        lines.push(format!("and {} more", total - CHANGES_SHOWN));
    }
    if lines.is_empty() {
        lines.push("no difference".into());
    }
    lines
}

type Change<'a> = (String, Option<&'a Value>, Option<&'a Value>);

fn walk<'a>(path: String, a: Option<&'a Value>, b: Option<&'a Value>, out: &mut Vec<Change<'a>>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                walk(join(key), x.get(key), y.get(key), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (xa, yb)) in x.iter().zip(y).enumerate() {
                walk(format!("{path}[{i}]"), Some(xa), Some(yb), out);
            }
        }
        (a, b) if a != b => out.push((path, a, b)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_audit_entry_lists_each_changed_field() {
        let before = json!({"key": "f", "environments": {"production": {"enabled": true}}, "rules": [{"rollout": {"percentage": 10}}]});
        let after = json!({"key": "f", "environments": {"production": {"enabled": false}}, "rules": [{"rollout": {"percentage": 50}}]});
        assert_eq!(
            changes(Some(&before), Some(&after)),
            vec![
                "<code>environments.production.enabled</code>: true → false",
                "<code>rules[0].rollout.percentage</code>: 10 → 50"
            ]
        );
        assert_eq!(changes(None, Some(&after)), vec!["created"]);
        assert_eq!(changes(Some(&before), None), vec!["deleted"]);
        let grown = json!({"rules": [1, 2]});
        let shrunk = json!({"rules": [1]});
        assert_eq!(
            changes(Some(&grown), Some(&shrunk)),
            vec!["<code>rules</code>: [1,2] → [1]"]
        );
    }

    #[test]
    fn targeting_reads_as_words_and_escapes_what_it_shows() {
        let flag = json!({
            "key": "checkout", "type": "string",
            "variants": {"classic": "classic", "redesign": "redesign"},
            "defaultVariant": "classic",
            "rules": [
                {"name": "staff", "when": {"attribute": {"name": "email", "op": "endsWith", "values": ["@switchyard.dev"]}}, "serve": {"variant": "redesign"}},
                {"name": "rollout:production", "when": {"all": [{"segment": "europe"}, {"not": {"attribute": {"name": "plan", "op": "in", "values": ["<free>"]}}}]}, "rollout": {"percentage": 25}, "serve": {"split": {"variants": [{"variant": "classic", "weight": 50}, {"variant": "redesign", "weight": 50}]}}}
            ]
        });
        let text = targeting(&flag);
        assert!(text.contains("1. <em>staff</em>: if <code>email</code> endsWith @switchyard.dev → <strong>redesign</strong>"), "{text}");
        assert!(text.contains("if in segment <em>europe</em> and not (<code>plan</code> in &lt;free&gt;), 25% of them → split <strong>classic</strong> 50 / <strong>redesign</strong> 50"), "{text}");
        assert!(
            text.contains("otherwise <strong>classic</strong>"),
            "{text}"
        );
        assert_eq!(rollout_percent(&flag, Some("production")), Some(25.0));
        let float = json!({"percentage": 25.0});
        assert_eq!(rollout_words(&float), "25% of them");
        assert_eq!(rollout_words(&json!({"percentage": 12.5})), "12.5% of them");
        assert_eq!(rollout_percent(&flag, Some("staging")), None);
        let static_flag = json!({"key": "b", "variants": {"on": true}, "serve": {"variant": "on"}, "environments": {"prod/eu": {"enabled": false}}});
        assert!(targeting(&static_flag).contains("serves <strong>on</strong>"));
        assert!(!enabled_in(&static_flag, Some("prod/eu")));
        assert!(enabled_in(&static_flag, Some("staging")));
    }
}
