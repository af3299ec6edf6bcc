//! `switchyard release` and `switchyard pipeline`: runs of pipelines and of single apps.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use switchyard_api::Client;

use crate::cli::{Output, PipelineCommand};

/// `release NAME VERSION [--watch]`.
pub async fn release(
    api: &Client,
    name: &str,
    version: &str,
    watch: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let run = api.release(name, version).await?;
    if watch {
        return follow(api, name, output).await;
    }
    show(&run, output)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs one `pipeline` subcommand.
pub async fn run(
    api: &Client,
    command: PipelineCommand,
    output: Output,
) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::Status { name, watch } => {
            if watch {
                return follow(api, &name, output).await;
            }
            show(&api.pipeline(&name).await?, output)?;
        }
        PipelineCommand::Runs { limit } => {
            let runs = api.pipeline_runs(limit).await?;
            if output == Output::Json {
                outln!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows = runs.as_array().map(Vec::as_slice).unwrap_or_default();
            if rows.is_empty() {
                outln!("no release yet");
            }
            for r in rows {
                outln!(
                    "{:>5}  {:<32} {:<16} {:<12} {}",
                    r["id"],
                    text(&r["subject"]),
                    text(&r["version"]),
                    text(&r["phase"]),
                    time(&r["startedAt"])
                );
            }
        }
        PipelineCommand::Approve {
            name,
            reason,
            stage,
        } => {
            let run = api
                .pipeline_decision(&name, "approve", &reason, stage.as_deref())
                .await?;
            show(&run, output)?;
        }
        PipelineCommand::OverrideWindow { name, reason } => {
            let run = api
                .pipeline_decision(&name, "override-window", &reason, None)
                .await?;
            show(&run, output)?;
        }
        PipelineCommand::Cancel { name, reason } => {
            let run = api
                .pipeline_decision(&name, "cancel", &reason, None)
                .await?;
            show(&run, output)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `notifications [--status S] [--limit N]`.
pub async fn notifications(
    api: &Client,
    status: Option<&str>,
    limit: Option<u32>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let outbox = api.notifications(status, limit).await?;
    if output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(&outbox)?);
        return Ok(ExitCode::SUCCESS);
    }
    let counts = outbox["counts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if counts.is_empty() {
        outln!("no notification yet");
        return Ok(ExitCode::SUCCESS);
    }
    for c in counts {
        outln!(
            "{:<24} {:<10} {}",
            text(&c["notifier"]),
            text(&c["status"]),
            c["count"]
        );
    }
    outln!();
    for n in outbox["notifications"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let mut line = format!(
            "{:>6}  {:<20} {:<26} {:<10} attempts {}",
            n["id"],
            text(&n["notifier"]),
            text(&n["kind"]),
            text(&n["status"]),
            n["attempts"]
        );
        if let Some(e) = n["last_error"].as_str() {
            line.push_str(&format!("  last error: {e}"));
            if text(&n["status"]) == "pending" {
                line.push_str(&format!(" (next attempt {})", text(&n["next_attempt_at"])));
            }
        }
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn show(run: &Value, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(run)?);
    } else {
        out!("{}", describe(run));
    }
    Ok(())
}

/// Prints the run each time it changes until it ends: the whole view on a terminal-less
/// stream too, one JSON document per change with `-o json`. Exit code 0 when it succeeded.
async fn follow(api: &Client, name: &str, output: Output) -> anyhow::Result<ExitCode> {
    let mut last = String::new();
    loop {
        let mut run = api.pipeline(name).await?;
        let phase = text(&run["phase"]).to_owned();
        // The view without its write time: a change is a change of what it says.
        if let Some(o) = run.as_object_mut() {
            o.remove("updatedAt");
        }
        let now = serde_json::to_string(&run)?;
        if now != last {
            show(&run, output)?;
            if output != Output::Json {
                outln!();
            }
            last = now;
        }
        match phase.as_str() {
            "Running" | "RollingBack" => tokio::time::sleep(Duration::from_millis(500)).await,
            "Succeeded" => return Ok(ExitCode::SUCCESS),
            _ => return Ok(ExitCode::from(1)),
        }
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The run as a few lines: its phase, each stage with what holds it, each target with its
/// rollout.
pub fn describe(run: &Value) -> String {
    let mut out = format!(
        "{} {}: {} (run {}, released by {})\n",
        text(&run["subject"]),
        text(&run["version"]),
        text(&run["phase"]),
        run["id"],
        text(&run["by"])
    );
    if let Some(why) = run["outcome"].as_str() {
        out.push_str(&format!("  {why}\n"));
    }
    for stage in run["stages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let name = text(&stage["spec"]["name"]);
        let mut line = format!("  stage {name:<16} {}", text(&stage["status"]));
        if let Some(w) = stage.get("waiting").filter(|w| !w.is_null()) {
            line.push_str(&format!(" - {}", waiting(w)));
        }
        if let Some(a) = stage.get("approval").filter(|a| !a.is_null()) {
            line.push_str(&format!(
                " (approved by {}: {})",
                text(&a["by"]),
                text(&a["reason"])
            ));
        }
        if let Some(o) = stage.get("windowOverride").filter(|o| !o.is_null()) {
            line.push_str(&format!(
                " (windows overridden by {}: {})",
                text(&o["by"]),
                text(&o["reason"])
            ));
        }
        out.push_str(&line);
        out.push('\n');
        let waves = stage["waves"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (w, wave) in waves.iter().enumerate() {
            for t in wave.as_array().map(Vec::as_slice).unwrap_or_default() {
                let wave_label = if waves.len() > 1 {
                    format!("wave {}", w + 1)
                } else {
                    String::new()
                };
                let mut line = format!(
                    "    {wave_label:<7}{:<20} {:<12}",
                    text(&t["app"]),
                    text(&t["status"])
                );
                if let Some(r) = t["rollout"].as_i64() {
                    line.push_str(&format!(" rollout {r}"));
                }
                if let Some(u) = t["undo"].as_i64() {
                    line.push_str(&format!(", undone by rollout {u}"));
                }
                if let Some(n) = t["note"].as_str() {
                    line.push_str(&format!(" ({n})"));
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

/// What a stage waits for, in words (as the daemon's `Waiting::describe`).
fn waiting(w: &Value) -> String {
    match text(&w["for"]) {
        "soak" => format!("soaking until {}", time(&w["until"])),
        "approval" => format!("awaiting approval (role {} or above)", text(&w["role"])),
        "window" => {
            let closed: Vec<String> = w["closed"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|c| format!("`{}` {}", text(&c["window"]), text(&c["why"])))
                .collect();
            match w["until"].as_u64() {
                Some(_) => format!(
                    "held by deployment window {} until {}",
                    closed.join(", "),
                    time(&w["until"])
                ),
                None => format!(
                    "held by deployment window {}, which does not open within a year",
                    closed.join(", ")
                ),
            }
        }
        other => other.to_owned(),
    }
}

fn time(v: &Value) -> String {
    v.as_u64()
        .map(|ms| switchyard_core::Timestamp(ms).to_rfc3339())
        .unwrap_or_default()
}
