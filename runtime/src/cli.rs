//! The `mission` command line: parses arguments, runs one command and says
//! how it went. `main` only prints the error chain and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::call::{Message, ParseMode};
use crate::config::Config;
use crate::host::Host;
use crate::loader::PluginLoader;
use crate::runs::{RunRecord, Trigger};

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
}

impl Cli {
    /// Runs the command; `Ok` carries the exit code for a command that ran
    /// but did not succeed (a failed run, a failed check).
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let config = Config::load(&self.config)?;
        match self.command {
            Command::Check => check(config).await,
            Command::Run { plugin, json } => run(config, &plugin, json).await,
            Command::Chat {
                plugin,
                text,
                chat_id,
                sender,
                json,
            } => chat(config, &plugin, chat_id, sender, text, json).await,
            Command::Up => up(config).await,
        }
    }
}

async fn check(config: Config) -> anyhow::Result<ExitCode> {
    println!("{}: ok", config.file.display());
    let loader = PluginLoader::open(&config)?;
    let mut failed = false;
    for plugin in config.plugins {
        match loader.load(plugin).await {
            Ok(plugin) => println!(
                "plugin `{}` ({}): ok, {} (sha256 {})",
                plugin.name(),
                plugin.config.world,
                plugin.config.wasm.display(),
                plugin.hash.short(),
            ),
            Err(e) => {
                failed = true;
                println!("{e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn run(config: Config, plugin: &str, json: bool) -> anyhow::Result<ExitCode> {
    let host = Host::open(config).await?;
    host.load(plugin).await?;
    let record = host.run_task(plugin, Trigger::Manual).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print_run(&record);
    }
    Ok(if record.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_run(record: &RunRecord) {
    let took = record
        .finished_at
        .map(|end| format!(" in {} ms", (end - record.started_at).num_milliseconds()))
        .unwrap_or_default();
    println!(
        "{}: {}{took} (run {})",
        record.plugin,
        record.outcome.replace('_', " "),
        record.id
    );
    if let Some(summary) = &record.summary {
        println!("{summary}");
    }
    if let Some(error) = &record.error {
        println!("error: {error}");
    }
    if record.output_truncated {
        println!(
            "output truncated: {} bytes printed, the excess was dropped",
            record.output_bytes
        );
    }
}

async fn chat(
    config: Config,
    plugin: &str,
    chat_id: i64,
    sender: String,
    text: String,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let host = Host::open(config).await?;
    let values = host.load(plugin).await?.config.values.clone();
    let message = Message {
        chat_id,
        sender_id: 0,
        sender_name: sender,
        text,
        sent_at: chrono::Utc::now().timestamp_millis(),
        config: values,
    };
    let report = host.chat(plugin, &message).await?;
    let reply = match report.result {
        Ok(reply) => reply,
        Err(e) => {
            if json {
                println!("{}", json!({ "outcome": e.kind(), "error": e.to_string() }));
            } else {
                println!("{plugin}: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        let (text, parse_mode) = match &reply {
            Some(reply) => (Some(&reply.text), reply.parse_mode.map(parse_mode_name)),
            None => (None, None),
        };
        println!(
            "{}",
            json!({ "outcome": "succeeded", "reply": text, "parse_mode": parse_mode })
        );
    } else if let Some(reply) = reply {
        println!("{}", reply.text);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_mode_name(mode: ParseMode) -> &'static str {
    match mode {
        ParseMode::MarkdownV2 => "MarkdownV2",
        ParseMode::Html => "HTML",
    }
}

async fn up(config: Config) -> anyhow::Result<ExitCode> {
    let host = Host::open(config).await?;
    host.load_all().await;
    host.serve(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("failed to install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
