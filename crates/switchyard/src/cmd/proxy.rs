//! `switchyard proxy` (the data-plane process, until SIGINT or SIGTERM) and `switchyard
//! proxies` (what the control plane knows of them).

use std::process::ExitCode;

use anyhow::Context as _;
use switchyard_api::Client;
use switchyard_app::proxy_process::{self, ProxyOptions, TokenSource};
use switchyard_core::dataplane::ListenerState;
use switchyard_proxy::{ProxyConfig, WorkerPool, Workers};
use tokio_util::sync::CancellationToken;

use crate::cli::{Output, ProxyArgs};
use crate::cmd::client::print_json;

pub async fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let duration = |flag: &str, text: &str| {
        switchyard_core::duration::parse(text)
            .map_err(|e| anyhow::anyhow!("--{flag} `{text}`: {e}"))
    };
    let token = match (&args.token_file, std::env::var("SWITCHYARD_TOKEN")) {
        (Some(file), _) => TokenSource::File(file.clone()),
        (None, Ok(token)) if !token.trim().is_empty() => {
            TokenSource::Value(token.trim().to_owned())
        }
        (None, _) => TokenSource::None,
    };
    let options = ProxyOptions {
        control: args.control.trim_end_matches('/').to_owned(),
        id: args.id,
        state_dir: args.state_dir,
        token,
        report_interval: duration("report-interval", &args.report_interval)?,
        grace: duration("grace", &args.grace)?,
        metrics_listen: args.metrics_listen,
        takeover: args.takeover,
        proxy: ProxyConfig {
            workers: workers(args.workers)?,
            ..ProxyConfig::default()
        },
    };
    let stop = CancellationToken::new();
    let signalled = stop.clone();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("while installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, draining"),
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
        }
        signalled.cancel();
    });
    proxy_process::run(options, stop).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list(api: &Client, output: Output) -> anyhow::Result<ExitCode> {
    let proxies = api.proxies().await?;
    if output == Output::Json {
        print_json(&proxies)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<16} {:<6} {:<10} {:<8} {:<10} LISTENERS",
        "ID",
        "LIVE",
        "VERSION",
        "CURRENT",
        "DRAINING"
    );
    for p in proxies {
        let listeners: Vec<String> = p
            .listeners
            .iter()
            .map(|(app, l)| {
                let main = match &l.main {
                    ListenerState::Bound(addr) => format!("{app}={addr}"),
                    ListenerState::Failed(why) => format!("{app}=FAILED ({why})"),
                };
                match &l.tls_problem {
                    Some(why) => format!("{main} TLS-PROBLEM ({why})"),
                    None => main,
                }
            })
            .collect();
        outln!(
            "{:<16} {:<6} {:<10} {:<8} {:<10} {}",
            p.id,
            if p.live { "yes" } else { "no" },
            p.version.map_or("-".to_owned(), |v| v.to_string()),
            if p.current { "yes" } else { "no" },
            p.draining,
            listeners.join(" ")
        );
        if let Some((version, why)) = &p.refused {
            outln!("  refused version {version}: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Worker threads for `--workers N`: none for one (the proxy's own thread serves), N otherwise;
/// by default one per CPU.
fn workers(asked: Option<usize>) -> anyhow::Result<Option<WorkerPool>> {
    let n = match asked {
        Some(0) => anyhow::bail!("--workers must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    if n == 1 {
        return Ok(None);
    }
    let pool = Workers::start(n).context("while starting the worker threads")?;
    Ok(Some(pool))
}
