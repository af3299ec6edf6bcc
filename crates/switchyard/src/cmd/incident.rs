//! `switchyard incident`: automatic rollbacks and their reports.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use switchyard_api::Client;

use crate::cli::{IncidentCommand, Output};

/// Runs one `incident` subcommand.
pub async fn run(
    api: &Client,
    command: IncidentCommand,
    output: Output,
) -> anyhow::Result<ExitCode> {
    match command {
        IncidentCommand::List => {
            let list = api.incidents().await?;
            if output == Output::Json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
            if rows.is_empty() {
                outln!("no automatic rollback yet");
            }
            for i in rows {
                outln!(
                    "{:>6}  {:<24} {:<16} {:<26} {:<10} {}",
                    i["id"],
                    text(&i["app"]),
                    text(&i["version"]),
                    text(&i["decided_at"]),
                    text(&i["decided_by"]),
                    text(&i["reason"])
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        IncidentCommand::Show { id, out } => {
            if let Some(out) = out {
                let html = api.incident_report(id).await?;
                std::fs::write(&out, html)
                    .with_context(|| format!("while writing {}", out.display()))?;
                outln!("report of incident {id} written to {}", out.display());
                return Ok(ExitCode::SUCCESS);
            }
            let incident = api.incident(id).await?;
            if output == Output::Json {
                outln!("{}", serde_json::to_string_pretty(&incident)?);
                return Ok(ExitCode::SUCCESS);
            }
            out!("{}", describe(&incident));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// An incident in a few lines: what, why, the traffic taken, what to look at next.
fn describe(i: &Value) -> String {
    let mut out = format!(
        "incident {}: {} {} rolled back (replacing {})\n  decided by {} at {}: {}\n",
        i["id"],
        text(&i["app"]),
        text(&i["version"]),
        text(&i["stable_version"]),
        text(&i["decided_by"]),
        text(&i["decided_at"]),
        text(&i["reason"])
    );
    if let Some(after) = i["detected_after_s"].as_f64() {
        out.push_str(&format!(
            "  detected {after:.1} s after the canary's first request\n"
        ));
    }
    let e = &i["exposure"];
    if e.is_object() {
        for role in ["canary", "stable"] {
            out.push_str(&format!(
                "  {role} {}: {} requests, {} errors\n",
                text(&e[role]["version"]),
                e[role]["requests"],
                e[role]["errors"]
            ));
        }
        out.push_str(&format!("  largest canary weight {}%", e["max_weight"]));
        match i["sticky_share"].as_f64() {
            Some(share) => out.push_str(&format!(
                " (sticky: about {:.0}% of users)\n",
                share * 100.0
            )),
            None => out.push('\n'),
        }
    }
    out.push_str("next:\n");
    for n in i["next"].as_array().into_iter().flatten() {
        out.push_str(&format!("  - {}\n", text(n)));
    }
    out
}
