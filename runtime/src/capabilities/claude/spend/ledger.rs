//! The cost ledger: one `claude_calls` row per call (what it used and cost,
//! or why it was refused), and the budgets summed from it before every call.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;

use super::Spent;
use crate::config::claude::{Backend, Budget};
use crate::config::PluginName;
use crate::db::retention::{period, Rule};
use crate::db::{datetime, text_enum, Database};

text_enum! {
    /// How a call ended, as the ledger records it.
    pub enum CallOutcome {
        /// Answered.
        Ok = "ok",
        /// Made, but failed (the reason is kept).
        Failed = "failed",
        /// Stopped at its deadline.
        TimedOut = "timed_out",
        /// Refused before it started: a budget was spent.
        OverBudget = "over_budget",
        /// Abandoned when the plugin's own call ended first; what it spent is
        /// not known.
        Cancelled = "cancelled",
    }
}

/// One row of the ledger.
#[derive(Debug, Clone)]
pub(crate) struct LedgerEntry {
    pub plugin: PluginName,
    pub backend: Backend,
    pub session_key: Option<String>,
    pub spent: Spent,
    pub duration_ms: u64,
    pub outcome: CallOutcome,
    pub error: Option<String>,
    /// Whether it drew from the Agent SDK credit.
    pub credit: bool,
    /// The plugin it was made for, if a tool made it.
    pub on_behalf_of: Option<PluginName>,
}

/// Appends `entry`, dated now.
pub(crate) async fn record(db: &Database, entry: LedgerEntry) -> anyhow::Result<()> {
    let at = Utc::now().timestamp_millis();
    let usage = &entry.spent.usage;
    crate::metrics::get().claude_call(
        entry.plugin.as_str(),
        entry.backend.as_str(),
        usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens,
        usage.output_tokens,
        entry.spent.cost_usd,
    );
    db.call(move |c| {
        let usage = &entry.spent.usage;
        c.execute(
            "INSERT INTO claude_calls (at, plugin, backend, model, session_key, input_tokens,
                 output_tokens, cache_write_tokens, cache_read_tokens, cost_usd, turns,
                 duration_ms, outcome, error, credit, on_behalf_of)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            rusqlite::params![
                at,
                entry.plugin.as_str(),
                entry.backend.as_str(),
                entry.spent.model,
                entry.session_key,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_write_tokens,
                usage.cache_read_tokens,
                entry.spent.cost_usd,
                entry.spent.turns,
                entry.duration_ms,
                entry.outcome.as_str(),
                entry.error,
                entry.credit,
                entry.on_behalf_of.as_ref().map(PluginName::as_str),
            ],
        )
    })
    .await
    .map(drop)
}

/// The start of the calendar day and month of `now` in `zone`, in Unix
/// milliseconds.
pub fn day_and_month_start(now: DateTime<Utc>, zone: Tz) -> (i64, i64) {
    let local = now.with_timezone(&zone).date_naive();
    let start = |date| midnight(date, zone).unwrap_or(now).timestamp_millis();
    let first = local.with_day(1).expect("every month has a first day");
    (start(local), start(first))
}

/// The start of `date` in `zone` (in a zone that skips midnight, a DST
/// change at 00:00, the hour after).
pub fn midnight(date: chrono::NaiveDate, zone: Tz) -> Option<DateTime<Utc>> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    zone.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// The start of the calendar month of `now` in `zone`: where `mission cost`
/// and `/cost` begin by default.
pub fn month_start(now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
    datetime(day_and_month_start(now, zone).1)
}

/// The sum of amounts of money, in USD: the one place money is added up
/// outside SQL. It starts from +0.0, where `Iterator::sum` of no floats
/// gives -0.0, which reads "$-0.00" and "-0%" and goes into JSON as -0.0.
pub fn sum_usd(amounts: impl IntoIterator<Item = f64>) -> f64 {
    amounts.into_iter().fold(0.0, |total, usd| total + usd)
}

/// What has been spent so far today and this month.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Spending {
    plugin_day: f64,
    plugin_month: f64,
    all_day: f64,
    all_month: f64,
}

/// Where a plugin stands against its budgets and the global ones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BudgetStatus {
    /// The budget that is spent and by how much, if one is.
    pub spent: Option<String>,
    /// What the tightest budget still allows, if any budget is set.
    pub left: Option<f64>,
}

/// One budget against what it counts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BudgetLevel {
    /// Which budget, as its refusal names it.
    pub name: String,
    /// Which period: "today" or "this month".
    pub period: &'static str,
    /// Where its period began, as a key for alerts told once per period.
    pub period_start: i64,
    /// Its limit, in USD.
    pub limit: f64,
    /// Spent so far in its period.
    pub spent: f64,
}

impl BudgetLevel {
    /// The alert for this budget reaching `mark` % (80 or 100), naming it.
    pub(crate) fn alert(&self, mark: u32) -> String {
        let what = match mark {
            100 => "is spent: further calls are refused".to_owned(),
            mark => format!("is {mark} % spent"),
        };
        format!(
            "💸 Claude: {} of ${:.2} {what} (${:.2} {}).",
            self.name, self.limit, self.spent, self.period
        )
    }
}

/// Each budget set for `plugin` (`own`) and all plugins (`global`) at `now`,
/// days and months counted in `zone`, with what it has spent: its own
/// calls and those its tools made for it.
pub(crate) async fn budget_levels(
    db: &Database,
    plugin: &PluginName,
    own: Budget,
    global: Budget,
    now: DateTime<Utc>,
    zone: Tz,
) -> anyhow::Result<Vec<BudgetLevel>> {
    if [own, global]
        .iter()
        .all(|b| b.daily_usd.is_none() && b.monthly_usd.is_none())
    {
        return Ok(Vec::new());
    }
    let (day, month) = day_and_month_start(now, zone);
    let name = plugin.to_string();
    let spending = db
        .call(move |c| {
            c.query_row(
                "SELECT COALESCE(SUM(CASE WHEN ?1 IN (plugin, on_behalf_of) AND at >= ?2 THEN cost_usd END), 0),
                        COALESCE(SUM(CASE WHEN ?1 IN (plugin, on_behalf_of) THEN cost_usd END), 0),
                        COALESCE(SUM(CASE WHEN at >= ?2 THEN cost_usd END), 0),
                        COALESCE(SUM(cost_usd), 0)
                 FROM claude_calls WHERE at >= ?3",
                (name, day, month),
                |row| {
                    Ok(Spending {
                        plugin_day: row.get(0)?,
                        plugin_month: row.get(1)?,
                        all_day: row.get(2)?,
                        all_month: row.get(3)?,
                    })
                },
            )
        })
        .await?;
    let checks = [
        (
            own.daily_usd,
            spending.plugin_day,
            format!("plugin `{plugin}`'s daily budget"),
            "today",
            day,
        ),
        (
            own.monthly_usd,
            spending.plugin_month,
            format!("plugin `{plugin}`'s monthly budget"),
            "this month",
            month,
        ),
        (
            global.daily_usd,
            spending.all_day,
            "the daily budget of all plugins".to_owned(),
            "today",
            day,
        ),
        (
            global.monthly_usd,
            spending.all_month,
            "the monthly budget of all plugins".to_owned(),
            "this month",
            month,
        ),
    ];
    Ok(checks
        .into_iter()
        .filter_map(|(limit, spent, name, period, period_start)| {
            Some(BudgetLevel {
                name,
                period,
                period_start,
                limit: limit?,
                spent,
            })
        })
        .collect())
}

impl BudgetStatus {
    /// Where `levels` stand: the first that is spent, and what the
    /// tightest still allows.
    pub fn of(levels: Vec<BudgetLevel>) -> BudgetStatus {
        let mut status = BudgetStatus {
            spent: None,
            left: None,
        };
        for level in levels {
            let BudgetLevel {
                name,
                period,
                limit,
                spent,
                ..
            } = level;
            if spent >= limit && status.spent.is_none() {
                status.spent = Some(format!("{name} of ${limit:.2} is spent (${spent:.4} {period})"));
            }
            let left = (limit - spent).max(0.0);
            status.left = Some(status.left.map_or(left, |l: f64| l.min(left)));
        }
        status
    }
}

/// How the ledger goes: after `[retention] claude_calls`.
pub const RETENTION: &[Rule] = &[Rule {
    table: "claude_calls",
    kind: "claude_calls",
    delete: "DELETE FROM claude_calls WHERE id IN (SELECT id FROM claude_calls WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.retention.claude_calls,
    kept: |p| period(p.retention.claude_calls),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::bindings::task::mission::plugin::claude::Usage;

    fn entry(plugin: &str, cost_usd: f64) -> LedgerEntry {
        LedgerEntry {
            plugin: PluginName::parse(plugin).unwrap(),
            backend: Backend::Cli,
            session_key: None,
            spent: Spent {
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    cache_write_tokens: 0,
                    cache_read_tokens: 0,
                },
                cost_usd,
                turns: 1,
                model: Some("sonnet".into()),
                api_key_source: None,
            },
            duration_ms: 100,
            outcome: CallOutcome::Ok,
            error: None,
            credit: false,
            on_behalf_of: None,
        }
    }

    #[test]
    fn day_and_month_start_follow_the_zone() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T03:30:00Z")
            .unwrap()
            .to_utc();
        let zone: Tz = "America/New_York".parse().unwrap();
        let (day, month) = day_and_month_start(now, zone);
        // 23:30 on the 9th in New York (EDT starts on the 8th at 02:00).
        assert_eq!(
            day,
            DateTime::parse_from_rfc3339("2026-03-09T00:00:00-04:00")
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            month,
            DateTime::parse_from_rfc3339("2026-03-01T00:00:00-05:00")
                .unwrap()
                .timestamp_millis()
        );
    }

    #[tokio::test]
    async fn a_spent_budget_is_named_and_others_are_not_counted_against_a_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        record(&db, entry("a", 0.60)).await.unwrap();
        record(&db, entry("b", 0.50)).await.unwrap();
        let a = PluginName::parse("a").unwrap();
        let (now, zone) = (Utc::now(), Tz::UTC);
        let own = Budget {
            daily_usd: Some(1.0),
            monthly_usd: None,
        };
        let none = Budget::default();
        let status = BudgetStatus::of(budget_levels(&db, &a, own, none, now, zone).await.unwrap());
        assert_eq!(status.spent, None);
        assert!((status.left.unwrap() - 0.40).abs() < 1e-9, "{status:?}");
        let global = Budget {
            daily_usd: None,
            monthly_usd: Some(1.10),
        };
        let status = BudgetStatus::of(budget_levels(&db, &a, own, global, now, zone).await.unwrap());
        assert_eq!(
            status.spent.as_deref(),
            Some("the monthly budget of all plugins of $1.10 is spent ($1.1000 this month)")
        );
        assert_eq!(status.left, Some(0.0));
        record(&db, entry("a", 0.40)).await.unwrap();
        let status = BudgetStatus::of(budget_levels(&db, &a, own, none, now, zone).await.unwrap());
        assert_eq!(
            status.spent.as_deref(),
            Some("plugin `a`'s daily budget of $1.00 is spent ($1.0000 today)")
        );
        let unlimited = BudgetStatus::of(budget_levels(&db, &a, none, none, now, zone).await.unwrap());
        assert_eq!(
            unlimited,
            BudgetStatus {
                spent: None,
                left: None
            }
        );
    }

    #[tokio::test]
    async fn what_a_tool_spends_for_a_plugin_counts_against_its_budget_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let (assistant, crm) = (
            PluginName::parse("assistant").unwrap(),
            PluginName::parse("crm").unwrap(),
        );
        record(&db, entry("assistant", 0.30)).await.unwrap();
        let for_assistant = LedgerEntry {
            on_behalf_of: Some(assistant.clone()),
            ..entry("crm", 0.50)
        };
        record(&db, for_assistant).await.unwrap();
        let (now, zone) = (Utc::now(), Tz::UTC);
        let daily = |usd| Budget {
            daily_usd: Some(usd),
            monthly_usd: None,
        };
        let spent = |levels: Vec<BudgetLevel>| levels.iter().map(|l| l.spent).sum::<f64>();
        let none = Budget::default();
        let levels = budget_levels(&db, &assistant, daily(1.0), none, now, zone)
            .await
            .unwrap();
        assert!((spent(levels) - 0.80).abs() < 1e-9);
        // The tools plugin's own budget counts it too; the global one once.
        let levels = budget_levels(&db, &crm, daily(1.0), none, now, zone)
            .await
            .unwrap();
        assert!((spent(levels) - 0.50).abs() < 1e-9);
        let levels = budget_levels(&db, &crm, none, daily(1.0), now, zone)
            .await
            .unwrap();
        assert!((spent(levels) - 0.80).abs() < 1e-9);
    }
}
