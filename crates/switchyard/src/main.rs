//! The `switchyard` binary: parses the command line and hands over to a command.

mod cli;
mod cmd;
mod render;

use clap::Parser;

/// mimalloc: the proxy allocates and frees buffers of a few KiB on every request, which glibc's
/// allocator serves with frequent consolidation (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli)
}
