//! `switchyard demo`: the whole story on one machine, with nothing to set up.
//!
//! A temporary data directory, the daemon in-process, the demo service as app `shop` (v1),
//! a load generator at a steady rate, then a canary of a healthy v2 (promoted) and of a broken
//! v3 (20% errors: rolled back by the rollback policy). Every step goes through the real API,
//! the real proxy and real child processes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use switchyard_api::{ApplyRequest, Client, DeployRequest, ManifestFile, RolloutView};
use switchyard_app::{Daemon, DaemonConfig};
use switchyard_core::{AppName, Version};
use tokio_util::sync::CancellationToken;

use crate::cli::DemoArgs;
use crate::render::live::{self, Kind, Live, Look};
use crate::render::wrap;

const APP: &str = "shop";

/// The demo's manifests; `{exe}` is this binary, `{p}`/`{i}`/`{n}` set pacing.
const MANIFEST: &str = r#"apiVersion: switchyard.dev/v1alpha1
kind: App
metadata: {name: shop}
spec:
  listen: 127.0.0.1:0
  runtime:
    process:
      command: ["{exe}", "demo-app", "--port", "{port}", "--version", "{version}"]
      instances: 2
  healthCheck: {path: /health, interval: 1s, timeout: 1s}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis: {templates: [judge]}
        - setWeight: 50
        - pause: {duration: {p}}
        - setWeight: 100
  rollbackPolicy:
    errorRate: {max: 0.05}
    window: 10s
    interval: 2s
    consecutiveFailures: 3
    minRequests: 20
---
apiVersion: switchyard.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
    - name: errors-vs-stable
      judge: {compare: error_rate, against: stable, margin: {m}, alpha: 0.01, maxDuration: {d}, onTimeout: pass}
      interval: 1s
"#;

#[derive(Debug, Serialize)]
struct Summary {
    rollouts: Vec<RolloutOutcome>,
    requests: u64,
    failed_requests: u64,
    duration_s: f64,
}

#[derive(Debug, Serialize)]
struct RolloutOutcome {
    version: String,
    outcome: String,
    reason: Option<String>,
    detected_after_s: Option<f64>,
    duration_s: f64,
    /// The rollback policy's last check.
    evidence: Option<switchyard_api::PolicyCheck>,
    /// The judge's last verdict in words, and its evidence (counts, estimates, interval,
    /// boundary, p-value).
    judge: Option<String>,
    judge_evidence: Option<serde_json::Value>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = DaemonConfig::new(&dir);
    config.api_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.supervisor = super::serve::supervisor();
    config.shutdown_grace = Duration::from_secs(1);
    // The demo's service is this very binary (`switchyard demo-app`): the one program it runs.
    let exe = std::env::current_exe().context("while locating this binary")?;
    config.policy =
        std::sync::Arc::new(switchyard_policy::Policy::default().allowing_program(&exe));
    // The data plane is its own process, as with `switchyard serve`.
    config.local_proxy = Some(exe);
    let daemon = Daemon::start(config).await?;
    let api = Client::with_token(
        format!("http://{}", daemon.api_addr()),
        daemon.admin_token(),
    );
    let result = story(&daemon, &api, &args).await;
    daemon.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut summary = result?;
    summary.duration_s = started.elapsed().as_secs_f64();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let ok = summary
        .rollouts
        .first()
        .is_some_and(|r| r.outcome == "promoted")
        && summary
            .rollouts
            .get(1)
            .is_some_and(|r| r.outcome == "rolled_back");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn story(daemon: &Daemon, api: &Client, args: &DemoArgs) -> anyhow::Result<Summary> {
    let exe = std::env::current_exe().context("while locating this binary")?;
    // The judge promotes once it has shown the canary's error rate is within the margin of
    // stable's; --fast accepts a wider margin (and a shorter deadline) to decide sooner.
    let (pause, margin, deadline) = if args.fast {
        ("3s", "0.05", "20s")
    } else {
        ("10s", "0.02", "60s")
    };
    let manifest = MANIFEST
        .replace("{exe}", &exe.display().to_string())
        .replace("{p}", pause)
        .replace("{m}", margin)
        .replace("{d}", deadline);
    // On a terminal the narration and the rollout under way share one screen, redrawn in place.
    let mut live = Live::new(Kind::Status, args.json);
    let result = tell(daemon, api, args, manifest, &mut live).await;
    live.close();
    result
}

async fn tell(
    daemon: &Daemon,
    api: &Client,
    args: &DemoArgs,
    manifest: String,
    live: &mut Live,
) -> anyhow::Result<Summary> {
    api.apply(&ApplyRequest {
        files: vec![ManifestFile {
            name: "demo.yaml".into(),
            content: manifest,
        }],
        dry_run: false,
    })
    .await?;
    let app = AppName::new(APP)?;
    let addr = daemon
        .app_addr(&app)
        .context("the demo app has no listener")?;
    live.say(&format!(
        "app `{APP}` listens on http://{addr}; starting v1 (2 instances)"
    ));
    api.deploy(APP, &deploy("v1", 0.0)?).await?;

    let load = Load::start(addr, args.rps);
    live.say(&format!("load generator: {} requests/s", args.rps));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut rollouts = Vec::new();
    for (version, error_rate, story) in [
        ("v2", 0.0, "a healthy release"),
        ("v3", 0.2, "a broken release (20% errors)"),
    ] {
        live.say(&format!("\n== deploying {version}: {story}"));
        let t0 = Instant::now();
        api.deploy(APP, &deploy(version, error_rate)?).await?;
        let view = follow(api, live).await?;
        let analysis = api.analysis(APP).await?;
        let verdict = analysis
            .measurements
            .iter()
            .rev()
            .find(|m| m.metric == "errors-vs-stable");
        rollouts.push(RolloutOutcome {
            version: version.into(),
            outcome: match view.phase.as_str() {
                "Succeeded" => "promoted",
                "RolledBack" => "rolled_back",
                "Aborted" => "aborted",
                _ => "failed",
            }
            .into(),
            reason: view.reason.clone(),
            detected_after_s: (view.phase == "RolledBack")
                .then_some(view.decided_after_s)
                .flatten(),
            duration_s: t0.elapsed().as_secs_f64(),
            evidence: view.policy.clone(),
            judge: verdict.map(|m| m.message.clone()),
            judge_evidence: verdict.and_then(|m| m.evidence.clone()),
        });
    }
    let (requests, failed) = load.stop().await;
    Ok(Summary {
        rollouts,
        requests,
        failed_requests: failed,
        duration_s: 0.0,
    })
}

fn deploy(version: &str, error_rate: f64) -> anyhow::Result<DeployRequest> {
    let mut env = BTreeMap::new();
    env.insert("DEMO_ERROR_RATE".to_string(), error_rate.to_string());
    Ok(DeployRequest {
        version: Some(Version::new(version)?),
        env,
        ..DeployRequest::default()
    })
}

/// Shows the rollout live until it ends; returns its final view.
async fn follow(api: &Client, live: &mut Live) -> anyhow::Result<RolloutView> {
    loop {
        let view = api.rollout(APP).await?;
        live.show(Look::from(&view));
        if !view.active {
            live.keep();
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The outcome in words, wrapped to the terminal's width when there is one.
fn print_summary(s: &Summary) {
    let width = live::width();
    outln!(
        "\n== summary ({:.0} s, {} requests, {} answered 5xx)",
        s.duration_s,
        s.requests,
        s.failed_requests
    );
    for r in &s.rollouts {
        let detected = r
            .detected_after_s
            .map(|d| format!(", detected after {d:.1} s of canary traffic"))
            .unwrap_or_default();
        outln!("  {}: {}{detected}", r.version, r.outcome.replace('_', " "));
        let mut lines = Vec::new();
        if let Some(reason) = &r.reason {
            lines.extend(wrap("      reason: ", reason, width));
        }
        if let Some(j) = &r.judge {
            lines.extend(wrap("      judge: ", j, width));
        }
        if let Some(e) = &r.evidence {
            let rate = |x: Option<f64>| x.map_or("-".into(), |v| format!("{:.2}%", v * 100.0));
            let policy = format!(
                "canary {} errors over {} requests, stable {} over {} requests",
                rate(e.canary_error_rate),
                e.canary_requests,
                rate(e.stable_error_rate),
                e.stable_requests
            );
            lines.extend(wrap("      policy: ", &policy, width));
        }
        for line in lines {
            outln!("{line}");
        }
    }
}

/// A steady open-loop load: `rps` requests per second spread over a few workers.
struct Load {
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    requests: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Load {
    fn start(addr: SocketAddr, rps: u32) -> Self {
        const WORKERS: u32 = 8;
        let cancel = CancellationToken::new();
        let requests = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::new();
        let period = Duration::from_secs_f64(f64::from(WORKERS) / f64::from(rps.max(1)));
        let tasks = (0..WORKERS)
            .map(|_| {
                let (cancel, client) = (cancel.clone(), client.clone());
                let (requests, failed) = (Arc::clone(&requests), Arc::clone(&failed));
                let url = format!("http://{addr}/");
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(period);
                    loop {
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            _ = tick.tick() => {}
                        }
                        let ok = client
                            .get(&url)
                            .send()
                            .await
                            .is_ok_and(|r| !r.status().is_server_error());
                        requests.fetch_add(1, Ordering::Relaxed);
                        if !ok {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Self {
            cancel,
            tasks,
            requests,
            failed,
        }
    }

    async fn stop(self) -> (u64, u64) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.requests.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
