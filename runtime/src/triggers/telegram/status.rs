//! The bot's section of the status page: whether it polls, its handler,
//! the last message and what waits, the shadow handlers' last day, and the
//! latest tool uses asked about.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chat_calls::shadow_report;
use crate::approvals;
use crate::config::TelegramConfig;
use crate::db::Database;
use crate::display::local;
use crate::plugin::call::HandlerRole;

/// The bot.
#[derive(Debug, Serialize)]
pub struct TelegramStatus {
    /// Whether it polls (its token is set).
    pub polling: bool,
    /// The plugin that answers.
    pub handler: String,
    /// When the last message came, host time.
    pub last_message_at: Option<String>,
    /// Updates stored and not yet handled.
    pub pending: u64,
    /// The shadow handlers, with their last day's figures.
    pub shadows: Vec<ShadowStatus>,
    /// The latest tool-use approvals.
    pub approvals: Vec<ApprovalStatus>,
}

/// A shadow handler over the last day.
#[derive(Debug, Serialize)]
pub struct ShadowStatus {
    /// The plugin.
    pub plugin: String,
    /// Messages it was given.
    pub messages: u64,
    /// Its median latency.
    pub p50_ms: u64,
    /// Calls that failed or timed out.
    pub failed: u64,
}

/// One tool use asked about.
#[derive(Debug, Serialize)]
pub struct ApprovalStatus {
    /// When, host time.
    pub asked_at: String,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// What came of it.
    pub outcome: String,
    /// Whether the tool ran.
    pub allowed: bool,
    /// Who decided, for a press.
    pub by: Option<String>,
}

/// The bot configured as `telegram` as of `now`; `polling` if its token is
/// set and it polls.
pub async fn section(
    db: &Database,
    telegram: &TelegramConfig,
    polling: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<TelegramStatus> {
    let (last, pending): (Option<i64>, u64) = db
        .call(|c| {
            c.query_row(
                "SELECT max(received_at), count(*) FILTER (WHERE handled_at IS NULL) FROM telegram_updates",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await?;
    let day = shadow_report(db, now - chrono::Duration::hours(24), now).await?;
    let shadows = telegram
        .shadow
        .iter()
        .map(|name| {
            let figures = day
                .handlers
                .iter()
                .find(|h| h.plugin == name.as_str() && h.role == HandlerRole::Shadow);
            ShadowStatus {
                plugin: name.to_string(),
                messages: figures.map_or(0, |f| f.messages),
                p50_ms: figures.map_or(0, |f| f.p50_ms),
                failed: figures.map_or(0, |f| f.errors + f.timeouts + f.over_budget),
            }
        })
        .collect();
    let approvals = approvals::recent(db, 5)
        .await?
        .into_iter()
        .map(|a| ApprovalStatus {
            asked_at: local(a.asked_at),
            allowed: a.outcome.allowed(),
            outcome: a.outcome.to_string(),
            tool: a.tool,
            summary: a.summary,
            by: a.decided_by_name,
        })
        .collect();
    Ok(TelegramStatus {
        polling,
        handler: telegram.handler.to_string(),
        last_message_at: last.map(|ms| local(crate::db::datetime(ms))),
        pending,
        shadows,
        approvals,
    })
}
