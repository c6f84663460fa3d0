//! The `mission` command line: parses arguments, runs one command and says
//! how it went. `main` only prints the error chain and picks the exit code.
//! One file per group of commands, each declaring its own arguments (the
//! enum [`Command`] is the one list): [`check`], one [`call`] of a plugin
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
mod backup;
mod build;
mod call;
mod changes;
mod check;
mod cost;
mod db;
mod http;
mod import;
mod init;
mod later;
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

use crate::config::Config;
use crate::db::Database;
use crate::host::Host;
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

/// The commands: each one's arguments are declared in its own file.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a folder of one's own automations: a config, schedules/, the
    /// WIT package and the Rust SDK, ready for `mission new`.
    Init(init::InitArgs),
    /// Check the config and every plugin (compiles each and checks its world);
    /// exits non-zero naming each problem.
    Check,
    /// Run a task plugin once, now; print and record the outcome.
    Run(call::RunArgs),
    /// Run a recorded run again: the same plugin, config and input (a
    /// webhook's stored request), as a new run linked to the first.
    Rerun(rerun::RerunArgs),
    /// Send one message to a chat plugin, as if from the chat, and print the
    /// reply.
    Chat(call::ChatArgs),
    /// Start the long-running host; stops cleanly on Ctrl-C or SIGTERM.
    Up,
    /// List the schedules: next fire time in each one's zone, last outcome,
    /// paused or not.
    Schedules(schedules::SchedulesArgs),
    /// Show run history, newest first.
    Runs(schedules::RunsArgs),
    /// Run a schedule now, through the running host if one is up (else in
    /// this process); recorded like any run.
    Trigger(schedules::TriggerArgs),
    /// Pause a schedule: it does not fire until resumed (kept across restarts).
    Pause(schedules::NamedSchedule),
    /// Resume a paused schedule.
    Resume(schedules::NamedSchedule),
    /// List the plugins: content hash, when loaded, last reload outcome.
    Plugins(plugins::PluginsArgs),
    /// List plugins' outbound HTTP requests, newest first: method, origin,
    /// path (never the query), status, sizes, time, denied or not.
    Http(http::HttpArgs),
    /// Make the running host reload a plugin (or all) from disk now.
    Reload(plugins::ReloadArgs),
    /// Claude spend from the cost ledger: calls, tokens, cache hit rate and
    /// dollars, grouped; with this month projected from the last 7 days.
    Cost(cost::CostArgs),
    /// Run the host as this machine's service: a LaunchAgent (macOS) or a
    /// systemd user unit (Linux).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// The SQLite file: its size and what fills it, table by table, and how
    /// long each kind of record is kept (`[retention]`).
    Db(db::DbArgs),
    /// Create a new plugin of a world, in Rust, Python or JavaScript, that
    /// builds and answers without edits; print its config entry (or add it).
    New(new::NewArgs),
    /// Build plugins from source (Rust, Python or JavaScript, by the build
    /// file in their `source` directory), check each against its world and
    /// compile it into the cache, then put it in place: a running host
    /// reloads it without compiling.
    Build(build::BuildArgs),
    /// Bring existing jobs over as plugins and schedules.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Shadow chat handlers, compared with the live one.
    #[command(subcommand)]
    Shadow(shadow::ShadowCommand),
    /// Tool uses asked about in the chat, newest first: who decided what,
    /// when, and why a use was denied.
    Approvals(approvals::ApprovalsArgs),
    /// Webhook deliveries, newest first: received, refused or duplicate,
    /// and the runs each started.
    Webhooks(webhooks::WebhooksArgs),
    /// Each watch: what it watches, what it last saw, its latest run.
    Watches(watches::WatchesArgs),
    /// The wake-ups plugins asked for with `later` that still wait: the
    /// plugin, when, the payload's size.
    Later(later::LaterArgs),
    /// The tools each tools plugin offers and the plugins whose Claude may
    /// call them, with the latest tool calls.
    Tools(tools::ToolsArgs),
    /// The changes made through the host's own tools (`mission` in
    /// `tools_from`), newest first: what, who pressed for it, before and
    /// after.
    Changes(changes::ChangesArgs),
    /// Serve one tools plugin's tools over MCP on stdin and stdout: the
    /// CLI starts this from the `--mcp-config` the host writes for it.
    #[command(hide = true)]
    McpTools(mcp_tools::McpToolsArgs),
    /// Cron expression tools.
    #[command(subcommand)]
    Schedule(schedules::ScheduleCommand),
    /// Back up everything the business runs on into one archive, while the
    /// host serves: the database, the config, the schedules, each plugin's
    /// .wasm and source, the chat's attachments.
    Backup(backup::BackupArgs),
    /// Restore an archive of `mission backup` into a folder, once every
    /// file in it is checked; refused while a host runs on its data.
    Restore(backup::RestoreArgs),
}

impl Cli {
    /// Whether the command only reads and prints: no plugin runs, no child
    /// is started. Such a command may end quietly when its reader goes away
    /// (`mission runs | head -1`).
    pub fn only_prints(&self) -> bool {
        matches!(
            self.command,
            Command::Schedules(_)
                | Command::Runs(_)
                | Command::Plugins(_)
                | Command::Http(_)
                | Command::Cost(_)
                | Command::Shadow(_)
                | Command::Approvals(_)
                | Command::Webhooks(_)
                | Command::Watches(_)
                | Command::Later(_)
                | Command::Tools(_)
                | Command::Changes(_)
                | Command::Schedule(_)
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
        // These need no config.
        let command = match self.command {
            Command::Schedule(command) => return command.run(),
            Command::Init(args) => return init::init(&args.dir),
            Command::Restore(args) => return args.run(&self.config).await,
            Command::McpTools(args) => {
                mcp_tools::run(args.socket, args.plugin).await?;
                return Ok(ExitCode::SUCCESS);
            }
            command => command,
        };
        let config = Config::load(&self.config)?;
        match command {
            Command::Check => check::check(config).await,
            Command::Run(args) => call::run(config, &args.plugin, args.json).await,
            Command::Rerun(args) => rerun::rerun(config, args.id, args.json).await,
            Command::Chat(args) => call::chat(config, args).await,
            Command::Up => up(config).await,
            Command::Schedules(args) => schedules::list_schedules(config, args.json).await,
            Command::Runs(args) => args.run(config).await,
            Command::Trigger(args) => schedules::trigger(config, &args.schedule, args.json).await,
            Command::Pause(args) => schedules::set_paused(config, &args.schedule, true).await,
            Command::Resume(args) => schedules::set_paused(config, &args.schedule, false).await,
            Command::Plugins(args) => plugins::list_plugins(config, args.json).await,
            Command::Reload(args) => plugins::reload(config, args.plugin.as_deref()).await,
            Command::Http(args) => {
                http::list_requests(config, args.plugin.as_deref(), args.limit, args.json).await
            }
            Command::Cost(args) => cost::cost(config, args.since.as_deref(), args.by, args.json).await,
            Command::New(args) => new::new(config, args.world, &args.name, args.lang, args.add),
            Command::Build(args) => build::build(config, args.plugin.as_deref()).await,
            Command::Db(args) => db::db(config, args.compact, args.json).await,
            Command::Import(command) => command.run(config).await,
            Command::Service(command) => command.run(config).await,
            Command::Shadow(command) => command.run(config).await,
            Command::Approvals(args) => approvals::list(config, args.limit, args.json).await,
            Command::Webhooks(args) => webhooks::list(config, args.webhook, args.limit, args.json).await,
            Command::Watches(args) => watches::list(config, args.json).await,
            Command::Later(args) => later::list(config, args.json).await,
            Command::Tools(args) => tools::list(config, args.limit, args.json).await,
            Command::Changes(args) => args.run(config).await,
            Command::Backup(args) => args.run(config).await,
            Command::Init(_) | Command::Schedule(_) | Command::McpTools(_) | Command::Restore(_) => {
                unreachable!("handled before the config is read")
            }
        }
    }
}

async fn up(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal()?;
    // Held until the host exits: a restore never replaces its database.
    let _lock = crate::os::data_lock::shared(&config.data_dir)
        .with_context(|| format!("cannot lock the data directory {}", config.data_dir.display()))?;
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

/// The database, backed up first if its schema is about to change.
fn open_db(config: &Config) -> anyhow::Result<Database> {
    crate::backup::open_database(config)
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
