//! `switchyard serve`: the daemon until SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use switchyard_app::{Daemon, DaemonConfig, DatabaseUrl};

use crate::cli::ServeArgs;

/// The supervisor argv prefix: this very binary's hidden `supervise` command.
pub fn supervisor() -> Option<Vec<String>> {
    let exe = std::env::current_exe().ok()?;
    Some(vec![
        exe.display().to_string(),
        "supervise".into(),
        "--".into(),
    ])
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = DaemonConfig::new(&args.data_dir);
    config.database_url = args.database_url.clone().map(DatabaseUrl);
    config.lease_ttl = switchyard_core::duration::parse(&args.lease_ttl)
        .map_err(|e| anyhow::anyhow!("--lease-ttl `{}`: {e}", args.lease_ttl))?;
    if config.lease_ttl < std::time::Duration::from_millis(400) {
        anyhow::bail!(
            "--lease-ttl `{}` is too short: at least 400ms, so that renewals every quarter of it fit",
            args.lease_ttl
        );
    }
    config.advertise_url.clone_from(&args.advertise_url);
    if args.database_url.is_some()
        && args.advertise_url.is_none()
        && args.listen.ip().is_unspecified()
    {
        anyhow::bail!(
            "--listen {} with --database-url needs --advertise-url: the other replicas forward \
             requests to this daemon's API while it leads, at an address they can reach \
             (such as http://10.0.0.5:{})",
            args.listen,
            args.listen.port()
        );
    }
    config.api_listen = args.listen;
    config.supervisor = supervisor();
    config.keep_raw_events = args.keep_raw_events;
    config.adopt_within = switchyard_core::duration::parse(&args.adopt_within)
        .map_err(|e| anyhow::anyhow!("--adopt-within `{}`: {e}", args.adopt_within))?;
    config.api.authenticate = !args.insecure_no_auth;
    config.api.allowed_hosts = args.allowed_hosts;
    config.api.cors_origins = args.cors_origins;
    config.api.ofrep_cors_origins = args.ofrep_cors_origins;
    config.local_proxy_workers = args.proxy_workers;
    config.kubeconfig.clone_from(&args.kubeconfig);
    if !args.no_proxy {
        config.local_proxy = Some(
            std::env::current_exe().context("while locating this binary to run the local proxy")?,
        );
    }
    if let Some(path) = &args.policy {
        config.policy = std::sync::Arc::new(switchyard_policy::Policy::load(path)?);
    } else {
        tracing::warn!(
            "no --policy: no process runtime or command provider may run, and webhooks and providers reach loopback only"
        );
    }
    let daemon = Daemon::start(config).await?;
    // Best effort: a daemon whose stdout nobody reads any more (a closed pipe) keeps serving.
    let mut stdout = std::io::stdout();
    let _ = writeln!(
        stdout,
        "switchyard listening on http://{}",
        daemon.api_addr()
    );
    if daemon.admin_token().is_some() {
        let file = args.data_dir.join(switchyard_app::daemon::ADMIN_TOKEN_FILE);
        let _ = writeln!(
            stdout,
            "admin token written to {} (mode 0600); use it with: export SWITCHYARD_TOKEN=$(cat {})",
            file.display(),
            file.display()
        );
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("while installing the SIGTERM handler")?;
    // Ctrl-C stops everything; SIGTERM (what service managers send to restart or upgrade) stops
    // the control plane and leaves the data plane serving for the next start to adopt.
    let deposed = daemon.deposed();
    tokio::select! {
        () = deposed.cancelled() => {
            daemon.detach().await;
            eprintln!("error: another replica took over the leader lease; this one stopped (start it again to follow)");
            return Ok(ExitCode::from(75));
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("SIGINT received: stopping the proxy and every release");
            daemon.shutdown().await;
        }
        _ = term.recv() => {
            tracing::info!("SIGTERM received: stopping the control plane; the data plane keeps serving");
            daemon.detach().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
