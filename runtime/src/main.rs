//! The `mission` binary: all of it is [`mission::cli::main`].

fn main() -> std::process::ExitCode {
    mission::cli::main()
}
