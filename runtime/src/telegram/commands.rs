//! The commands the host answers itself, never the chat plugin: `/reset`
//! (forget this chat's history and Claude session), `/status` (uptime, the
//! chat plugin's version, Claude processes, the last runs) and `/cost`
//! (Claude spend this month against the budget).

use std::time::Instant;

use super::bot::ChatHost;
use super::updates::UpdateOutcome;
use crate::claude::ledger;
use crate::claude::report::{self, GroupBy};
use crate::config::PluginName;
use crate::runs;

/// A command the host answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Forget this chat's history and Claude session.
    Reset,
    /// Uptime, the chat plugin's version, the last runs.
    Status,
    /// Claude spend this month, and the projection.
    Cost,
}

impl Command {
    /// The command `text` is, if any: `/reset`, also as `/reset@bot_name`.
    pub fn parse(text: &str) -> Option<Command> {
        let word = text.trim();
        let word = word.split_once('@').map_or(word, |(command, _bot)| command);
        match word {
            "/reset" => Some(Command::Reset),
            "/status" => Some(Command::Status),
            "/cost" => Some(Command::Cost),
            _ => None,
        }
    }

    /// What the update's record says it was.
    pub fn outcome(self) -> UpdateOutcome {
        match self {
            Command::Reset => UpdateOutcome::Reset,
            Command::Status => UpdateOutcome::Status,
            Command::Cost => UpdateOutcome::Cost,
        }
    }
}

/// What the commands read.
pub struct Context<'a> {
    /// The host.
    pub host: &'a dyn ChatHost,
    /// The chat plugin that answers.
    pub handler: &'a PluginName,
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
    let live = context.host.claude().live_processes().await.len();
    if live > 0 {
        lines.push(format!("Claude: {live} persistent session process(es) running."));
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

async fn cost(context: &Context<'_>) -> String {
    let (now, zone) = (chrono::Utc::now(), crate::schedule::host_zone());
    let since = ledger::month_start(now, zone);
    let budget = context.host.claude().budget();
    match report::cost_report(context.host.db(), since, GroupBy::Plugin, now, zone).await {
        Ok(report) => report.with_budget(budget).summary(),
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
        assert_eq!(Command::parse("please /reset"), None);
    }
}
