//! What Claude calls spend: [`admission`] before a call (the credit's
//! `then`, a place in line, the budgets), the [`ledger`] row every call
//! gets, refused or made, with the budgets summed from it, the Agent SDK
//! [`credit`], the alerts when a budget or the credit runs down, and the
//! [`report`]'s figures for `mission cost`, `/cost`, the page and the digest.

pub(crate) mod admission;
pub mod credit;
pub mod ledger;
pub mod report;

use std::time::Instant;

use chrono::Utc;

use super::scope::CallScope;
use crate::alerts;
use crate::config::claude::ClaudeConfig;
use crate::db::Database;
use crate::os::zone::host_zone;
use crate::wasm::bindings::task::mission::plugin::claude::Usage;
use ledger::{CallOutcome, LedgerEntry};

/// What a call used, whatever came of it.
#[derive(Debug, Clone)]
pub(crate) struct Spent {
    pub usage: Usage,
    pub cost_usd: f64,
    pub turns: u32,
    /// The model that answered, as the backend named it.
    pub model: Option<String>,
    /// Where the CLI's credentials came from, if it said.
    pub api_key_source: Option<String>,
}

impl Spent {
    /// This, with `model` (the one asked for) when the backend named none.
    pub fn or_model(self, model: Option<String>) -> Spent {
        Spent {
            model: self.model.or(model),
            ..self
        }
    }
}

impl Default for Spent {
    fn default() -> Self {
        Spent {
            usage: Usage {
                input_tokens: 0,
                output_tokens: 0,
                cache_write_tokens: 0,
                cache_read_tokens: 0,
            },
            cost_usd: 0.0,
            turns: 0,
            model: None,
            api_key_source: None,
        }
    }
}

/// Writes `entry` to the ledger; a failure is logged (the call's answer
/// still goes to the plugin).
pub(crate) async fn record(db: &Database, entry: LedgerEntry) {
    let plugin = entry.plugin.clone();
    if let Err(e) = ledger::record(db, entry).await {
        tracing::error!(%plugin, "failed to write the cost ledger: {e:#}");
    }
}

/// A call under way; if it is dropped before it finishes (the plugin's own
/// deadline cancelled it), it is recorded as `cancelled`, so the ledger
/// shows every call that was made.
pub(crate) struct Unfinished {
    pub db: Database,
    pub entry: Option<LedgerEntry>,
    pub started: Instant,
}

impl Unfinished {
    /// The call finished: its own record is written instead.
    pub fn finished(mut self) {
        self.entry = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(mut entry) = self.entry.take() else {
            return;
        };
        entry.outcome = CallOutcome::Cancelled;
        entry.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        entry.error = Some("the plugin's call ended before the answer".into());
        tracing::warn!(plugin = %entry.plugin, backend = %entry.backend, "claude call cancelled by the plugin's deadline");
        let db = self.db.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { record(&db, entry).await });
        }
    }
}

/// Tells `alerts_chat`, once per period, of a budget reaching 80 % and
/// 100 %, and of the credit (if the call `drew` from it) reaching 50 %,
/// 80 % and 100 %: each alert names its threshold, and a call that
/// crosses several of one budget's or the credit's tells the highest.
pub(crate) async fn tell_levels(
    db: &Database,
    config: &ClaudeConfig,
    alerts_chat: Option<i64>,
    scope: &CallScope<'_>,
    drew: bool,
) {
    let Some(chat) = alerts_chat else {
        return;
    };
    let (now, zone) = (Utc::now(), host_zone());
    // Per budget or credit period, the thresholds crossed and what each says.
    let mut crossed: Vec<(String, Vec<(u32, String)>)> = Vec::new();
    match admission::budget_levels(db, scope, config.budget, now, zone).await {
        Ok(levels) => {
            for level in levels {
                let percent = level.spent / level.limit.max(f64::MIN_POSITIVE) * 100.0;
                let marks = [80, 100].into_iter().filter(|m| percent >= f64::from(*m));
                let texts = marks.map(|mark| (mark, level.alert(mark))).collect();
                crossed.push((format!("budget:{}:{}", level.name, level.period_start), texts));
            }
        }
        Err(e) => tracing::error!(plugin = %scope.plugin, "reading the budgets failed: {e:#}"),
    }
    if let (true, Some(settings)) = (drew, config.credit) {
        match credit::status(db, &settings, now, zone).await {
            Ok(status) => {
                let marks = [50, 80, 100]
                    .into_iter()
                    .filter(|m| status.percent_used() >= f64::from(*m));
                let texts = marks
                    .map(|mark| (mark, status.alert(settings.then, mark, now, zone)))
                    .collect();
                crossed.push((credit::period_key(&status), texts));
            }
            Err(e) => tracing::error!("reading the Agent SDK credit failed: {e:#}"),
        }
    }
    for (key, texts) in crossed.into_iter().filter(|(_, texts)| !texts.is_empty()) {
        let alerts = texts
            .into_iter()
            .map(|(mark, text)| {
                let alert = alerts::Alert {
                    chat,
                    text,
                    schedule: None,
                    urgent: mark == 100,
                };
                (mark, alert)
            })
            .collect();
        if let Err(e) = alerts::highest_once(db, key, alerts).await {
            tracing::error!("failed to queue a Claude spending alert: {e:#}");
        }
    }
}
