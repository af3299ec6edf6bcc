//! The `switchyard` binary: parses the command line and hands over to a command.

/// `println!` for the command's output, except that a closed stdout (`| head`, `| grep -q`)
/// ends the process quietly and successfully, as it ends other command-line tools, instead of
/// panicking.
macro_rules! outln {
    () => {
        $crate::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the command's output; see [`outln`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

mod cli;
mod cmd;
mod render;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    cmd::run(cli)
}

/// Writes `text` to stdout; a reader that has gone away ends the process with success (its
/// consumer took what it wanted), any other failure with a message and exit code 1.
fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}
