//! `switchyard experiment`: experiments and event ingestion through the typed client.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use switchyard_api::Client;

use crate::cli::{ExperimentCommand, Output};

/// Runs one `experiment` subcommand.
pub async fn run(
    api: &Client,
    command: ExperimentCommand,
    output: Output,
) -> anyhow::Result<ExitCode> {
    match command {
        ExperimentCommand::List => {
            let list = api.experiments().await?;
            if output == Output::Json {
                return print_json(&list);
            }
            for e in list.as_array().into_iter().flatten() {
                let status = match e["status"].as_str() {
                    Some("stopped") => {
                        format!("stopped: {}", e["reason"].as_str().unwrap_or_default())
                    }
                    other => other.unwrap_or("?").to_string(),
                };
                let variants: Vec<&str> = e["variants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                outln!(
                    "{:<28} {:<8} {:<24} {status}",
                    e["key"].as_str().unwrap_or_default(),
                    e["split"].as_str().unwrap_or_default(),
                    variants.join(",")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ExperimentCommand::Get { key } => print_json(&api.experiment(&key).await?),
        ExperimentCommand::Results { key } => {
            if output == Output::Json {
                return print_json(&api.experiment_results(&key).await?);
            }
            out!("{}", api.experiment_results_text(&key).await?);
            Ok(ExitCode::SUCCESS)
        }
        ExperimentCommand::Report { key, out } => {
            let html = api.experiment_report(&key).await?;
            std::fs::write(&out, html)
                .with_context(|| format!("while writing {}", out.display()))?;
            outln!("report of {key} written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ExperimentCommand::Stop { key, reason } => {
            print_json(&api.stop_experiment(&key, reason.as_deref()).await?)
        }
        ExperimentCommand::Events { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("while reading {}", file.display()))?;
            let batch: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let answer = api.send_events(&batch).await?;
            print_json(&answer.report)?;
            Ok(if answer.status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn print_json(value: &Value) -> anyhow::Result<ExitCode> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(ExitCode::SUCCESS)
}
