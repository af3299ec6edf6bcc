//! Commands that talk to the daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use switchyard_api::{
    ApplyRequest, Client, ClientError, CommandRequest, DeployRequest, Expectation, ManifestFile,
};
use switchyard_core::{Clock, SystemClock, Timestamp, Version, human};

use crate::cli::{DeployArgs, Output, Precondition};
use crate::render;
use crate::render::live::{Kind, Live, Look};

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Turns an API error into a message; manifest problems are listed one per line.
fn explain(e: ClientError) -> anyhow::Error {
    if let ClientError::Api { body, .. } = &e {
        if body.error.code == "invalid_manifest" {
            return anyhow::anyhow!("invalid manifests:\n{}", body.error.message);
        }
    }
    anyhow::Error::new(e)
}

fn manifest_files(path: &Path) -> anyhow::Result<Vec<ManifestFile>> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("while reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        v.sort();
        if v.is_empty() {
            bail!(
                "{}: the directory holds no .yaml or .yml file",
                path.display()
            );
        }
        v
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|f| {
            let content = std::fs::read_to_string(&f)
                .with_context(|| format!("while reading {}", f.display()))?;
            Ok(ManifestFile {
                name: f.display().to_string(),
                content,
            })
        })
        .collect()
}

pub async fn apply(
    api: &Client,
    path: &Path,
    dry_run: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let request = ApplyRequest {
        files: manifest_files(path)?,
        dry_run,
    };
    let response = api.apply(&request).await.map_err(explain)?;
    if output == Output::Json {
        print_json(&response)?;
    } else {
        for r in &response.results {
            outln!("{} {} {}", r.kind, r.name, r.result);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn validate_offline(path: &Path) -> anyhow::Result<ExitCode> {
    match switchyard_core::manifest::load_dir(path) {
        Ok(set) => {
            for m in set.manifests() {
                outln!("{} {} valid", m.kind(), m.name());
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => bail!("invalid manifests:\n{errors}"),
    }
}

pub async fn get_apps(api: &Client, output: Output) -> anyhow::Result<ExitCode> {
    let apps = api.apps().await?;
    if output == Output::Json {
        print_json(&apps)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = SystemClock.now();
    let mut rows = vec![
        [
            "NAME", "STABLE", "ROLLOUT", "PHASE", "WEIGHT", "STEP", "AGE", "LISTEN",
        ]
        .map(str::to_owned),
    ];
    for a in apps {
        let stable = a.stable.unwrap_or_else(|| "-".into());
        let row = match a.rollout {
            // Weights as canary/stable; the step counted from 1, as in the rollout's events.
            Some(r) => [
                a.name,
                stable,
                r.version,
                r.phase,
                format!("{}/{}", r.weight, 100 - u16::from(r.weight.min(100))),
                format!("{}/{}", (r.step + 1).min(r.steps), r.steps),
                Timestamp::parse_rfc3339(&r.started_at)
                    .map_or("-".into(), |t| human::age(now.since(t))),
                a.listen,
            ],
            None => [
                a.name,
                stable,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                a.listen,
            ],
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        outln!("{}", cells.join("   ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn deploy(api: &Client, args: DeployArgs, output: Output) -> anyhow::Result<ExitCode> {
    let version = Version::new(args.version.clone())
        .map_err(|e| anyhow::anyhow!("--version `{}` {e}", args.version))?;
    let mut env = std::collections::BTreeMap::new();
    for pair in &args.env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--env `{pair}` must look like KEY=VALUE");
        };
        env.insert(k.to_string(), v.to_string());
    }
    let request = DeployRequest {
        version: Some(version),
        command: args.command,
        env,
        instances: args.instances,
        addresses: args.addresses,
    };
    let wait = args.wait;
    let response = api
        .deploy_overriding(&args.app, &request, args.override_window.as_deref())
        .await
        .map_err(explain)?;
    if output == Output::Json {
        print_json(&response)?;
    } else if let Some(r) = &response.rollout {
        outln!(
            "rollout {} of {} {} started",
            r.id,
            response.app,
            response.version
        );
        out!("{}", render::status_text(r, SystemClock.now()));
    } else {
        outln!(
            "{} {} is the first release and takes all traffic",
            response.app,
            response.version
        );
    }
    if wait && response.rollout.is_some() {
        return wait_for_end(api, &response.app, output).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows the app's rollout until it ends (as `rollout status --watch`); exit code 0 when it
/// succeeded, 1 when it was rolled back, aborted or failed.
pub async fn wait_for_end(api: &Client, app: &str, output: Output) -> anyhow::Result<ExitCode> {
    status(api, app, true, output).await
}

pub async fn status(
    api: &Client,
    app: &str,
    watch: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if !watch {
        let view = api.rollout(app).await?;
        if output == Output::Json {
            print_json(&view)?;
        } else {
            out!("{}", render::status_text(&view, SystemClock.now()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    follow(api, app, Kind::Status, output).await
}

/// `get rollout APP`: the rollout as a tree; `--watch` follows it as `rollout status --watch`.
pub async fn get_rollout(
    api: &Client,
    app: &str,
    watch: bool,
    output: Output,
) -> anyhow::Result<ExitCode> {
    if watch {
        return follow(api, app, Kind::Tree, output).await;
    }
    let view = api.rollout(app).await?;
    if output == Output::Json {
        print_json(&view)?;
    } else {
        let measurements = api.analysis(app).await?.measurements;
        let tree = render::tree::tree(&view, &measurements, SystemClock.now(), None);
        out!("{}", render::text(tree));
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows the app's rollout live until it ends (every refresh as a JSON line with `-o json`);
/// exit code 0 when it succeeded, 1 otherwise.
async fn follow(api: &Client, app: &str, kind: Kind, output: Output) -> anyhow::Result<ExitCode> {
    let json = output == Output::Json;
    let mut live = Live::new(kind, json);
    loop {
        let view = api.rollout(app).await?;
        if json {
            outln!("{}", serde_json::to_string(&view)?);
        }
        let measurements = if kind == Kind::Tree && !json {
            api.analysis(app).await?.measurements
        } else {
            Vec::new()
        };
        let active = view.active;
        let succeeded = view.phase == "Succeeded";
        live.show(Look {
            rollout: view,
            measurements,
        });
        if !active {
            live.close();
            return Ok(if succeeded {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A command request without options (who sends it is the token's principal).
pub fn request() -> CommandRequest {
    CommandRequest::default()
}

pub async fn command(
    api: &Client,
    app: &str,
    command: &str,
    mut request: CommandRequest,
    seen: &Precondition,
    output: Output,
) -> anyhow::Result<ExitCode> {
    request.expect = expectation(api, app, command, seen).await?;
    let view = api.command(app, command, &request).await?;
    if output == Output::Json {
        print_json(&view)?;
    } else {
        out!("{}", render::status_text(&view, SystemClock.now()));
    }
    Ok(ExitCode::SUCCESS)
}

/// The rollout (and step) the command is meant for; see [`Precondition`].
async fn expectation(
    api: &Client,
    app: &str,
    command: &str,
    seen: &Precondition,
) -> anyhow::Result<Option<Expectation>> {
    if seen.force {
        return Ok(None);
    }
    // The API counts steps from 0; people (and `--step`) from 1.
    let step = seen
        .step
        .map(|n| usize::try_from(n - 1))
        .transpose()
        .context("--step is too large")?;
    if let Some(rollout) = seen.rollout {
        return Ok(Some(Expectation { rollout, step }));
    }
    let current = match api.rollout(app).await {
        Ok(current) => current,
        // Nothing to be meant for: the daemon says what is missing.
        Err(ClientError::Api { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(Expectation {
        rollout: current.id,
        step: step.or((command != "abort").then_some(current.step)),
    }))
}

pub async fn history(
    api: &Client,
    app: &str,
    limit: Option<u32>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let list = api.events(app, None, limit).await?;
    if output == Output::Json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    for e in list.events {
        let ev = &e.event;
        outln!(
            "{:>5}  {}  {:<16} {:<12} {}",
            e.id,
            ev.at,
            ev.kind.as_str(),
            ev.actor,
            ev.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn app_action(
    api: &Client,
    app: &str,
    action: &str,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let response = api.app_action(app, action, &request()).await?;
    if output == Output::Json {
        print_json(&response)?;
    } else if let Some(r) = &response.rollout {
        outln!(
            "rollout {} of {} {} started",
            r.id,
            response.app,
            response.version
        );
        out!("{}", render::status_text(r, SystemClock.now()));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn freeze(
    api: &Client,
    app: &str,
    action: &str,
    reason: Option<String>,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let view = api
        .freeze(
            app,
            action,
            &CommandRequest {
                reason,
                ..request()
            },
        )
        .await?;
    if output == Output::Json {
        print_json(&view)?;
    } else if view.frozen {
        outln!("{app} is frozen: {}", view.reason.as_deref().unwrap_or(""));
        if let Some(r) = &view.rollout {
            out!("{}", render::status_text(r, SystemClock.now()));
        }
    } else {
        outln!("{app} is no longer frozen");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn analysis(api: &Client, app: &str, output: Output) -> anyhow::Result<ExitCode> {
    let list = api.analysis(app).await?;
    if output == Output::Json {
        print_json(&list)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = list.rollout else {
        outln!("{app} has had no rollout");
        return Ok(ExitCode::SUCCESS);
    };
    outln!("rollout {id}: {} measurements", list.measurements.len());
    outln!(
        "{:<26} {:<24} {:<13} {:>12} {:>12} {:>8}  CONDITION",
        "AT",
        "TEMPLATE/METRIC",
        "PHASE",
        "VALUE",
        "BASELINE",
        "SAMPLES"
    );
    for m in &list.measurements {
        let value = m.value.as_deref().map_or("-".to_string(), short);
        let baseline = m.baseline.as_deref().map_or("-".to_string(), short);
        let samples = m.samples.map_or("-".to_string(), |n| n.to_string());
        let dry = if m.dry_run { " (dry run)" } else { "" };
        outln!(
            "{:<26} {:<24} {:<13} {:>12} {:>12} {:>8}  {}{dry}",
            m.at,
            format!("{}/{}", m.template, m.metric),
            m.phase,
            value,
            baseline,
            samples,
            m.message
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Numbers to six significant digits; anything else as it is.
fn short(text: &str) -> String {
    text.parse::<f64>().map_or_else(
        |_| text.to_string(),
        |v| {
            format!("{v:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        },
    )
}
