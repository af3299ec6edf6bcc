//! Dispatch from parsed arguments to the command that runs them.

mod audit;
mod client;
mod config;
mod demo;
mod demo_app;
mod experiment;
mod flags;
mod incident;
mod pipeline;
mod proxy;
mod serve;
mod sim;
mod stats;
mod store;
mod tokens;

use std::process::ExitCode;

use switchyard_api::CommandRequest;

use crate::cli::{Cli, Command, GetWhat};

/// Runs the command and turns its outcome into an exit code; errors go to stderr.
pub fn run(cli: Cli) -> ExitCode {
    if let Command::Supervise { command } = cli.command {
        // The supervisor must exit as soon as its child does; see `switchyard_runtime::supervise`.
        let code = runtime().map_or(1, |rt| rt.block_on(switchyard_runtime::supervise(command)));
        std::process::exit(code);
    }
    if let Command::Sim {
        command: crate::cli::SimCommand::Canary(args),
    } = &cli.command
    {
        return match sim::canary(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Stats { method, input } = &cli.command {
        return stats::run(method, input.as_deref());
    }
    if let Command::Observability {
        command: crate::cli::ObservabilityCommand::Export { dir },
    } = &cli.command
    {
        return match export_observability(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Proxy(args) = cli.command {
        // The data plane's own thread follows the control plane and runs health checks;
        // connections are served by worker threads (`--workers`), or by it when there is one.
        init_logging(true, cli.color);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from);
        return match runtime.and_then(|rt| rt.block_on(proxy::run(args))) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(
        matches!(cli.command, Command::Serve(_) | Command::DemoApp(_)),
        cli.color,
    );
    crate::render::paint::choose(cli.color);
    let result = runtime().and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 3: the daemon could not be reached (a CI job can tell that from a refusal).
            let unreachable = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<switchyard_api::ClientError>(),
                    Some(switchyard_api::ClientError::Unreachable { .. })
                )
            });
            if unreachable {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logging(verbose: bool, color: crate::cli::Color) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = color.enabled(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let target = config::target(cli.server.clone())?;
    let api = switchyard_api::Client::with_token(&target.server, target.token.as_deref());
    let output = cli.output;
    match cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "switchyard", &mut script);
            // A reader that stops early (`| head`) is not an error of ours.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve::run(args).await,
        Command::Proxies => proxy::list(&api, output).await,
        Command::DemoApp(args) => demo_app::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Apply(args) => client::apply(&api, &args.file, false, output).await,
        Command::Validate(args) if args.offline => client::validate_offline(&args.files.file),
        Command::Validate(args) => client::apply(&api, &args.files.file, true, output).await,
        Command::Get {
            what: GetWhat::Apps,
            name: Some(name),
            ..
        } => anyhow::bail!("`get apps` lists every app: drop `{name}`"),
        Command::Get {
            what: GetWhat::Apps,
            ..
        } => client::get_apps(&api, output).await,
        Command::Get {
            what: GetWhat::Rollout,
            name,
            watch,
        } => client::get_rollout(&api, name.as_deref().unwrap_or_default(), watch, output).await,
        Command::Deploy(args) => client::deploy(&api, args, output).await,
        Command::Release {
            name,
            version,
            watch,
        } => pipeline::release(&api, &name, &version, watch, output).await,
        Command::Pipeline { command } => pipeline::run(&api, command, output).await,
        Command::Notifications { status, limit } => {
            pipeline::notifications(&api, status.as_deref(), limit, output).await
        }
        Command::Rollout {
            command: crate::cli::RolloutCommand::Status { app, watch },
        } => client::status(&api, &app, watch, output).await,
        Command::Promote {
            app,
            full,
            wait,
            seen,
        } => {
            let request = CommandRequest {
                full,
                ..client::request()
            };
            let code = client::command(&api, &app, "promote", request, &seen, output).await?;
            if wait {
                return client::wait_for_end(&api, &app, output).await;
            }
            Ok(code)
        }
        Command::Abort { app, reason, seen } => {
            let request = CommandRequest {
                reason,
                ..client::request()
            };
            client::command(&api, &app, "abort", request, &seen, output).await
        }
        Command::Pause {
            app,
            duration,
            seen,
        } => {
            let request = CommandRequest {
                duration,
                ..client::request()
            };
            client::command(&api, &app, "pause", request, &seen, output).await
        }
        Command::Resume {
            app,
            weight,
            interval,
            seen,
        } => {
            let request = CommandRequest {
                weight,
                interval,
                ..client::request()
            };
            client::command(&api, &app, "resume", request, &seen, output).await
        }
        Command::Approve { app, reason, seen } => {
            let request = CommandRequest {
                reason,
                ..client::request()
            };
            client::command(&api, &app, "approve", request, &seen, output).await
        }
        Command::Retry { app } => client::app_action(&api, &app, "retry", output).await,
        Command::Undo { app } => client::app_action(&api, &app, "undo", output).await,
        Command::EmergencyStop { app, reason } => {
            client::freeze(&api, &app, "emergency-stop", Some(reason), output).await
        }
        Command::Unfreeze { app } => client::freeze(&api, &app, "unfreeze", None, output).await,
        Command::Analysis { app } => client::analysis(&api, &app, output).await,
        Command::History { app, limit } => client::history(&api, &app, limit, output).await,
        Command::Flags { command } => flags::run(&api, command, output).await,
        Command::Experiment { command } => experiment::run(&api, command, output).await,
        Command::Token { command } => tokens::run(&api, command, output).await,
        Command::Audit(args) => audit::run(&api, args, output).await,
        Command::Incident { command } => incident::run(&api, command, output).await,
        Command::Backup { store, to } => store::backup(&store, &to).await,
        Command::Restore { store, from } => store::restore(&store, &from).await,
        Command::MigrateStore { data_dir, to } => store::migrate(&data_dir, &to).await,
        Command::Stats { .. }
        | Command::Observability { .. }
        | Command::Supervise { .. }
        | Command::Sim { .. }
        | Command::Proxy(_) => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// `observability export --dir DIR`.
fn export_observability(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("while making {}", dir.display()))?;
    for (name, text) in switchyard_server::observability::FILES {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("while writing {}", path.display()))?;
        outln!("{}", path.display());
    }
    Ok(())
}
