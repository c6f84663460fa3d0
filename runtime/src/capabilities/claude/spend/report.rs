//! The figures of `mission cost`, `/cost`, the page and the digest: spend
//! from the ledger grouped by plugin, caller, day or model, with token
//! counts, cache hit rate, and the month projected from the last seven
//! days' rate. The table `mission cost` prints is the CLI's.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::credit;
use super::ledger::CallOutcome;
use super::ledger::{day_and_month_start, sum_usd};
use crate::config::claude::{Budget, ClaudeConfig};
use crate::config::credit::CreditConfig;
use crate::db::{datetime, Database};

/// How `mission cost` groups calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By plugin.
    Plugin,
    /// By the plugin the call was made for: a tool's Claude calls count
    /// under the plugin whose Claude called the tool.
    Caller,
    /// By calendar day in the host's time zone.
    Day,
    /// By model.
    Model,
}

/// Calls and spend of one group (or all of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostLine {
    /// The plugin, day or model.
    pub key: String,
    /// Calls made (refused ones not counted).
    pub calls: u64,
    /// Of those, how many failed or timed out.
    pub failed: u64,
    /// Calls refused by a budget.
    pub refused: u64,
    /// Input tokens at the full rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    pub cache_write_tokens: u64,
    /// Input tokens read from the cache.
    pub cache_read_tokens: u64,
    /// Share of input tokens read from the cache, 0 to 1.
    pub cache_hit_rate: f64,
    /// US dollars.
    pub cost_usd: f64,
}

impl CostLine {
    fn add(&mut self, row: &Row) {
        if row.outcome == CallOutcome::OverBudget {
            self.refused += 1;
            return;
        }
        self.calls += 1;
        if row.outcome != CallOutcome::Ok {
            self.failed += 1;
        }
        self.input_tokens += row.input;
        self.output_tokens += row.output;
        self.cache_write_tokens += row.cache_write;
        self.cache_read_tokens += row.cache_read;
        self.cost_usd += row.cost_usd;
        let prompt = self.input_tokens + self.cache_write_tokens + self.cache_read_tokens;
        self.cache_hit_rate = if prompt == 0 {
            0.0
        } else {
            self.cache_read_tokens as f64 / prompt as f64
        };
    }
}

/// What `mission cost` shows.
#[derive(Debug, Clone, Serialize)]
pub struct CostReport {
    /// The first moment counted, RFC 3339.
    pub since: String,
    /// How the lines are grouped.
    pub by: GroupBy,
    /// One line per group, largest spend first (by day: in date order).
    pub lines: Vec<CostLine>,
    /// All groups together.
    pub total: CostLine,
    /// Spent today.
    pub today_usd: f64,
    /// Spent this calendar month.
    pub month_usd: f64,
    /// Spent over the last seven days.
    pub last_7_days_usd: f64,
    /// This month's spend if the last seven days' daily rate holds to its end.
    pub projected_month_usd: f64,
    /// `[claude.budget] daily_usd`, if set.
    pub daily_budget_usd: Option<f64>,
    /// `[claude.budget] monthly_usd`, if set.
    pub monthly_budget_usd: Option<f64>,
    /// The Agent SDK credit, if `[claude.credit]` is set.
    pub credit: Option<CreditReport>,
}

/// Where the Agent SDK credit stands, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct CreditReport {
    /// The credit of a period.
    pub monthly_usd: f64,
    /// Drawn this period.
    pub used_usd: f64,
    /// Left this period.
    pub left_usd: f64,
    /// The day the next period begins, in the host's zone.
    pub resets_on: String,
    /// The day it runs out at the last 7 days' pace, if before the reset.
    pub runs_out_on: Option<String>,
    /// Drawn per plugin this period, most first.
    pub by_plugin: Vec<PluginCredit>,
    /// One line, for people.
    pub summary: String,
}

/// One plugin's draw on the credit.
#[derive(Debug, Clone, Serialize)]
pub struct PluginCredit {
    /// The plugin.
    pub plugin: String,
    /// Drawn this period.
    pub usd: f64,
}

struct Row {
    at: i64,
    plugin: String,
    on_behalf_of: Option<String>,
    model: Option<String>,
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
    cost_usd: f64,
    outcome: CallOutcome,
}

/// This month's report by plugin under `claude`'s budgets and credit, as of
/// `now` in `zone`: what `/cost`, the page and the digest show.
pub async fn month_report(
    db: &Database,
    claude: &ClaudeConfig,
    now: DateTime<Utc>,
    zone: Tz,
) -> anyhow::Result<CostReport> {
    cost_report(
        db,
        super::ledger::month_start(now, zone),
        GroupBy::Plugin,
        now,
        zone,
    )
    .await?
    .with_budget(claude.budget)
    .with_credit(db, claude.credit.as_ref(), now, zone)
    .await
}

/// The report of calls since `since`, grouped `by`, as of `now` in `zone`.
pub async fn cost_report(
    db: &Database,
    since: DateTime<Utc>,
    by: GroupBy,
    now: DateTime<Utc>,
    zone: Tz,
) -> anyhow::Result<CostReport> {
    let (today, month) = day_and_month_start(now, zone);
    let week_ago = (now - Duration::days(7)).timestamp_millis();
    let earliest = since.timestamp_millis().min(month).min(week_ago);
    let rows = db
        .call(move |c| {
            let mut query = c.prepare(
                "SELECT at, plugin, model, input_tokens, output_tokens, cache_write_tokens,
                        cache_read_tokens, cost_usd, outcome, on_behalf_of
                 FROM claude_calls WHERE at >= ?1 ORDER BY at",
            )?;
            let rows = query.query_map([earliest], |row| {
                Ok(Row {
                    at: row.get(0)?,
                    plugin: row.get(1)?,
                    model: row.get(2)?,
                    input: row.get(3)?,
                    output: row.get(4)?,
                    cache_write: row.get(5)?,
                    cache_read: row.get(6)?,
                    cost_usd: row.get(7)?,
                    outcome: row.get(8)?,
                    on_behalf_of: row.get(9)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    let sum = |from: i64| sum_usd(rows.iter().filter(|r| r.at >= from).map(|r| r.cost_usd));
    let (today_usd, month_usd, last_7_days_usd) = (sum(today), sum(month), sum(week_ago));
    let mut groups: BTreeMap<String, CostLine> = BTreeMap::new();
    let mut total = CostLine {
        key: "total".into(),
        ..CostLine::default()
    };
    for row in rows.iter().filter(|r| r.at >= since.timestamp_millis()) {
        let key = match by {
            GroupBy::Plugin => row.plugin.clone(),
            GroupBy::Caller => row.on_behalf_of.clone().unwrap_or_else(|| row.plugin.clone()),
            GroupBy::Model => row.model.clone().unwrap_or_else(|| "(default)".into()),
            GroupBy::Day => datetime(row.at).with_timezone(&zone).date_naive().to_string(),
        };
        groups
            .entry(key.clone())
            .or_insert_with(|| CostLine {
                key,
                ..CostLine::default()
            })
            .add(row);
        total.add(row);
    }
    let mut lines: Vec<_> = groups.into_values().collect();
    if by != GroupBy::Day {
        lines.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then_with(|| a.key.cmp(&b.key)));
    }
    Ok(CostReport {
        since: since.with_timezone(&zone).to_rfc3339(),
        by,
        lines,
        total,
        today_usd,
        month_usd,
        last_7_days_usd,
        projected_month_usd: month_usd + last_7_days_usd / 7.0 * days_left_in_month(now, zone),
        daily_budget_usd: None,
        monthly_budget_usd: None,
        credit: None,
    })
}

/// Days (with the fraction) from `now` to the end of its month in `zone`.
fn days_left_in_month(now: DateTime<Utc>, zone: Tz) -> f64 {
    let local = now.with_timezone(&zone).date_naive();
    let next_month = if local.month() == 12 {
        NaiveDate::from_ymd_opt(local.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(local.year(), local.month() + 1, 1)
    }
    .expect("the first of a month exists");
    let end = next_month.and_hms_opt(0, 0, 0).expect("midnight exists");
    let end = zone
        .from_local_datetime(&end)
        .earliest()
        .map_or(now, |t| t.with_timezone(&Utc));
    (end - now).num_seconds().max(0) as f64 / 86_400.0
}

impl CostReport {
    /// The report with the global budgets it is measured against.
    pub fn with_budget(self, budget: Budget) -> CostReport {
        CostReport {
            daily_budget_usd: budget.daily_usd,
            monthly_budget_usd: budget.monthly_usd,
            ..self
        }
    }

    /// The report with where `credit` stands at `now`, days in `zone`.
    pub async fn with_credit(
        self,
        db: &Database,
        credit: Option<&CreditConfig>,
        now: DateTime<Utc>,
        zone: Tz,
    ) -> anyhow::Result<CostReport> {
        let Some(settings) = credit else {
            return Ok(self);
        };
        let status = credit::status(db, settings, now, zone).await?;
        let day = |t: DateTime<Utc>| t.with_timezone(&zone).format("%Y-%m-%d").to_string();
        let report = CreditReport {
            monthly_usd: status.monthly_usd,
            used_usd: status.used_usd,
            left_usd: status.left_usd(),
            resets_on: day(status.period.1),
            runs_out_on: status.runs_out(now).map(day),
            by_plugin: status
                .by_plugin
                .iter()
                .map(|(plugin, usd)| PluginCredit {
                    plugin: plugin.clone(),
                    usd: *usd,
                })
                .collect(),
            summary: status.summary(now, zone),
        };
        Ok(CostReport {
            credit: Some(report),
            ..self
        })
    }

    /// `$X`, and `of $B (P%)` against `budget` if there is one.
    pub fn against(spent: f64, budget: Option<f64>) -> String {
        match budget {
            Some(budget) if budget > 0.0 => {
                format!("${spent:.2} of ${budget:.2} ({:.0}%)", spent / budget * 100.0)
            }
            _ => format!("${spent:.2}"),
        }
    }

    /// Two lines for the bot's `/cost`, and the credit's.
    pub fn summary(&self) -> String {
        let credit = self
            .credit
            .as_ref()
            .map(|c| format!("\n{}", c.summary))
            .unwrap_or_default();
        format!(
            "Claude: today {}, this month {} ({} calls, cache hit {:.0}%).\nAt the last 7 days' rate the month ends near {}.",
            Self::against(self.today_usd, self.daily_budget_usd),
            Self::against(self.month_usd, self.monthly_budget_usd),
            self.total.calls,
            self.total.cache_hit_rate * 100.0,
            Self::against(self.projected_month_usd, self.monthly_budget_usd)
        ) + &credit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn insert(db: &Database, at: DateTime<Utc>, plugin: &str, model: &str, cost: f64, outcome: &str) {
        let (plugin, model, outcome) = (plugin.to_owned(), model.to_owned(), outcome.to_owned());
        db.call(move |c| {
            c.execute(
                "INSERT INTO claude_calls (at, plugin, backend, model, input_tokens, output_tokens,
                     cache_write_tokens, cache_read_tokens, cost_usd, turns, duration_ms, outcome)
                 VALUES (?1, ?2, 'api', ?3, 100, 50, 100, 800, ?4, 1, 10, ?5)",
                (at.timestamp_millis(), plugin, model, cost, outcome),
            )
        })
        .await
        .unwrap();
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[tokio::test]
    async fn by_caller_a_tool_s_calls_count_under_the_plugin_that_called_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = utc("2026-11-24T12:00:00Z");
        insert(&db, utc("2026-11-24T09:00:00Z"), "assistant", "opus", 1.0, "ok").await;
        insert(&db, utc("2026-11-24T09:01:00Z"), "crm", "haiku", 0.25, "ok").await;
        insert(&db, utc("2026-11-24T09:02:00Z"), "crm", "haiku", 0.5, "ok").await;
        db.call(|c| {
            c.execute(
                "UPDATE claude_calls SET on_behalf_of = 'assistant' WHERE cost_usd = 0.25",
                [],
            )
        })
        .await
        .unwrap();
        let since = utc("2026-11-01T00:00:00Z");
        let lines = |report: CostReport| -> Vec<(String, f64)> {
            report.lines.iter().map(|l| (l.key.clone(), l.cost_usd)).collect()
        };
        let by_plugin = lines(
            cost_report(&db, since, GroupBy::Plugin, now, Tz::UTC)
                .await
                .unwrap(),
        );
        assert_eq!(
            by_plugin,
            [("assistant".to_owned(), 1.0), ("crm".to_owned(), 0.75)]
        );
        let by_caller = lines(
            cost_report(&db, since, GroupBy::Caller, now, Tz::UTC)
                .await
                .unwrap(),
        );
        assert_eq!(
            by_caller,
            [("assistant".to_owned(), 1.25), ("crm".to_owned(), 0.5)]
        );
    }

    #[tokio::test]
    async fn a_ledger_with_no_calls_spent_zero_never_minus_zero() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = utc("2026-11-24T12:00:00Z");
        let report = cost_report(&db, utc("2026-11-01T00:00:00Z"), GroupBy::Plugin, now, Tz::UTC)
            .await
            .unwrap();
        let shown =
            [report.today_usd, report.month_usd, report.projected_month_usd].map(|usd| format!("${usd:.2}"));
        assert_eq!(shown, ["$0.00", "$0.00", "$0.00"]);
    }

    #[tokio::test]
    async fn an_untouched_agent_sdk_credit_reads_zero_used_never_minus_zero() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = utc("2026-11-24T12:00:00Z");
        // Spend through the API, which does not draw from the credit.
        insert(&db, utc("2026-11-24T09:00:00Z"), "assistant", "opus", 1.0, "ok").await;
        let credit = CreditConfig {
            monthly_usd: 20.0,
            resets: 1,
            then: crate::config::credit::WhenSpent::Stop,
            login: crate::config::credit::Login::Auto,
        };
        let report = cost_report(&db, utc("2026-11-01T00:00:00Z"), GroupBy::Plugin, now, Tz::UTC)
            .await
            .unwrap()
            .with_credit(&db, Some(&credit), now, Tz::UTC)
            .await
            .unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["credit"]["used_usd"].to_string(), "0.0", "{json}");
        assert!(
            report
                .summary()
                .contains("\nAgent SDK credit: $0.00 of $20.00 used (0%), $20.00 left until Dec 1;"),
            "{}",
            report.summary()
        );
    }

    #[tokio::test]
    async fn groups_sum_and_the_month_is_projected_from_the_last_week() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        // Noon on 2026-11-24; November has 6.5 days left.
        let now = utc("2026-11-24T12:00:00Z");
        insert(&db, utc("2026-10-30T10:00:00Z"), "briefing", "sonnet", 5.0, "ok").await;
        insert(&db, utc("2026-11-02T10:00:00Z"), "briefing", "sonnet", 1.0, "ok").await;
        insert(&db, utc("2026-11-20T10:00:00Z"), "assistant", "opus", 2.0, "ok").await;
        insert(
            &db,
            utc("2026-11-24T09:00:00Z"),
            "assistant",
            "opus",
            1.5,
            "failed",
        )
        .await;
        insert(
            &db,
            utc("2026-11-24T09:30:00Z"),
            "assistant",
            "opus",
            0.0,
            "over_budget",
        )
        .await;
        let since = utc("2026-11-01T00:00:00Z");
        let report = cost_report(&db, since, GroupBy::Plugin, now, Tz::UTC)
            .await
            .unwrap();
        let keys: Vec<_> = report
            .lines
            .iter()
            .map(|l| (l.key.as_str(), l.cost_usd))
            .collect();
        assert_eq!(keys, [("assistant", 3.5), ("briefing", 1.0)]);
        let assistant = &report.lines[0];
        assert_eq!((assistant.calls, assistant.failed, assistant.refused), (2, 1, 1));
        assert_eq!(report.total.cost_usd, 4.5);
        assert_eq!(report.total.input_tokens, 300);
        assert!((report.total.cache_hit_rate - 0.8).abs() < 1e-9);
        assert_eq!(report.today_usd, 1.5);
        assert_eq!(report.month_usd, 4.5);
        assert_eq!(report.last_7_days_usd, 3.5);
        assert!((report.projected_month_usd - (4.5 + 0.5 * 6.5)).abs() < 1e-9);
        let by_day = cost_report(&db, since, GroupBy::Day, now, Tz::UTC).await.unwrap();
        let days: Vec<_> = by_day.lines.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(days, ["2026-11-02", "2026-11-20", "2026-11-24"]);
    }
}
