//! The schedule commands: `schedules`, `runs`, `trigger`, `pause`,
//! `resume` and `schedule next`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::call::{print_run, report_run};
use super::open_db;
use crate::config::after::check_schedule_name;
use crate::config::units::HumanDuration;
use crate::config::Config;
use crate::host::runs::{self, StartedBy};
use crate::os::zone::host_zone;
use crate::serve::control::{self, RequestKind};
use crate::triggers::schedule::{self, chains, CronExpr, FollowUpsRun, Schedule};
use crate::triggers::Invoker;

/// `mission schedules`'s arguments.
#[derive(Debug, clap::Args)]
pub struct SchedulesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mission runs`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only runs of this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Only this run, shown whole: its summary and error uncut.
    #[arg(long, conflicts_with = "schedule")]
    pub id: Option<i64>,
    /// Only runs that did not succeed.
    #[arg(long)]
    pub failed: bool,
    /// Only runs since a date (2026-11-01) or a span back (24h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only runs whose error, summary or output contains this text.
    #[arg(long)]
    pub grep: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl RunsArgs {
    /// Lists the runs asked for, or shows the one.
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        if let Some(id) = self.id {
            return show_run(config, id, self.json).await;
        }
        let since = self
            .since
            .map(|text| super::cost::parse_since(&text, chrono::Utc::now(), host_zone()))
            .transpose()?;
        let filter = runs::RunFilter {
            schedule: self.schedule,
            failed: self.failed,
            since,
            grep: self.grep,
        };
        list_runs(config, filter, self.limit, self.json).await
    }
}

/// `mission trigger`'s arguments.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// The schedule's name (its file's stem).
    pub schedule: String,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mission pause` and `mission resume`'s argument.
#[derive(Debug, clap::Args)]
pub struct NamedSchedule {
    /// The schedule's name.
    pub schedule: String,
}

/// `mission schedule ...`
#[derive(Debug, clap::Subcommand)]
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

impl ScheduleCommand {
    /// Runs it: it needs no config.
    pub(super) fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            ScheduleCommand::Next {
                expr,
                tz,
                from,
                count,
            } => schedule_next(&expr, tz.as_deref(), from.as_deref(), count),
        }
    }
}

pub(super) fn schedule_next(
    expr: &str,
    tz: Option<&str>,
    from: Option<&str>,
    count: usize,
) -> anyhow::Result<ExitCode> {
    let cron = CronExpr::parse(expr).map_err(|e| anyhow!(e))?;
    let zone: Tz = match tz {
        Some(tz) => tz
            .parse()
            .map_err(|_| anyhow!("--tz: `{tz}` is not an IANA time zone name"))?,
        None => host_zone(),
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
        say!("{}", schedule::format_in_zone(next, zone));
        at = next;
    }
    Ok(ExitCode::SUCCESS)
}

/// The named schedule from the schedules directory, or an error saying why not.
fn find_schedule(config: &Config, name: &str) -> anyhow::Result<Schedule> {
    check_schedule_name(name).map_err(anyhow::Error::msg)?;
    let file = config.schedules_dir.join(format!("{name}.toml"));
    if !file.exists() {
        bail!("no schedule named `{name}`: {} does not exist", file.display());
    }
    Ok(Schedule::load(&file, config, host_zone())?)
}

pub(super) async fn list_schedules(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let (schedules, errors) = schedule::load_all(&config, host_zone());
    let now = Utc::now();
    let mut rows = Vec::new();
    for schedule in &schedules {
        let paused = schedule::state::is_paused(&db, &schedule.name).await?;
        let last = runs::recent(&db, Some(&schedule.name), 1).await?.pop();
        let next = schedule
            .timing
            .next_after(now, schedule.zone)
            .map(|t| schedule::format_in_zone(t, schedule.zone));
        rows.push(json!({
            "name": schedule.name,
            "plugin": schedule.plugin,
            "cron": schedule.timing.cron(),
            "every": schedule.timing.every().map(|e| HumanDuration(e).to_string()),
            "when": schedule.timing.to_string(),
            "timezone": schedule.zone.name(),
            "next": next,
            "paused": paused,
            "last_outcome": last.as_ref().map(|r| r.outcome),
            "last_run_at": last.as_ref().map(|r| r.started_at.to_rfc3339()),
            "from_the_chat": schedule.origin,
        }));
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        say!(
            "{:<24} {:<20} {:<28} {:<8} LAST",
            "SCHEDULE",
            "CRON",
            "NEXT",
            "PAUSED"
        );
        for row in &rows {
            say!(
                "{:<24} {:<20} {:<28} {:<8} {}",
                row["name"].as_str().unwrap_or_default(),
                row["when"].as_str().unwrap_or_default(),
                row["next"].as_str().unwrap_or("never"),
                if row["paused"] == true { "yes" } else { "no" },
                row["last_outcome"].as_str().unwrap_or("-"),
            );
            if let Some(origin) = row["from_the_chat"].as_str() {
                say!("  from the chat: {origin}");
            }
        }
    }
    for error in &errors {
        eprintln!(
            "schedule refused: {}",
            crate::untrusted::terminal(&error.to_string())
        );
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) async fn list_runs(
    config: Config,
    filter: runs::RunFilter,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let records = runs::search(&db, filter, limit).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<6} {:<20} {:<16} {:<10} {:<26} {:>3} {:<20} DETAIL",
        "RUN",
        "SCHEDULE",
        "PLUGIN",
        "TRIGGER",
        "STARTED",
        "#",
        "OUTCOME"
    );
    for r in &records {
        let said = r
            .error
            .as_deref()
            .or(r.summary.as_deref())
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        let detail = match &r.pressed {
            Some(pressed) => format!("{pressed}: {said}"),
            None => said.to_owned(),
        };
        say!(
            "{:<6} {:<20} {:<16} {:<10} {:<26} {:>3} {:<20} {}",
            r.id,
            r.schedule.as_deref().unwrap_or("-"),
            r.plugin,
            r.trigger,
            r.started_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            r.attempt,
            r.state(),
            detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn show_run(config: Config, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let record = runs::get(&db, id)
        .await?
        .ok_or_else(|| anyhow!("there is no run {id} (see `mission runs`)"))?;
    let children = runs::followed_by(&db, id).await?;
    if json {
        let mut shown = serde_json::to_value(&record)?;
        shown["followed_by"] = serde_json::to_value(&children)?;
        say!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_run(&record);
    if let Some(parent) = record.parent_run {
        say!("started by the end of run {parent}");
    }
    if let Some(wakeup) = record.wakeup {
        say!("woken by wake-up {wakeup} (`later`)");
    }
    if let Some(pressed) = &record.pressed {
        say!("started by a press: {pressed}");
    }
    for child in children {
        say!(
            "followed by run {} ({}): {}",
            child.id,
            child
                .schedule
                .clone()
                .unwrap_or_else(|| format!("plugin {}", child.plugin)),
            child.state()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn trigger(config: Config, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    check_schedule_name(name).map_err(anyhow::Error::msg)?;
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
            let host = super::open_host(config).await?;
            host.load(&schedule.plugin).await?;
            let scheduler = schedule::scheduler(&Invoker::new(host.clone()), FollowUpsRun::ByTheHost);
            scheduler.run_now(name, StartedBy::Direct).await;
            let record = runs::recent(host.db(), Some(name), 1)
                .await?
                .pop()
                .ok_or_else(|| anyhow!("the run of `{name}` left no record"))?;
            let queued = chains::waiting(host.db(), Some(record.id)).await?;
            if !queued.is_empty() {
                let names: Vec<String> = queued.iter().map(|q| q.follower.to_string()).collect();
                eprintln!(
                    "queued what follows it: {} (run by the host: `mission up`)",
                    names.join(", ")
                );
            }
            record
        }
    };
    report_run(&record, json)
}

pub(super) async fn set_paused(config: Config, name: &str, paused: bool) -> anyhow::Result<ExitCode> {
    find_schedule(&config, name)?;
    let db = open_db(&config)?;
    schedule::state::set_paused(&db, name, paused).await?;
    say!("schedule `{name}` {}", if paused { "paused" } else { "resumed" });
    Ok(ExitCode::SUCCESS)
}
