//! The commands the host answers itself, never the chat plugin: `/reset`
//! (forget this chat's history, Claude session and tools allowed for it),
//! `/status` (uptime, the chat plugin's version, shadow handlers, Claude
//! processes, the last tool approvals and runs), `/cost` (Claude spend
//! this month against the budget), and the jobs from the phone:
//! `/schedules`, `/runs` (the latest failures, each with its cause),
//! `/runs ID` (one run's whole error), `/run NAME` (queued like `mission
//! trigger`), `/pause NAME` and `/resume NAME`; and `/stop`, which ends the
//! chat's running Claude turn. Times are in each schedule's zone.

use std::collections::HashMap;
use std::time::Instant;

use chrono_tz::Tz;

use super::chat_calls;
use super::updates::{self, UpdateOutcome};
use crate::approvals;
use crate::capabilities::claude::spend::report;
use crate::config::PluginName;
use crate::host::requests::{self, RequestKind};
use crate::host::runs;
use crate::os::zone::host_zone;
use crate::plugin::call::HandlerRole;
use crate::triggers::schedule;
use crate::triggers::Invoker;
use crate::untrusted;

/// A command the host answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Forget this chat's history and Claude session.
    Reset,
    /// Uptime, the chat plugin's version, the last runs.
    Status,
    /// Claude spend this month, and the projection.
    Cost,
    /// Each schedule: when, next, paused, last outcome.
    Schedules,
    /// The latest failed runs.
    Runs,
    /// One run's whole error (`/runs 4`): the run's id as written.
    RunDetails(String),
    /// Run the schedule now, through the scheduler.
    Run(String),
    /// Pause the schedule.
    Pause(String),
    /// Resume the schedule.
    Resume(String),
    /// End the chat's running Claude turn (handled at once, outside the
    /// chat's queue).
    Stop,
}

impl Command {
    /// The command `text` is, if any: `/reset`, also as `/reset@bot_name`,
    /// with its argument for those that take one (`/run backup`).
    pub fn parse(text: &str) -> Option<Command> {
        let text = text.trim();
        let (word, argument) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let word = word.split_once('@').map_or(word, |(command, _bot)| command);
        let argument = argument.trim().to_owned();
        match (word, argument.is_empty()) {
            ("/reset", true) => Some(Command::Reset),
            ("/status", true) => Some(Command::Status),
            ("/cost", true) => Some(Command::Cost),
            ("/schedules", true) => Some(Command::Schedules),
            ("/runs", true) => Some(Command::Runs),
            ("/runs", false) => Some(Command::RunDetails(argument)),
            ("/run", _) => Some(Command::Run(argument)),
            ("/pause", _) => Some(Command::Pause(argument)),
            ("/resume", _) => Some(Command::Resume(argument)),
            ("/stop", true) => Some(Command::Stop),
            _ => None,
        }
    }

    /// What the update's record says it was.
    pub fn outcome(&self) -> UpdateOutcome {
        match self {
            Command::Reset => UpdateOutcome::Reset,
            Command::Status => UpdateOutcome::Status,
            Command::Cost => UpdateOutcome::Cost,
            Command::Stop => UpdateOutcome::Stopped,
            Command::Schedules
            | Command::Runs
            | Command::RunDetails(_)
            | Command::Run(_)
            | Command::Pause(_)
            | Command::Resume(_) => UpdateOutcome::Jobs,
        }
    }
}

/// What the commands read.
pub struct Context<'a> {
    /// The host.
    pub host: &'a Invoker,
    /// The chat plugin that answers.
    pub handler: &'a PluginName,
    /// The shadow handlers.
    pub shadows: &'a [PluginName],
    /// When the bot started.
    pub started: Instant,
}

/// The reply to `command` in `chat`. A failure is logged and the reply says
/// so in a word.
pub async fn answer(command: Command, chat: i64, context: &Context<'_>) -> String {
    match command {
        Command::Reset => reset(chat, context).await,
        Command::Status => status(context).await,
        Command::Cost => cost(context).await,
        Command::Schedules => schedules(context).await,
        Command::Runs => failed_runs(context).await,
        Command::RunDetails(id) => run_details(context, &id).await,
        Command::Run(name) => run_now(context, &name).await,
        Command::Pause(name) => set_paused(context, &name, true).await,
        Command::Resume(name) => set_paused(context, &name, false).await,
        Command::Stop => match context.host.claude().stop_chat(chat) {
            0 => "Nothing is running here to stop.".to_owned(),
            _ => "⏹ Stopping Claude's answer. Messages you sent meanwhile are answered next.".to_owned(),
        },
    }
}

/// Each schedule, one a line: when, the next run in its zone, its last outcome.
async fn schedules(context: &Context<'_>) -> String {
    let config = context.host.config();
    let (schedules, refused) = schedule::load_all(&config, host_zone());
    if schedules.is_empty() {
        return "No schedules.".to_owned();
    }
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    for s in &schedules {
        let db = context.host.db();
        let paused = schedule::state::is_paused(db, &s.name).await.unwrap_or(false);
        let next = match (paused, s.timing.next_after(now, s.zone)) {
            (true, _) => "paused".to_owned(),
            (false, Some(next)) => format!("next {}", next.with_timezone(&s.zone).format("%a %H:%M %Z")),
            (false, None) => "never".to_owned(),
        };
        let last = match runs::recent(db, Some(&s.name), 1).await {
            Ok(runs) => runs
                .first()
                .map_or("not run yet".to_owned(), |r| format!("last {}", r.outcome)),
            Err(e) => {
                tracing::error!("failed to read runs: {e:#}");
                "last unknown".to_owned()
            }
        };
        lines.push(format!("{}: {} — {next}, {last}", s.name, s.timing));
    }
    if !refused.is_empty() {
        lines.push(format!(
            "{} schedule file(s) refused: see `mission schedules`.",
            refused.len()
        ));
    }
    lines.join("\n")
}

/// The most of a run's error `/runs ID` shows, in characters (its end,
/// where the cause is, kept).
const ERROR_CHARS: usize = 3000;

/// The zone of each schedule, and the one for runs of none: `[alerts]
/// timezone`, else the host's.
struct Zones {
    schedules: HashMap<String, Tz>,
    otherwise: Tz,
}

impl Zones {
    fn of(context: &Context<'_>) -> Zones {
        let config = context.host.config();
        let (schedules, _) = schedule::load_all(&config, host_zone());
        Zones {
            schedules: schedules.into_iter().map(|s| (s.name, s.zone)).collect(),
            otherwise: config.alerts.as_ref().map_or_else(host_zone, |a| a.zone),
        }
    }

    /// The zone `run`'s times are told in.
    fn of_run(&self, run: &runs::RunRecord) -> Tz {
        run.schedule
            .as_ref()
            .and_then(|s| self.schedules.get(s))
            .copied()
            .unwrap_or(self.otherwise)
    }
}

/// The latest failed runs, newest first, each with the cause of its error.
async fn failed_runs(context: &Context<'_>) -> String {
    match runs::recent(context.host.db(), None, 200).await {
        Ok(runs) => {
            let zones = Zones::of(context);
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| !r.succeeded() && r.outcome != runs::RunOutcome::Running)
                .take(5)
                .map(|r| {
                    let what = r.schedule.as_deref().unwrap_or(&r.plugin);
                    let cause = r
                        .error
                        .as_deref()
                        .map(schedule::alerts::cause)
                        .unwrap_or_default();
                    format!(
                        "#{} {what} {} {}: {cause}",
                        r.id,
                        schedule::alerts::outcome_phrase(r.outcome),
                        schedule::alerts::at(r.started_at, zones.of_run(r)),
                    )
                })
                .collect();
            match failed.is_empty() {
                true => "No failed runs among the latest 200.".to_owned(),
                false => failed.join("\n") + "\nSend /runs ID (such as /runs 4) for one run's whole error.",
            }
        }
        Err(e) => {
            tracing::error!("failed to read runs: {e:#}");
            "Sorry, I could not read the runs.".to_owned()
        }
    }
}

/// One run: what it was, how it ended and when, and its whole error (its
/// end within [`ERROR_CHARS`], controls escaped).
async fn run_details(context: &Context<'_>, id: &str) -> String {
    let Ok(id) = id.trim_start_matches('#').parse::<i64>() else {
        return "Which run? For example: /runs 4 (/runs lists the latest failures).".to_owned();
    };
    let run = match runs::get(context.host.db(), id).await {
        Ok(Some(run)) => run,
        Ok(None) => return format!("There is no run #{id}."),
        Err(e) => {
            tracing::error!(run = id, "failed to read the run: {e:#}");
            return "Sorry, I could not read the run.".to_owned();
        }
    };
    let zone = Zones::of(context).of_run(&run);
    let took = run
        .finished_at
        .map(|end| {
            let took = schedule::alerts::took((end - run.started_at).to_std().unwrap_or_default());
            format!(" and took {took}")
        })
        .unwrap_or_default();
    let head = format!(
        "Run #{id} of {} (plugin {}) {}. It started {}{took}.",
        run.schedule.as_deref().unwrap_or("no schedule"),
        run.plugin,
        schedule::alerts::outcome_phrase(run.outcome),
        schedule::alerts::at(run.started_at, zone),
    );
    match run.error {
        Some(error) => format!("{head}\n\n{}", whole_error(&error)),
        None => head,
    }
}

/// `error` for a chat message: its lines kept, other controls written as
/// escapes (as [`untrusted::terminal`] does for a terminal), and only its
/// end if it is longer than [`ERROR_CHARS`].
fn whole_error(error: &str) -> String {
    let printable: Vec<char> = untrusted::terminal(error).chars().collect();
    match printable.len() > ERROR_CHARS {
        true => format!(
            "(only its end:) …{}",
            String::from_iter(&printable[printable.len() - ERROR_CHARS..])
        ),
        false => String::from_iter(printable),
    }
}

/// Whether `name` is one of the schedules now; else the reply saying so.
fn known_schedule(context: &Context<'_>, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Which schedule? For example: /run backup (see /schedules).".to_owned());
    }
    let (schedules, _) = schedule::load_all(&context.host.config(), host_zone());
    match schedules.iter().any(|s| s.name == name) {
        true => Ok(()),
        false => Err(format!("There is no schedule named {name} (see /schedules).")),
    }
}

/// Queues a run of `name` for the scheduler, as `mission trigger` does.
async fn run_now(context: &Context<'_>, name: &str) -> String {
    if let Err(reply) = known_schedule(context, name) {
        return reply;
    }
    match requests::request(context.host.db(), RequestKind::Trigger, name).await {
        Ok(id) => format!("{name} runs now (request {id}); /runs shows it if it fails."),
        Err(e) => {
            tracing::error!(schedule = name, "failed to queue a run: {e:#}");
            "Sorry, I could not queue the run.".to_owned()
        }
    }
}

async fn set_paused(context: &Context<'_>, name: &str, paused: bool) -> String {
    if let Err(reply) = known_schedule(context, name) {
        return reply;
    }
    match schedule::state::set_paused(context.host.db(), name, paused).await {
        Ok(()) => match paused {
            true => format!("{name} is paused: /resume {name} starts it again."),
            false => format!("{name} runs on its schedule again."),
        },
        Err(e) => {
            tracing::error!(schedule = name, "failed to change the schedule: {e:#}");
            "Sorry, I could not change the schedule.".to_owned()
        }
    }
}

async fn reset(chat: i64, context: &Context<'_>) -> String {
    match context.host.forget(context.handler, &chat.to_string()).await {
        Ok(()) => "History cleared: I start afresh.".to_owned(),
        Err(e) => {
            tracing::error!(chat, "failed to clear history: {e:#}");
            "Sorry, I could not clear the history.".to_owned()
        }
    }
}

async fn status(context: &Context<'_>) -> String {
    let uptime = context.started.elapsed().as_secs();
    let mut lines = vec![format!(
        "Mission Control up {}h {:02}m.",
        uptime / 3600,
        (uptime % 3600) / 60
    )];
    if let Some(plugin) = context.host.plugin(context.handler.as_str()) {
        lines.push(format!(
            "Chat plugin `{}`: version {} loaded {}.",
            plugin.name(),
            plugin.hash.short(),
            plugin.loaded_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    lines.extend(shadows(context).await);
    let live = context.host.claude().live_processes().await.len();
    if live > 0 {
        lines.push(format!("Claude: {live} persistent session process(es) running."));
    }
    match approvals::recent(context.host.db(), 3).await {
        Ok(recent) if !recent.is_empty() => {
            lines.push("Last tool approvals:".to_owned());
            for approval in recent {
                let by = approval
                    .decided_by_name
                    .map(|name| format!(" by {name}"))
                    .unwrap_or_default();
                lines.push(format!(
                    "- {} ({}): {}{by} at {}",
                    approval.tool,
                    approval.summary.chars().take(60).collect::<String>(),
                    approval.outcome,
                    approval.asked_at.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!("failed to read tool approvals for /status: {e:#}"),
    }
    match runs::recent(context.host.db(), None, 5).await {
        Ok(recent) if !recent.is_empty() => {
            lines.push("Last runs:".to_owned());
            for run in recent {
                lines.push(format!(
                    "- {} ({}): {} at {}",
                    run.schedule.as_deref().unwrap_or("manual"),
                    run.plugin,
                    run.outcome,
                    run.started_at.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
        Ok(_) => lines.push("No runs yet.".to_owned()),
        Err(e) => tracing::error!("failed to read runs for /status: {e:#}"),
    }
    lines.join("\n")
}

/// A line per shadow handler: messages and errors over the last day.
async fn shadows(context: &Context<'_>) -> Vec<String> {
    if context.shadows.is_empty() {
        return Vec::new();
    }
    let now = chrono::Utc::now();
    let figures =
        match chat_calls::shadow_report(context.host.db(), now - chrono::Duration::hours(24), now).await {
            Ok(report) => report.handlers,
            Err(e) => {
                tracing::error!("failed to read chat calls for /status: {e:#}");
                Vec::new()
            }
        };
    let mut lines =
        vec!["Shadow handlers running (replies never sent; `mission shadow report` compares):".to_owned()];
    for shadow in context.shadows {
        let line = match figures
            .iter()
            .find(|f| f.plugin == shadow.as_str() && f.role == HandlerRole::Shadow)
        {
            Some(f) => format!(
                "- {shadow}: {} messages in 24h, p50 {} ms, {} errors, {} timeouts",
                f.messages, f.p50_ms, f.errors, f.timeouts
            ),
            None => format!("- {shadow}: no messages in 24h"),
        };
        lines.push(line);
    }
    match updates::owed_count(context.host.db()).await {
        Ok(0) => {}
        Ok(owed) => lines.push(format!("- {owed} messages not handed to them yet")),
        Err(e) => tracing::error!("failed to count the messages owed to shadow handlers: {e:#}"),
    }
    lines
}

async fn cost(context: &Context<'_>) -> String {
    let config = context.host.config();
    let Some(claude) = &config.claude else {
        return "Claude is not configured here.".to_owned();
    };
    match report::month_report(context.host.db(), claude, chrono::Utc::now(), host_zone()).await {
        Ok(report) => report.summary(),
        Err(e) => {
            tracing::error!("failed to read the cost ledger for /cost: {e:#}");
            "Sorry, I could not read the cost ledger.".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_with_or_without_the_bot_name() {
        assert_eq!(Command::parse(" /reset "), Some(Command::Reset));
        assert_eq!(Command::parse("/status@mission_bot"), Some(Command::Status));
        assert_eq!(Command::parse("/cost"), Some(Command::Cost));
        assert_eq!(Command::parse("/resetting"), None);
        assert_eq!(
            Command::parse("/run  backup "),
            Some(Command::Run("backup".into()))
        );
        assert_eq!(
            Command::parse("/pause@mission_bot nightly"),
            Some(Command::Pause("nightly".into()))
        );
        assert_eq!(Command::parse("/schedules"), Some(Command::Schedules));
        assert_eq!(Command::parse("/runs"), Some(Command::Runs));
        assert_eq!(
            Command::parse("/runs@mission_bot #4"),
            Some(Command::RunDetails("#4".into()))
        );
        assert_eq!(Command::parse("/stop@mission_bot"), Some(Command::Stop));
        assert_eq!(Command::parse("/status now"), None);
        assert_eq!(Command::parse("please /reset"), None);
    }

    #[test]
    fn a_whole_error_keeps_its_lines_and_its_end_and_escapes_other_controls() {
        assert_eq!(
            whole_error("fetching orders\n\x1b]0;owned\x07\tcaused by: refused"),
            "fetching orders\n\\u{1b}]0;owned\\u{7}\tcaused by: refused"
        );
        let long = format!("{}the cause", "x".repeat(ERROR_CHARS * 2));
        let shown = whole_error(&long);
        assert!(shown.starts_with("(only its end:) …x") && shown.ends_with("the cause"));
        assert_eq!(
            shown.chars().count(),
            "(only its end:) …".chars().count() + ERROR_CHARS
        );
    }
}
