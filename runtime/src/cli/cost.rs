//! `mission cost`: Claude spend grouped by plugin, caller, day or model, with the
//! cache hit rate and the month's projection, and the Agent SDK credit, as a
//! table or JSON.

use std::fmt::Write as _;
use std::process::ExitCode;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::open_db;
use crate::capabilities::claude::spend::report::{cost_report, CostReport, GroupBy};
use crate::config::Config;
use crate::os::zone::host_zone;

/// `mission cost`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// From this day (YYYY-MM-DD, host time zone) or this long ago
    /// (`7d`, `24h`); default: the start of this month.
    #[arg(long)]
    pub since: Option<String>,
    /// How to group the calls.
    #[arg(long, value_enum, default_value_t = GroupBy::Plugin)]
    pub by: GroupBy,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn cost(
    config: Config,
    since: Option<&str>,
    by: GroupBy,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let (now, zone) = (Utc::now(), host_zone());
    let since = match since {
        None => crate::capabilities::claude::spend::ledger::month_start(now, zone),
        Some(text) => parse_since(text, now, zone)?,
    };
    let budget = config.claude.as_ref().map(|c| c.budget).unwrap_or_default();
    let credit = config.claude.as_ref().and_then(|c| c.credit.as_ref());
    let report = cost_report(&db, since, by, now, zone)
        .await?
        .with_budget(budget)
        .with_credit(&db, credit, now, zone)
        .await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::untrusted::terminal(&render(&report)));
    }
    Ok(ExitCode::SUCCESS)
}

/// `report` as a table with a summary, for people.
fn render(report: &CostReport) -> String {
    let mut out = String::new();
    let by = match report.by {
        GroupBy::Plugin => "PLUGIN",
        GroupBy::Caller => "CALLER",
        GroupBy::Day => "DAY",
        GroupBy::Model => "MODEL",
    };
    let _ = writeln!(out, "Claude spend since {}", report.since);
    let _ = writeln!(
        out,
        "{by:<24} {:>6} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>6} {:>10}",
        "CALLS", "FAILED", "REFUSED", "INPUT", "OUTPUT", "CACHE-W", "CACHE-R", "HIT", "USD"
    );
    for line in report.lines.iter().chain(std::iter::once(&report.total)) {
        let _ = writeln!(
            out,
            "{:<24} {:>6} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>5.0}% {:>10.4}",
            line.key,
            line.calls,
            line.failed,
            line.refused,
            line.input_tokens,
            line.output_tokens,
            line.cache_write_tokens,
            line.cache_read_tokens,
            line.cache_hit_rate * 100.0,
            line.cost_usd
        );
    }
    let _ = writeln!(
        out,
        "today {} · this month {} · last 7 days ${:.2} · month projected {}",
        CostReport::against(report.today_usd, report.daily_budget_usd),
        CostReport::against(report.month_usd, report.monthly_budget_usd),
        report.last_7_days_usd,
        CostReport::against(report.projected_month_usd, report.monthly_budget_usd)
    );
    if let Some(credit) = &report.credit {
        let _ = writeln!(out, "{}", credit.summary);
        for line in &credit.by_plugin {
            let _ = writeln!(out, "  {:<22} ${:.2}", line.plugin, line.usd);
        }
    }
    out
}

/// `--since`: a date in `zone`, or a duration back from `now` (`7d`, `12h`).
pub(super) fn parse_since(text: &str, now: DateTime<Utc>, zone: Tz) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return zone
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.to_utc())
            .ok_or_else(|| anyhow::anyhow!("--since: {text} has no midnight in {zone}"));
    }
    let back = match text.strip_suffix('d') {
        Some(days) => days.parse::<u32>().ok().map(|d| chrono::Duration::days(d.into())),
        None => crate::config::units::HumanDuration::parse(text)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d.0).ok()),
    };
    back.map(|back| now - back).ok_or_else(|| {
        anyhow::anyhow!("--since: `{text}` is neither a date (2026-11-01) nor a span back (7d, 12h)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::claude::spend::report::CostLine;
    use crate::config::claude::Budget;

    #[test]
    fn the_table_ends_with_the_month_projected_against_the_budget() {
        let report = CostReport {
            since: "2026-11-01T00:00:00+00:00".into(),
            by: GroupBy::Plugin,
            lines: Vec::new(),
            total: CostLine {
                key: "total".into(),
                ..CostLine::default()
            },
            today_usd: 1.5,
            month_usd: 4.5,
            last_7_days_usd: 3.5,
            projected_month_usd: 4.5 + 0.5 * 6.5,
            daily_budget_usd: None,
            monthly_budget_usd: None,
            credit: None,
        };
        assert!(
            render(&report).contains("month projected $7.75\n"),
            "{}",
            render(&report)
        );
        let budget = Budget {
            daily_usd: None,
            monthly_usd: Some(10.0),
        };
        let report = report.with_budget(budget);
        assert!(
            render(&report).contains("this month $4.50 of $10.00 (45%)")
                && render(&report).contains("month projected $7.75 of $10.00 (78%)"),
            "{}",
            render(&report)
        );
    }
}
