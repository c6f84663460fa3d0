//! `mission cost`: Claude spend grouped by plugin, caller, day or model, with the
//! cache hit rate and the month's projection, and the Agent SDK credit.

use std::process::ExitCode;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::open_db;
use crate::capabilities::claude::report::{cost_report, GroupBy};
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
        None => crate::capabilities::claude::ledger::month_start(now, zone),
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
        print!("{}", crate::untrusted::terminal(&report.render()));
    }
    Ok(ExitCode::SUCCESS)
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
