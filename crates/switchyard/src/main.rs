//! The `switchyard` binary: parses the command line and hands over to a command.

mod cli;
mod cmd;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli)
}
