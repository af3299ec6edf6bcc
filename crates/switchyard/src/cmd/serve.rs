//! `switchyard serve`: the daemon until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use switchyard_app::{Daemon, DaemonConfig};

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
    config.api_listen = args.listen;
    config.supervisor = supervisor();
    config.keep_raw_events = args.keep_raw_events;
    let daemon = Daemon::start(config).await?;
    println!("switchyard listening on http://{}", daemon.api_addr());
    let cancel = daemon.cancel_token();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("while installing the SIGTERM handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
        cancel.cancel();
    });
    daemon.run_until_cancelled().await;
    Ok(ExitCode::SUCCESS)
}
