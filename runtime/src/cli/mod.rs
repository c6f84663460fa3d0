//! The `mission` command line: parses arguments, runs one command and says
//! how it went. `main` only prints the error chain and picks the exit code.
//! One file per group of commands: [`check`], one [`call`] of a plugin
//! (`run`, `chat`), [`schedules`] and runs, [`plugins`], [`http`] requests,
//! [`cost`], the host as a [`service`], LaunchAgents to [`import`], the
//! SQLite file's size ([`db`]), the chat's [`shadow`] report and tool
//! [`approvals`].

/// `println!` for what a command prints: each line through
/// [`untrusted::terminal`](crate::untrusted::terminal), since a plugin's
/// summary or error, a file's name or a caller's delivery id may be in it
/// (the commands' own text holds no escapes to lose; JSON escapes its own).
macro_rules! say {
    () => {
        println!()
    };
    ($($arg:tt)*) => {
        println!("{}", $crate::untrusted::terminal(&format!($($arg)*)))
    };
}

mod approvals;
mod build;
mod call;
mod check;
mod cost;
mod db;
mod http;
mod import;
mod init;
mod mcp_tools;
mod new;
mod plugins;
mod rerun;
mod schedules;
mod service;
mod shadow;
pub mod tooling;
mod tools;
mod watches;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::capabilities::claude::spend::report::GroupBy;
use crate::cli::tooling::build::Language;
use crate::cli::tooling::service::Manager;
use crate::config::{Config, World};
use crate::db::Database;
use crate::host::{Host, DATABASE_FILE};
use crate::serve;

/// Mission Control: runs your always-on automations as sandboxed
/// WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "mission", version)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, default_value = "mission.toml")]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a folder of one's own automations: a config, schedules/, the
    /// WIT package and the Rust SDK, ready for `mission new`.
    Init {
        /// The folder (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check the config and every plugin (compiles each and checks its world);
    /// exits non-zero naming each problem.
    Check,
    /// Run a task plugin once, now; print and record the outcome.
    Run {
        /// The plugin's name in the config.
        plugin: String,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a recorded run again: the same plugin, config and input (a
    /// webhook's stored request), as a new run linked to the first.
    Rerun {
        /// The run's id (`mission runs`).
        id: i64,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send one message to a chat plugin, as if from the chat, and print the
    /// reply.
    Chat {
        /// The plugin's name in the config.
        plugin: String,
        /// The message text.
        text: String,
        /// The chat it comes from (its history is kept per chat).
        #[arg(long, default_value_t = 1)]
        chat_id: i64,
        /// The sender's display name.
        #[arg(long, default_value = "cli")]
        sender: String,
        /// Print the reply as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start the long-running host; stops cleanly on Ctrl-C or SIGTERM.
    Up,
    /// List the schedules: next fire time in each one's zone, last outcome,
    /// paused or not.
    Schedules {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show run history, newest first.
    Runs {
        /// Only runs of this schedule.
        #[arg(long)]
        schedule: Option<String>,
        /// Only this run, shown whole: its summary and error uncut.
        #[arg(long, conflicts_with = "schedule")]
        id: Option<i64>,
        /// Only runs that did not succeed.
        #[arg(long)]
        failed: bool,
        /// Only runs since a date (2026-11-01) or a span back (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Only runs whose error, summary or output contains this text.
        #[arg(long)]
        grep: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a schedule now, through the running host if one is up (else in
    /// this process); recorded like any run.
    Trigger {
        /// The schedule's name (its file's stem).
        schedule: String,
        /// Print the run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a schedule: it does not fire until resumed (kept across restarts).
    Pause {
        /// The schedule's name.
        schedule: String,
    },
    /// Resume a paused schedule.
    Resume {
        /// The schedule's name.
        schedule: String,
    },
    /// List the plugins: content hash, when loaded, last reload outcome.
    Plugins {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List plugins' outbound HTTP requests, newest first: method, origin,
    /// path (never the query), status, sizes, time, denied or not.
    Http {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the running host reload a plugin (or all) from disk now.
    Reload {
        /// The plugin; all if left out.
        plugin: Option<String>,
    },
    /// Claude spend from the cost ledger: calls, tokens, cache hit rate and
    /// dollars, grouped; with this month projected from the last 7 days.
    Cost {
        /// From this day (YYYY-MM-DD, host time zone) or this long ago
        /// (`7d`, `24h`); default: the start of this month.
        #[arg(long)]
        since: Option<String>,
        /// How to group the calls.
        #[arg(long, value_enum, default_value_t = GroupBy::Plugin)]
        by: GroupBy,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the host as this machine's service: a LaunchAgent (macOS) or a
    /// systemd user unit (Linux).
    Service {
        /// What to do.
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// The SQLite file: its size and what fills it, table by table, and how
    /// long each kind of record is kept (`[retention]`).
    Db {
        /// Prune what retention no longer keeps now, then give the space back
        /// (VACUUM).
        #[arg(long)]
        compact: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a new plugin of a world, in Rust, Python or JavaScript, that
    /// builds and answers without edits; print its config entry (or add it).
    New {
        /// The world: task or chat.
        #[arg(value_enum)]
        world: World,
        /// The plugin's name (lowercase letters, digits, `-`, `_`).
        name: String,
        /// The language.
        #[arg(long, value_enum, default_value_t = Language::Rust)]
        lang: Language,
        /// Add its `[plugins.NAME]` entry to the config.
        #[arg(long)]
        add: bool,
    },
    /// Build plugins from source (Rust, Python or JavaScript, by the build
    /// file in their `source` directory), check each against its world and
    /// compile it into the cache, then put it in place: a running host
    /// reloads it without compiling.
    Build {
        /// The plugin; all with a source directory if left out.
        plugin: Option<String>,
    },
    /// Bring existing jobs over as plugins and schedules.
    Import {
        /// From where.
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Shadow chat handlers, compared with the live one.
    Shadow {
        /// What to do.
        #[command(subcommand)]
        command: ShadowCommand,
    },
    /// Tool uses asked about in the chat, newest first: who decided what,
    /// when, and why a use was denied.
    Approvals {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Webhook deliveries, newest first: received, refused or duplicate,
    /// and the runs each started.
    Webhooks {
        /// Only this webhook's.
        webhook: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Each watch: what it watches, what it last saw, its latest run.
    Watches {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The tools each tools plugin offers and the plugins whose Claude may
    /// call them, with the latest tool calls.
    Tools {
        /// How many calls.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve one tools plugin's tools over MCP on stdin and stdout: the
    /// CLI starts this from the `--mcp-config` the host writes for it.
    #[command(hide = true)]
    McpTools {
        /// The host's tool-call socket.
        #[arg(long)]
        socket: PathBuf,
        /// The tools plugin.
        #[arg(long)]
        plugin: String,
    },
    /// Cron expression tools.
    Schedule {
        /// What to do.
        #[command(subcommand)]
        command: ScheduleCommand,
    },
}

/// `mission schedule ...`
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times of a cron expression, RFC 3339 with offsets,
    /// one a line.
    Next {
        /// The expression, e.g. '0 7 * * mon-fri'.
        expr: String,
        /// The IANA time zone to read it in (default: the host's).
        #[arg(long)]
        tz: Option<String>,
        /// Start after this RFC 3339 time (default: now).
        #[arg(long)]
        from: Option<String>,
        /// How many fire times.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

/// `mission shadow ...`
#[derive(Debug, Subcommand)]
pub enum ShadowCommand {
    /// The live handler and each shadow side by side: messages, p50/p95
    /// latency, errors and timeouts, cost per message and the month at this
    /// rate, history and context given, reply length.
    Report {
        /// From this day (YYYY-MM-DD, host time zone) or this long ago
        /// (`48h`, `7d`).
        #[arg(long, default_value = "48h")]
        since: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `mission import ...`
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// LaunchAgent plists (files, or directories of them): each job on a
    /// calendar or interval becomes a `run-command` plugin in the config
    /// and a schedule; the others are listed with the reason. launchd is
    /// not changed.
    Launchd {
        /// Plist files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The `run-command` plugin's .wasm, as written into the config.
        #[arg(long, default_value = "plugins/target/wasm32-wasip2/release/run_command.wasm")]
        wasm: PathBuf,
        /// Print what would be written instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `mission service ...`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the service file (with the binary, this config, and only the
    /// environment variables the config names) and start it.
    Install {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
        /// Print the file instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop the service and remove its file.
    Uninstall {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
    },
    /// Whether it is installed and running, and since when; exits 3 when the
    /// host is not running.
    Status {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// Whether the command only reads and prints: no plugin runs, no child
    /// is started. Such a command may end quietly when its reader goes away
    /// (`mission runs | head -1`).
    pub fn only_prints(&self) -> bool {
        matches!(
            self.command,
            Command::Schedules { .. }
                | Command::Runs { .. }
                | Command::Plugins { .. }
                | Command::Http { .. }
                | Command::Cost { .. }
                | Command::Shadow { .. }
                | Command::Approvals { .. }
                | Command::Webhooks { .. }
                | Command::Watches { .. }
                | Command::Tools { .. }
                | Command::Schedule { .. }
        )
    }

    /// The log filter when `MISSION_LOG` sets none: `mission check` says
    /// what it found itself, so only warnings are logged beside it; rmcp
    /// (in `mission mcp-tools`) logs every session at info.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Check => "warn",
            _ => "info,rmcp=warn",
        }
    }

    /// Runs the command; `Ok` carries the exit code for a command that ran
    /// but did not succeed (a failed run, a failed check).
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if let Command::Schedule {
            command:
                ScheduleCommand::Next {
                    expr,
                    tz,
                    from,
                    count,
                },
        } = &self.command
        {
            return schedules::schedule_next(expr, tz.as_deref(), from.as_deref(), *count);
        }
        if let Command::Init { dir } = &self.command {
            return init::init(dir);
        }
        if let Command::McpTools { socket, plugin } = self.command {
            mcp_tools::run(socket, plugin).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let config = Config::load(&self.config)?;
        match self.command {
            Command::Init { .. } => unreachable!("handled above: it needs no config"),
            Command::Check => check::check(config).await,
            Command::Run { plugin, json } => call::run(config, &plugin, json).await,
            Command::Rerun { id, json } => rerun::rerun(config, id, json).await,
            Command::Chat {
                plugin,
                text,
                chat_id,
                sender,
                json,
            } => call::chat(config, &plugin, chat_id, sender, text, json).await,
            Command::Up => up(config).await,
            Command::Schedules { json } => schedules::list_schedules(config, json).await,
            Command::Runs {
                id: Some(id), json, ..
            } => schedules::show_run(config, id, json).await,
            Command::Runs {
                schedule,
                failed,
                since,
                grep,
                limit,
                json,
                id: None,
            } => {
                let since = since
                    .map(|text| cost::parse_since(&text, chrono::Utc::now(), crate::os::zone::host_zone()))
                    .transpose()?;
                let filter = crate::host::runs::RunFilter {
                    schedule,
                    failed,
                    since,
                    grep,
                };
                schedules::list_runs(config, filter, limit, json).await
            }
            Command::Trigger { schedule, json } => schedules::trigger(config, &schedule, json).await,
            Command::Pause { schedule } => schedules::set_paused(config, &schedule, true).await,
            Command::Resume { schedule } => schedules::set_paused(config, &schedule, false).await,
            Command::Plugins { json } => plugins::list_plugins(config, json).await,
            Command::Reload { plugin } => plugins::reload(config, plugin.as_deref()).await,
            Command::Http { plugin, limit, json } => {
                http::list_requests(config, plugin.as_deref(), limit, json).await
            }
            Command::Cost { since, by, json } => cost::cost(config, since.as_deref(), by, json).await,
            Command::New {
                world,
                name,
                lang,
                add,
            } => new::new(config, world, &name, lang, add),
            Command::Build { plugin } => build::build(config, plugin.as_deref()).await,
            Command::Db { compact, json } => db::db(config, compact, json).await,
            Command::Import {
                command: ImportCommand::Launchd { paths, wasm, dry_run },
            } => import::import_launchd(config, &paths, &wasm, dry_run).await,
            Command::Service { command } => match command {
                ServiceCommand::Install { manager, dry_run } => service::install(config, manager, dry_run),
                ServiceCommand::Uninstall { manager } => service::uninstall(manager),
                ServiceCommand::Status { manager, json } => service::status(config, manager, json).await,
            },
            Command::Shadow {
                command: ShadowCommand::Report { since, json },
            } => shadow::report(config, &since, json).await,
            Command::Approvals { limit, json } => approvals::list(config, limit, json).await,
            Command::Webhooks { webhook, limit, json } => webhooks::list(config, webhook, limit, json).await,
            Command::Watches { json } => watches::list(config, json).await,
            Command::Tools { limit, json } => tools::list(config, limit, json).await,
            Command::Schedule { .. } | Command::McpTools { .. } => {
                unreachable!("handled before the config is read")
            }
        }
    }
}

async fn up(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal()?;
    let host = open_host(config).await?;
    serve::serve(host, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// The host, with plugins' tools served to the CLI processes its Claude
/// starts (by this binary, as `mission mcp-tools`).
async fn open_host(config: Config) -> anyhow::Result<Arc<Host>> {
    let host = Arc::new(Host::open(config).await?);
    let mission = std::env::current_exe().context("cannot tell where this `mission` binary is")?;
    let _gateway = crate::serve::tool_gateway::install(&host, mission);
    Ok(host)
}

fn open_db(config: &Config) -> anyhow::Result<Database> {
    std::fs::create_dir_all(&config.data_dir)?;
    Database::open(&config.data_dir.join(DATABASE_FILE))
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when it is first awaited: a signal that comes while the host
/// is still starting stops it cleanly instead of killing it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("failed to install the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}
