//! The commands the host answers itself, never the chat plugin: `/reset`
//! (forget this chat's history, Claude session and tools allowed for it),
//! `/status` (uptime, the chat plugin's version, shadow handlers, Claude
//! processes, the last tool approvals and runs) and `/cost` (Claude spend
//! this month against the budget).

use std::time::Instant;

use super::chat_calls;
use super::updates::{self, UpdateOutcome};
use crate::capabilities::claude::approvals;
use crate::capabilities::claude::ledger;
use crate::capabilities::claude::report::{self, GroupBy};
use crate::config::PluginName;
use crate::host::runs;
use crate::os::zone::host_zone;
use crate::plugin::call::HandlerRole;
use crate::triggers::Invoker;

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
    let (now, zone) = (chrono::Utc::now(), host_zone());
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
