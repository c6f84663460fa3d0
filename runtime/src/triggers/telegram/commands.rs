//! The commands the host answers itself, never the chat plugin: `/reset`
//! (forget this chat's history, Claude session and tools allowed for it),
//! `/status` (uptime, the chat plugin's version, shadow handlers, Claude
//! processes, the last tool approvals and runs), `/cost` (Claude spend
//! this month against the budget), and the jobs from the phone:
//! `/schedules`, `/runs` (the latest failures), `/run NAME` (queued like
//! `mission trigger`), `/pause NAME` and `/resume NAME`; and `/stop`, which
//! ends the chat's running Claude turn.

use std::time::Instant;

use super::chat_calls;
use super::updates::{self, UpdateOutcome};
use crate::capabilities::claude::approvals;
use crate::capabilities::claude::report;
use crate::config::PluginName;
use crate::host::requests::{self, RequestKind};
use crate::host::runs;
use crate::os::zone::host_zone;
use crate::plugin::call::HandlerRole;
use crate::triggers::schedule;
use crate::triggers::Invoker;

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
            Command::Schedules | Command::Runs | Command::Run(_) | Command::Pause(_) | Command::Resume(_) => {
                UpdateOutcome::Jobs
            }
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

/// The latest failed runs, newest first.
async fn failed_runs(context: &Context<'_>) -> String {
    match runs::recent(context.host.db(), None, 200).await {
        Ok(runs) => {
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| !r.succeeded() && r.outcome != runs::RunOutcome::Running)
                .take(5)
                .map(|r| {
                    let what = r.schedule.as_deref().unwrap_or(&r.plugin);
                    let error = r.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("");
                    format!(
                        "#{} {what} {} {}: {}",
                        r.id,
                        r.outcome,
                        r.started_at.format("%m-%d %H:%M UTC"),
                        error.chars().take(120).collect::<String>()
                    )
                })
                .collect();
            match failed.is_empty() {
                true => "No failed runs among the latest 200.".to_owned(),
                false => failed.join("\n"),
            }
        }
        Err(e) => {
            tracing::error!("failed to read runs: {e:#}");
            "Sorry, I could not read the runs.".to_owned()
        }
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
        assert_eq!(Command::parse("/stop@mission_bot"), Some(Command::Stop));
        assert_eq!(Command::parse("/status now"), None);
        assert_eq!(Command::parse("please /reset"), None);
    }
}
