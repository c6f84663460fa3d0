//! The `mission` command line: parses arguments, runs one command and says
//! how it went. `main` only prints the error chain and picks the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::claude::report::{cost_report, GroupBy};
use crate::config::claude::{plugin_list, Finding};
use crate::config::{Config, Grant};
use crate::db::Database;
use crate::host::{Host, DATABASE_FILE};
use crate::plugin::call::{Message, ParseMode};
use crate::plugin::loader::PluginLoader;
use crate::plugin::loads::{self, LoadOutcome};
use crate::runs::{self, RunRecord, Trigger};
use crate::schedule::{self, CronExpr, Schedule};
use crate::serve::{
    self,
    control::{self, RequestKind},
};

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

impl Cli {
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
            return schedule_next(expr, tz.as_deref(), from.as_deref(), *count);
        }
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
            Command::Schedules { json } => list_schedules(config, json).await,
            Command::Runs {
                schedule,
                limit,
                json,
            } => list_runs(config, schedule.as_deref(), limit, json).await,
            Command::Trigger { schedule, json } => trigger(config, &schedule, json).await,
            Command::Pause { schedule } => set_paused(config, &schedule, true).await,
            Command::Resume { schedule } => set_paused(config, &schedule, false).await,
            Command::Plugins { json } => list_plugins(config, json).await,
            Command::Reload { plugin } => reload(config, plugin.as_deref()).await,
            Command::Cost { since, by, json } => cost(config, since.as_deref(), by, json).await,
            Command::Schedule { .. } => unreachable!("handled before the config is read"),
        }
    }
}

async fn check(config: Config) -> anyhow::Result<ExitCode> {
    println!("{}: ok", config.file.display());
    let mut findings = check_plugins(&config).await?;
    findings.extend(check_telegram(&config));
    findings.extend(check_schedules(&config));
    findings.extend(check_claude(&config));
    let mut failed = false;
    for finding in findings {
        match finding {
            Finding::Ok(line) => println!("{line}"),
            Finding::Warning(line) => println!("warning: {line}"),
            Finding::Error(line) => {
                failed = true;
                println!("{line}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Each plugin compiled and checked against its world.
async fn check_plugins(config: &Config) -> anyhow::Result<Vec<Finding>> {
    let loader = PluginLoader::open(config)?;
    let mut findings = Vec::new();
    for plugin in config.plugins.clone() {
        findings.push(match loader.load(plugin).await {
            Ok(plugin) => Finding::Ok(format!(
                "plugin `{}` ({}): ok, {} (sha256 {})",
                plugin.name(),
                plugin.config.world,
                plugin.config.wasm.display(),
                plugin.hash.short(),
            )),
            Err(e) => Finding::Error(e.to_string()),
        });
    }
    Ok(findings)
}

/// The bot's token: without it the bot and `notify` are unavailable.
fn check_telegram(config: &Config) -> Option<Finding> {
    let telegram = config.telegram.as_ref()?;
    if std::env::var_os(&telegram.token_env).is_some() {
        return Some(Finding::Ok(format!(
            "telegram: ok, chat plugin `{}`",
            telegram.handler
        )));
    }
    let notifying: Vec<String> = config
        .plugins
        .iter()
        .filter(|p| p.grants.contains(&Grant::Notify))
        .map(|p| p.name.to_string())
        .collect();
    let notify = match notifying.is_empty() {
        true => String::new(),
        false => format!(", and `notify` is unavailable to {}", plugin_list(&notifying)),
    };
    Some(Finding::Warning(format!(
        "telegram.token_env: the environment variable `{}` is not set: the bot would not start{notify}",
        telegram.token_env
    )))
}

/// Each schedule file, valid or not.
fn check_schedules(config: &Config) -> Vec<Finding> {
    let (schedules, errors) = schedule::load_all(config, schedule::host_zone());
    let valid = schedules.iter().map(|schedule| {
        Finding::Ok(format!(
            "schedule `{}`: ok, `{}` in {}",
            schedule.name,
            schedule.cron.as_str(),
            schedule.zone
        ))
    });
    let invalid = errors
        .iter()
        .map(|error| Finding::Error(format!("schedule refused: {error}")));
    valid.chain(invalid).collect()
}

/// The `[claude]` section against the plugins granted `claude`.
fn check_claude(config: &Config) -> Vec<Finding> {
    match &config.claude {
        Some(claude) => claude.check(config.plugins.iter()),
        None => config
            .plugins
            .iter()
            .filter(|p| p.grants.contains(&Grant::Claude))
            .map(|plugin| {
                Finding::Error(format!(
                    "plugins.{}.grants: `claude` is granted but there is no [claude] section: its calls would be answered `unavailable`",
                    plugin.name
                ))
            })
            .collect(),
    }
}

async fn run(config: Config, plugin: &str, json: bool) -> anyhow::Result<ExitCode> {
    let host = Host::open(config).await?;
    host.load(plugin).await?;
    let record = host.run_task(plugin, Trigger::Manual).await?;
    host.claude().shutdown().await;
    report_run(&record, json)
}

/// Prints `record` (as JSON with `json`); the exit code says whether the
/// run succeeded.
fn report_run(record: &RunRecord, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(record)?);
    } else {
        print_run(record);
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
        record.outcome.as_str().replace('_', " "),
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
    let report = host.chat(plugin, &message, None, None).await?;
    host.claude().shutdown().await;
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
    let host = Arc::new(Host::open(config).await?);
    host.load_all().await;
    serve::serve(host, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

fn schedule_next(expr: &str, tz: Option<&str>, from: Option<&str>, count: usize) -> anyhow::Result<ExitCode> {
    let cron = CronExpr::parse(expr).map_err(|e| anyhow!(e))?;
    let zone: Tz = match tz {
        Some(tz) => tz
            .parse()
            .map_err(|_| anyhow!("--tz: `{tz}` is not an IANA time zone name"))?,
        None => schedule::host_zone(),
    };
    let mut at = match from {
        Some(from) => DateTime::parse_from_rfc3339(from)
            .map_err(|e| anyhow!("--from: `{from}` is not an RFC 3339 time: {e}"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    for _ in 0..count {
        let Some(next) = cron.next_after(at, zone) else {
            break;
        };
        println!("{}", schedule::format_in_zone(next, zone));
        at = next;
    }
    Ok(ExitCode::SUCCESS)
}

/// The named schedule from the schedules directory, or an error saying why not.
fn find_schedule(config: &Config, name: &str) -> anyhow::Result<Schedule> {
    let file = config.schedules_dir.join(format!("{name}.toml"));
    if !file.exists() {
        bail!("no schedule named `{name}`: {} does not exist", file.display());
    }
    Ok(Schedule::load(&file, config, schedule::host_zone())?)
}

async fn list_schedules(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let (schedules, errors) = schedule::load_all(&config, schedule::host_zone());
    let now = Utc::now();
    let mut rows = Vec::new();
    for schedule in &schedules {
        let paused = schedule::state::is_paused(&db, &schedule.name).await?;
        let last = runs::recent(&db, Some(&schedule.name), 1).await?.pop();
        let next = schedule
            .cron
            .next_after(now, schedule.zone)
            .map(|t| schedule::format_in_zone(t, schedule.zone));
        rows.push(json!({
            "name": schedule.name,
            "plugin": schedule.plugin,
            "cron": schedule.cron.as_str(),
            "timezone": schedule.zone.name(),
            "next": next,
            "paused": paused,
            "last_outcome": last.as_ref().map(|r| r.outcome),
            "last_run_at": last.as_ref().map(|r| r.started_at.to_rfc3339()),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!(
            "{:<24} {:<20} {:<28} {:<8} LAST",
            "SCHEDULE", "CRON", "NEXT", "PAUSED"
        );
        for row in &rows {
            println!(
                "{:<24} {:<20} {:<28} {:<8} {}",
                row["name"].as_str().unwrap_or_default(),
                row["cron"].as_str().unwrap_or_default(),
                row["next"].as_str().unwrap_or("never"),
                if row["paused"] == true { "yes" } else { "no" },
                row["last_outcome"].as_str().unwrap_or("-"),
            );
        }
    }
    for error in &errors {
        eprintln!("schedule refused: {error}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cost(config: Config, since: Option<&str>, by: GroupBy, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let (now, zone) = (Utc::now(), schedule::host_zone());
    let since = match since {
        None => crate::claude::ledger::month_start(now, zone),
        Some(text) => parse_since(text, now, zone)?,
    };
    let budget = config.claude.as_ref().map(|c| c.budget).unwrap_or_default();
    let report = cost_report(&db, since, by, now, zone).await?.with_budget(budget);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: a date in `zone`, or a duration back from `now` (`7d`, `12h`).
fn parse_since(text: &str, now: DateTime<Utc>, zone: Tz) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return zone
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.to_utc())
            .ok_or_else(|| anyhow::anyhow!("--since: {text} has no midnight in {zone}"));
    }
    let back = match text.strip_suffix('d') {
        Some(days) => days.parse::<u32>().ok().map(|d| chrono::Duration::days(d.into())),
        None => crate::config::units::HumanDuration::parse(text)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d.0).ok()),
    };
    back.map(|back| now - back).ok_or_else(|| {
        anyhow::anyhow!("--since: `{text}` is neither a date (2026-11-01) nor a span back (7d, 12h)")
    })
}

async fn list_runs(
    config: Config,
    schedule: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let records = runs::recent(&db, schedule, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<6} {:<20} {:<16} {:<10} {:<26} {:>3} {:<14} DETAIL",
        "RUN", "SCHEDULE", "PLUGIN", "TRIGGER", "STARTED", "#", "OUTCOME"
    );
    for r in &records {
        let detail = r
            .error
            .as_deref()
            .or(r.summary.as_deref())
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        println!(
            "{:<6} {:<20} {:<16} {:<10} {:<26} {:>3} {:<14} {}",
            r.id,
            r.schedule.as_deref().unwrap_or("-"),
            r.plugin,
            r.trigger,
            r.started_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            r.attempt,
            r.outcome,
            detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn trigger(config: Config, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let record = match control::running_host(&db).await? {
        Some(pid) => {
            let request = control::request(&db, RequestKind::Trigger, name).await?;
            eprintln!("asked the running host (pid {pid}) to run `{name}` (request {request})");
            while !control::is_finished(&db, request).await? {
                if control::running_host(&db).await?.is_none() {
                    eprintln!("the host stopped before answering");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            runs::answer_to(&db, request)
                .await?
                .ok_or_else(|| anyhow!("the running host has no schedule named `{name}` (see its log)"))?
        }
        None => {
            let schedule = find_schedule(&config, name)?;
            let host = Arc::new(Host::open(config).await?);
            host.load(&schedule.plugin).await?;
            let scheduler = serve::scheduler(&host);
            scheduler.run_now(name, Trigger::Direct).await;
            runs::recent(host.db(), Some(name), 1)
                .await?
                .pop()
                .ok_or_else(|| anyhow!("the run of `{name}` left no record"))?
        }
    };
    report_run(&record, json)
}

async fn set_paused(config: Config, name: &str, paused: bool) -> anyhow::Result<ExitCode> {
    find_schedule(&config, name)?;
    let db = open_db(&config)?;
    schedule::state::set_paused(&db, name, paused).await?;
    println!("schedule `{name}` {}", if paused { "paused" } else { "resumed" });
    Ok(ExitCode::SUCCESS)
}

async fn list_plugins(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let mut rows = Vec::new();
    for plugin in &config.plugins {
        let (last, loaded) = loads::latest(&db, plugin.name.as_str()).await?;
        rows.push(json!({
            "name": plugin.name.as_str(),
            "world": plugin.world.to_string(),
            "wasm": plugin.wasm.display().to_string(),
            "hash": loaded.as_ref().and_then(|l| l.new_hash.clone()),
            "loaded_at": loaded.as_ref().map(|l| l.at.to_rfc3339()),
            "last_outcome": last.as_ref().map(|l| l.outcome),
            "last_at": last.as_ref().map(|l| l.at.to_rfc3339()),
            "last_error": last.as_ref().and_then(|l| l.error.clone()),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<6} {:<14} {:<26} LAST RELOAD",
        "PLUGIN", "WORLD", "HASH", "LOADED AT"
    );
    for row in &rows {
        let hash = row["hash"].as_str().map_or("-", |h| &h[..12]);
        let last = match (row["last_outcome"].as_str(), row["last_error"].as_str()) {
            (Some(outcome), Some(error)) => format!("{outcome}: {error}"),
            (Some(outcome), None) => outcome.to_owned(),
            _ => "-".to_owned(),
        };
        println!(
            "{:<16} {:<6} {:<14} {:<26} {last}",
            row["name"].as_str().unwrap_or_default(),
            row["world"].as_str().unwrap_or_default(),
            hash,
            row["loaded_at"].as_str().unwrap_or("never"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn reload(config: Config, plugin: Option<&str>) -> anyhow::Result<ExitCode> {
    let targets: Vec<String> = match plugin {
        Some(name) if config.plugin(name).is_none() => {
            bail!("no plugin named `{name}` in {}", config.file.display())
        }
        Some(name) => vec![name.to_owned()],
        None => config.plugins.iter().map(|p| p.name.to_string()).collect(),
    };
    let db = open_db(&config)?;
    let Some(pid) = control::running_host(&db).await? else {
        bail!(
            "no host is running on {}: nothing to reload",
            config.file.display()
        );
    };
    let after = loads::newest_id(&db).await?;
    control::request(&db, RequestKind::Reload, plugin.unwrap_or("")).await?;
    eprintln!(
        "asked the running host (pid {pid}) to reload {}",
        targets.join(", ")
    );
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while seen.len() < targets.len() {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the host did not answer the reload request within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for load in loads::since(&db, after).await? {
            if targets.contains(&load.plugin)
                && !seen.iter().any(|s: &loads::PluginLoad| s.plugin == load.plugin)
            {
                seen.push(load);
            }
        }
    }
    let mut refused = false;
    for load in &seen {
        refused |= load.outcome == LoadOutcome::Refused;
        match &load.error {
            Some(error) => println!("{}: {}: {error}", load.plugin, load.outcome),
            None => println!(
                "{}: {} ({})",
                load.plugin,
                load.outcome,
                load.new_hash.as_deref().map_or("-", |h| &h[..12])
            ),
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn open_db(config: &Config) -> anyhow::Result<Database> {
    std::fs::create_dir_all(&config.data_dir)?;
    Database::open(&config.data_dir.join(DATABASE_FILE))
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
