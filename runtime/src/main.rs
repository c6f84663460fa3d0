//! The `mission` binary: parses the command line, runs it, prints any error
//! with its causes and exits non-zero.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mission::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.only_prints() {
        // Rust ignores SIGPIPE, so a closed pipe is an error at the next
        // print, which `println!` turns into a panic; a printing command
        // ends at it as any Unix tool does.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    } else {
        // What a program run for a plugin leaves behind comes back to the
        // host, to be killed with the run.
        mission::process_tree::become_subreaper();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("MISSION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = cli.run().await;
    mission::plugin::cache::wait_for_writes();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
