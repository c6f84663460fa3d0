//! The `mission` binary: parses the command line, runs it, prints any error
//! with its causes and exits non-zero.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mission::cli::Cli;

/// glibc's malloc arenas the host allows itself. glibc's default is eight
/// per core, one per thread that allocates at once; each fragments on its
/// own, so a host whose tokio workers and blocking threads take turns grew
/// by 4 MB a minute under load that it did not hold; with two arenas 1 MB a
/// minute, with one none after two minutes (`runtime/benches/soak.rs`).
/// `MALLOC_ARENA_MAX` in the environment wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 1;

fn main() -> ExitCode {
    cap_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to start the async runtime");
    runtime.block_on(run())
}

/// Caps glibc's arenas at [`MALLOC_ARENAS`] before any thread starts,
/// unless the environment sets them.
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets an allocator parameter, before other threads exist.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.only_prints() {
        // Rust ignores SIGPIPE, so a closed pipe is an error at the next
        // print, which `println!` turns into a panic; a printing command
        // ends at it as any Unix tool does.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    } else {
        // What a program run for a plugin leaves behind comes back to the
        // host, to be killed with the run.
        mission::os::process_tree::become_subreaper();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("MISSION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log_filter()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .fmt_fields(mission::untrusted::OneLineFields)
        .init();
    let result = cli.run().await;
    mission::plugin::cache::wait_for_writes();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", mission::untrusted::terminal(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
