//! Every chat handler call measured, the live handler's and each shadow's
//! (`chat_calls`): latency, outcome, reply length, Claude tokens and cost,
//! history entries given. And the [`ShadowReport`] that sets them side by
//! side, for deciding whether a candidate handler should take over.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capabilities::CallStats;
use crate::db::retention::{period, Rule};
use crate::db::{text_enum, Database};
use crate::plugin::call::{CallError, CallReport, HandlerRole, Reply};

text_enum! {
    /// What came of one handler call, as the pilot counts it.
    pub enum ChatCallOutcome {
        /// It answered (or chose not to) and Claude, if asked, answered.
        Ok = "ok",
        /// It failed, trapped, ran out of memory, or a Claude call failed.
        Error = "error",
        /// It, or a Claude call of it, ran out of time.
        Timeout = "timeout",
        /// A Claude call of it was refused over a budget.
        OverBudget = "over_budget",
    }
}

/// One handler call, as recorded.
#[derive(Debug, Clone)]
pub struct ChatCall {
    /// The Telegram update it answered, if it came from the bot.
    pub update_id: Option<i64>,
    /// The chat.
    pub chat_id: i64,
    /// The handler.
    pub plugin: String,
    /// Live or shadow.
    pub role: HandlerRole,
    /// When the call started.
    pub started_at: DateTime<Utc>,
    /// How long the call took.
    pub latency: Duration,
    /// What came of it.
    pub outcome: ChatCallOutcome,
    /// Why it was not ok.
    pub error: Option<String>,
    /// The reply's length in characters (0 without one).
    pub reply_chars: u64,
    /// What it drew on.
    pub stats: CallStats,
}

impl ChatCall {
    /// The record of `report`, the call of `plugin` in `role` for `chat_id`.
    pub fn of(
        report: &CallReport<Option<Reply>>,
        plugin: &str,
        role: HandlerRole,
        chat_id: i64,
        update_id: Option<i64>,
    ) -> ChatCall {
        let stats = &report.stats;
        let (outcome, error) = match &report.result {
            Err(e @ CallError::TimedOut { .. }) => (ChatCallOutcome::Timeout, Some(e.to_string())),
            Err(e) => (ChatCallOutcome::Error, Some(e.to_string())),
            Ok(_) if stats.claude_over_budget > 0 => (
                ChatCallOutcome::OverBudget,
                Some("a Claude call was refused over a budget".into()),
            ),
            Ok(_) if stats.claude_timeouts > 0 => (
                ChatCallOutcome::Timeout,
                Some("a Claude call ran out of time".into()),
            ),
            Ok(_) if stats.claude_failures > 0 => {
                (ChatCallOutcome::Error, Some("a Claude call failed".into()))
            }
            Ok(_) => (ChatCallOutcome::Ok, None),
        };
        let reply_chars = match &report.result {
            Ok(Some(reply)) => reply.text.chars().count() as u64,
            _ => 0,
        };
        ChatCall {
            update_id,
            chat_id,
            plugin: plugin.to_owned(),
            role,
            started_at: Utc::now() - report.duration,
            latency: report.duration,
            outcome,
            error,
            reply_chars,
            stats: stats.clone(),
        }
    }

    /// The record of a call that could not be made (the plugin not loaded).
    pub fn unmade(
        plugin: &str,
        role: HandlerRole,
        chat_id: i64,
        update_id: Option<i64>,
        error: String,
    ) -> ChatCall {
        ChatCall {
            update_id,
            chat_id,
            plugin: plugin.to_owned(),
            role,
            started_at: Utc::now(),
            latency: Duration::ZERO,
            outcome: ChatCallOutcome::Error,
            error: Some(error),
            reply_chars: 0,
            stats: CallStats::default(),
        }
    }
}

/// Records `call`; a failure is logged (the call's reply is unaffected).
pub async fn record(db: &Database, call: ChatCall) {
    let plugin = call.plugin.clone();
    if let Err(e) = db.call(move |c| insert(c, &call)).await {
        tracing::error!(%plugin, "failed to record the chat call: {e:#}");
    }
}

/// Records `call` on the caller's transaction.
pub fn insert(transaction: &rusqlite::Connection, call: &ChatCall) -> rusqlite::Result<()> {
    let s = &call.stats;
    transaction
        .prepare_cached(
            "INSERT INTO chat_calls (at, update_id, chat_id, plugin, role, latency_ms, outcome, error,
                 reply_chars, claude_calls, input_tokens, output_tokens, context_tokens, cost_usd, history_given)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(rusqlite::params![
            call.started_at.timestamp_millis(),
            call.update_id,
            call.chat_id,
            call.plugin,
            call.role,
            i64::try_from(call.latency.as_millis()).unwrap_or(i64::MAX),
            call.outcome,
            call.error,
            call.reply_chars,
            s.claude_calls,
            s.input_tokens,
            s.output_tokens,
            s.context_tokens,
            s.cost_usd,
            s.history_given,
        ])
        .map(drop)
}

/// One handler's figures over the report's window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HandlerFigures {
    /// The plugin.
    pub plugin: String,
    /// Live or shadow.
    pub role: HandlerRole,
    /// Messages it was given.
    pub messages: u64,
    /// Median latency.
    pub p50_ms: u64,
    /// 95th percentile latency.
    pub p95_ms: u64,
    /// Calls that were errors.
    pub errors: u64,
    /// Calls that timed out.
    pub timeouts: u64,
    /// Calls refused over a budget.
    pub over_budget: u64,
    /// `errors / messages`.
    pub error_rate: f64,
    /// `timeouts / messages`.
    pub timeout_rate: f64,
    /// What its Claude calls cost over the window, US dollars.
    pub cost_usd: f64,
    /// That per message.
    pub cost_per_message: f64,
    /// A 30-day month at the window's rate of messages and cost.
    pub month_projected_usd: f64,
    /// History entries it read per message.
    pub mean_history: f64,
    /// Claude context tokens (input, cache reads and writes) per message.
    pub mean_context_tokens: f64,
    /// Reply length per message, in characters.
    pub mean_reply_chars: f64,
}

/// The live handler and each shadow side by side.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// The window's start: `--since`, or the first shadow call after it.
    pub from: DateTime<Utc>,
    /// Its end.
    pub to: DateTime<Utc>,
    /// The live handler first, then the shadows.
    pub handlers: Vec<HandlerFigures>,
}

/// The figures of every handler called since `since`, over the pilot's
/// window: from the first message a shadow handled after `since` (so the
/// live handler is measured over the same messages), or `since` when there
/// is none.
pub async fn shadow_report(
    db: &Database,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<ShadowReport> {
    let since_ms = since.timestamp_millis();
    let rows = db
        .call(move |c| {
            // Every call for that message counts, even one that started
            // just before `since`.
            let first_shadow: Option<i64> = c.query_row(
                "SELECT MIN(at) FROM chat_calls WHERE update_id =
                     (SELECT MIN(update_id) FROM chat_calls WHERE role = 'shadow' AND at >= ?1)",
                [since_ms],
                |r| r.get(0),
            )?;
            let from = first_shadow.unwrap_or(since_ms);
            let mut select = c.prepare(
                "SELECT plugin, role, latency_ms, outcome, cost_usd, history_given, context_tokens, reply_chars
                 FROM chat_calls WHERE at >= ?1 ORDER BY id",
            )?;
            let rows = select.query_map([from], |r| {
                Ok(Row {
                    plugin: r.get(0)?,
                    role: r.get(1)?,
                    latency_ms: r.get(2)?,
                    outcome: r.get(3)?,
                    cost_usd: r.get(4)?,
                    history_given: r.get(5)?,
                    context_tokens: r.get(6)?,
                    reply_chars: r.get(7)?,
                })
            })?;
            Ok((from, rows.collect::<rusqlite::Result<Vec<Row>>>()?))
        })
        .await?;
    let (from, rows) = rows;
    let from = crate::db::datetime(from);
    let days = ((now - from).num_seconds().max(3600) as f64) / 86_400.0;
    let mut by_handler: BTreeMap<(bool, String), Vec<Row>> = BTreeMap::new();
    for row in rows {
        let shadow = row.role == HandlerRole::Shadow;
        by_handler
            .entry((shadow, row.plugin.clone()))
            .or_default()
            .push(row);
    }
    let handlers = by_handler
        .into_values()
        .map(|rows| figures(&rows, days))
        .collect();
    Ok(ShadowReport {
        from,
        to: now,
        handlers,
    })
}

struct Row {
    plugin: String,
    role: HandlerRole,
    latency_ms: u64,
    outcome: ChatCallOutcome,
    cost_usd: f64,
    history_given: u64,
    context_tokens: u64,
    reply_chars: u64,
}

fn figures(rows: &[Row], days: f64) -> HandlerFigures {
    let n = rows.len() as u64;
    let count = |outcome| rows.iter().filter(|r| r.outcome == outcome).count() as u64;
    let mut latencies: Vec<u64> = rows.iter().map(|r| r.latency_ms).collect();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        // Nearest rank.
        let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    let mean = |value: fn(&Row) -> f64| rows.iter().map(value).sum::<f64>() / n as f64;
    let cost_usd = rows.iter().fold(0.0, |total, r| total + r.cost_usd);
    let (errors, timeouts) = (count(ChatCallOutcome::Error), count(ChatCallOutcome::Timeout));
    HandlerFigures {
        plugin: rows[0].plugin.clone(),
        role: rows[0].role,
        messages: n,
        p50_ms: percentile(0.50),
        p95_ms: percentile(0.95),
        errors,
        timeouts,
        over_budget: count(ChatCallOutcome::OverBudget),
        error_rate: errors as f64 / n as f64,
        timeout_rate: timeouts as f64 / n as f64,
        cost_usd,
        cost_per_message: cost_usd / n as f64,
        month_projected_usd: cost_usd / days * 30.0,
        mean_history: mean(|r| r.history_given as f64),
        mean_context_tokens: mean(|r| r.context_tokens as f64),
        mean_reply_chars: mean(|r| r.reply_chars as f64),
    }
}

/// How one line of the table shows a handler.
type Cell = fn(&HandlerFigures) -> String;

impl ShadowReport {
    /// The report as a table, one column per handler.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Chat handlers from {} to {} ({}):\n",
            self.from.format("%Y-%m-%d %H:%M UTC"),
            self.to.format("%Y-%m-%d %H:%M UTC"),
            crate::config::units::span((self.to - self.from).to_std().unwrap_or_default())
        );
        if self.handlers.is_empty() {
            out.push_str("No chat handler calls recorded in that time.\n");
            return out;
        }
        if !self.handlers.iter().any(|h| h.role == HandlerRole::Shadow) {
            out.push_str("No shadow handler ran in that time (set `shadow = [..]` under [telegram]).\n");
        }
        let lines: [(&str, Cell); 12] = [
            ("", |h| format!("{} ({})", h.plugin, h.role)),
            ("messages", |h| h.messages.to_string()),
            ("latency p50", |h| format!("{} ms", h.p50_ms)),
            ("latency p95", |h| format!("{} ms", h.p95_ms)),
            ("errors", |h| {
                format!("{} ({:.1}%)", h.errors, h.error_rate * 100.0)
            }),
            ("timeouts", |h| {
                format!("{} ({:.1}%)", h.timeouts, h.timeout_rate * 100.0)
            }),
            ("over budget", |h| h.over_budget.to_string()),
            ("cost / message", |h| format!("${:.4}", h.cost_per_message)),
            ("month at this rate", |h| format!("${:.2}", h.month_projected_usd)),
            ("history given", |h| format!("{:.1}", h.mean_history)),
            ("context tokens", |h| format!("{:.0}", h.mean_context_tokens)),
            ("reply length", |h| format!("{:.0} chars", h.mean_reply_chars)),
        ];
        let cells: Vec<Vec<String>> = lines
            .iter()
            .map(|(_, cell)| self.handlers.iter().map(cell).collect())
            .collect();
        let label_width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..self.handlers.len())
            .map(|i| cells.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
            .collect();
        for ((label, _), row) in lines.iter().zip(&cells) {
            out.push_str(&format!("{label:<label_width$}"));
            for (cell, width) in row.iter().zip(&widths) {
                out.push_str(&format!("  {cell:>width$}"));
            }
            out.push('\n');
        }
        out
    }
}

/// How chat call records go: after `[retention] chat_calls`.
pub const RETENTION: &[Rule] = &[Rule {
    table: "chat_calls",
    kind: "chat_calls",
    delete: "DELETE FROM chat_calls WHERE id IN (SELECT id FROM chat_calls WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.retention.chat_calls,
    kept: |p| period(p.retention.chat_calls),
}];

#[cfg(test)]
mod tests {
    use super::*;

    /// Update `update`'s call, started `update` seconds after `start`.
    fn call(
        plugin: &str,
        role: HandlerRole,
        update: i64,
        ms: u64,
        outcome: ChatCallOutcome,
        cost: f64,
    ) -> ChatCall {
        let start = Utc::now() - chrono::Duration::minutes(30);
        ChatCall {
            update_id: Some(update),
            chat_id: 1,
            plugin: plugin.into(),
            role,
            started_at: start
                + chrono::Duration::seconds(update)
                + chrono::Duration::milliseconds((role == HandlerRole::Shadow).into()),
            latency: Duration::from_millis(ms),
            outcome,
            error: None,
            reply_chars: 10,
            stats: CallStats {
                cost_usd: cost,
                history_given: update as u64 % 2 * 4,
                context_tokens: 1000,
                ..CallStats::default()
            },
        }
    }

    #[tokio::test]
    async fn figures_of_a_scripted_pilot() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        // Before the pilot: a live call no shadow saw, out of the window.
        record(
            &db,
            call("live", HandlerRole::Live, 1, 5, ChatCallOutcome::Ok, 0.0),
        )
        .await;
        for update in 2..=11 {
            record(
                &db,
                call("live", HandlerRole::Live, update, 10, ChatCallOutcome::Ok, 0.01),
            )
            .await;
            let (latency, outcome) = match update {
                2 => (100, ChatCallOutcome::Error),
                3 | 4 => (100 * update as u64, ChatCallOutcome::Timeout),
                _ => (100 * update as u64, ChatCallOutcome::Ok),
            };
            record(
                &db,
                call("candidate", HandlerRole::Shadow, update, latency, outcome, 0.002),
            )
            .await;
        }
        let now = Utc::now();
        let report = shadow_report(&db, now - chrono::Duration::hours(48), now)
            .await
            .unwrap();
        let [live, candidate] = &report.handlers[..] else {
            panic!("{:?}", report.handlers)
        };
        assert_eq!(
            (live.plugin.as_str(), live.role, live.messages),
            ("live", HandlerRole::Live, 10)
        );
        assert_eq!((live.p50_ms, live.p95_ms, live.errors), (10, 10, 0));
        assert!((live.cost_per_message - 0.01).abs() < 1e-12);
        // Ten messages in half an hour count as an hour: 0.1 $/h over 30 days.
        assert!(
            (live.month_projected_usd - 0.1 * 24.0 * 30.0).abs() < 1e-9,
            "{live:?}"
        );
        assert_eq!(live.mean_history, 2.0);
        assert_eq!(candidate.role, HandlerRole::Shadow);
        // Latencies 100, 300, 400 … 1100 ms: nearest rank.
        assert_eq!((candidate.p50_ms, candidate.p95_ms), (600, 1100));
        assert_eq!((candidate.errors, candidate.timeouts), (1, 2));
        assert!((candidate.error_rate - 0.1).abs() < 1e-12 && (candidate.timeout_rate - 0.2).abs() < 1e-12);
        assert!((candidate.cost_per_message - 0.002).abs() < 1e-12);
        assert_eq!(candidate.mean_context_tokens, 1000.0);
        assert_eq!(candidate.mean_reply_chars, 10.0);
    }
}
