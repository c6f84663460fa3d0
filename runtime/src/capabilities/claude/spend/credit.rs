//! The Agent SDK credit: which calls draw from it ([`draws`]), what of this
//! period's credit is used and left, per plugin, and the day it runs out at
//! the pace of the last 7 days ([`status`]). The ledger marks each call
//! that drew; the period begins on `[claude.credit] resets`, in the host's
//! zone.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use super::ledger::{midnight, sum_usd};
use crate::config::claude::{Backend, ClaudeConfig};
use crate::config::credit::{CreditConfig, Login, WhenSpent};
use crate::db::Database;

/// The window the pace is measured over.
const PACE_DAYS: i64 = 7;

/// Whether a call through `backend` draws from the credit: a CLI backend on
/// a subscription login. `api_key_source` is what the CLI said in its
/// `system/init` event, if it said (`"none"`: no API key, a subscription).
pub fn draws(config: &ClaudeConfig, backend: Backend, api_key_source: Option<&str>) -> bool {
    if backend == Backend::Api {
        return false;
    }
    match config.credit.map_or(Login::Auto, |c| c.login) {
        Login::Subscription => true,
        Login::ApiKey => false,
        Login::Auto => match api_key_source {
            Some(source) => source == "none",
            None => !cli_has_api_key(config),
        },
    }
}

/// Whether the CLI's environment carries an API key, which it would use
/// before a subscription login.
fn cli_has_api_key(config: &ClaudeConfig) -> bool {
    config.env.iter().any(|name| name == "ANTHROPIC_API_KEY")
        && std::env::var_os("ANTHROPIC_API_KEY").is_some_and(|key| !key.is_empty())
}

/// The credit period holding `now`: from the last `resets` day at midnight
/// in `zone` to the next.
pub fn period(now: DateTime<Utc>, resets: u32, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = now.with_timezone(&zone).date_naive();
    let this_month = local.with_day(resets).expect("resets is 1 to 28");
    let start = match this_month <= local {
        true => this_month,
        false => this_month - chrono::Months::new(1),
    };
    let end = start + chrono::Months::new(1);
    let start_of = |date| midnight(date, zone).unwrap_or(now);
    (start_of(start), start_of(end))
}

/// Where the credit stands.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditStatus {
    /// The credit of the period.
    pub monthly_usd: f64,
    /// Drawn so far this period.
    pub used_usd: f64,
    /// The period.
    pub period: (DateTime<Utc>, DateTime<Utc>),
    /// Drawn per plugin this period, most first.
    pub by_plugin: Vec<(String, f64)>,
    /// Drawn per day over the last 7 days.
    pub pace_per_day: f64,
}

impl CreditStatus {
    /// What is left (never below zero).
    pub fn left_usd(&self) -> f64 {
        (self.monthly_usd - self.used_usd).max(0.0)
    }

    /// Whether nothing is left.
    pub fn spent(&self) -> bool {
        self.used_usd >= self.monthly_usd
    }

    /// The share used, 0 to 100 (and past it for extra usage).
    pub fn percent_used(&self) -> f64 {
        self.used_usd / self.monthly_usd * 100.0
    }

    /// When it runs out at the last 7 days' pace, if before the period ends.
    pub fn runs_out(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.spent() {
            return Some(now);
        }
        if self.pace_per_day <= 0.0 {
            return None;
        }
        let seconds = self.left_usd() / self.pace_per_day * 86_400.0;
        let at = now + chrono::Duration::seconds(seconds.min(1e10) as i64);
        (at < self.period.1).then_some(at)
    }

    /// One line: used and left, the reset and the run-out day, in `zone`.
    pub fn summary(&self, now: DateTime<Utc>, zone: Tz) -> String {
        let day = |t: DateTime<Utc>| t.with_timezone(&zone).format("%b %-d").to_string();
        let pace = match self.runs_out(now) {
            Some(_) if self.spent() => "spent".to_owned(),
            Some(at) => format!("runs out about {} at the last 7 days' pace", day(at)),
            None => "lasts the period at the last 7 days' pace".to_owned(),
        };
        format!(
            "Agent SDK credit: ${:.2} of ${:.2} used ({:.0}%), ${:.2} left until {}; {pace}.",
            self.used_usd,
            self.monthly_usd,
            self.percent_used(),
            self.left_usd(),
            day(self.period.1)
        )
    }

    /// The alert for the credit reaching `mark` % (50, 80 or 100): the
    /// threshold, where the credit stands, and at 100 % what calls do now
    /// (`then`).
    pub fn alert(&self, then: WhenSpent, mark: u32, now: DateTime<Utc>, zone: Tz) -> String {
        let headline = match mark {
            100 => "💳 The Agent SDK credit is spent.".to_owned(),
            mark => format!("💳 {mark} % of the Agent SDK credit is used."),
        };
        let then = match (mark, then) {
            (100, WhenSpent::Stop) => " Calls through the claude CLI stop until it resets.",
            (100, WhenSpent::Api) => " Calls go to the API backend where grants allow it.",
            (100, WhenSpent::Continue) => " Calls go on as extra usage at API rates.",
            _ => "",
        };
        format!("{headline} {}{then}", self.summary(now, zone))
    }
}

/// The credit's status at `now`.
pub async fn status(
    db: &Database,
    credit: &CreditConfig,
    now: DateTime<Utc>,
    zone: Tz,
) -> anyhow::Result<CreditStatus> {
    let period = period(now, credit.resets, zone);
    let (from, pace_from) = (
        period.0.timestamp_millis(),
        (now - chrono::Duration::days(PACE_DAYS)).timestamp_millis(),
    );
    let (by_plugin, paced): (Vec<(String, f64)>, f64) = db
        .call(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT plugin, SUM(cost_usd) FROM claude_calls WHERE credit AND at >= ?1
                 GROUP BY plugin ORDER BY SUM(cost_usd) DESC, plugin",
            )?;
            let by_plugin = statement
                .query_map([from], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let paced = c.query_row(
                "SELECT COALESCE(SUM(cost_usd), 0) FROM claude_calls WHERE credit AND at >= ?1",
                [pace_from],
                |row| row.get(0),
            )?;
            Ok((by_plugin, paced))
        })
        .await?;
    Ok(CreditStatus {
        monthly_usd: credit.monthly_usd,
        used_usd: sum_usd(by_plugin.iter().map(|(_, usd)| *usd)),
        period,
        by_plugin,
        pace_per_day: paced / PACE_DAYS as f64,
    })
}

/// The first of the period, as a key for alerts told once per period.
pub fn period_key(status: &CreditStatus) -> String {
    format!("credit:{}", status.period.0.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_period_runs_from_one_reset_day_to_the_next_in_the_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let (start, end) = period(at("2026-12-02T10:00:00Z"), 1, berlin);
        assert_eq!(start, at("2026-11-30T23:00:00Z"));
        assert_eq!(end, at("2026-12-31T23:00:00Z"));
        // Before this month's reset day: the period began last month.
        let (start, end) = period(at("2026-12-02T10:00:00Z"), 15, Tz::UTC);
        assert_eq!(
            (start, end),
            (at("2026-11-15T00:00:00Z"), at("2026-12-15T00:00:00Z"))
        );
        let (start, _) = period(at("2026-12-15T00:00:00Z"), 15, Tz::UTC);
        assert_eq!(start, at("2026-12-15T00:00:00Z"));
    }

    #[test]
    fn the_run_out_day_follows_the_last_week_s_pace() {
        let now = at("2026-12-10T12:00:00Z");
        let status = CreditStatus {
            monthly_usd: 100.0,
            used_usd: 60.0,
            period: period(now, 1, Tz::UTC),
            by_plugin: vec![("assistant".into(), 60.0)],
            pace_per_day: 4.0,
        };
        // $40 left at $4 a day: ten days.
        assert_eq!(status.runs_out(now), Some(at("2026-12-20T12:00:00Z")));
        assert_eq!(status.left_usd(), 40.0);
        assert!(
            status.summary(now, Tz::UTC).contains("runs out about Dec 20"),
            "{}",
            status.summary(now, Tz::UTC)
        );
        let slow = CreditStatus {
            pace_per_day: 1.0,
            ..status.clone()
        };
        assert_eq!(slow.runs_out(now), None, "40 days is past the reset");
        assert!(slow.summary(now, Tz::UTC).contains("lasts the period"));
        let spent = CreditStatus {
            used_usd: 101.0,
            ..status
        };
        assert!(spent.spent() && spent.left_usd() == 0.0);
        assert!(spent.summary(now, Tz::UTC).contains("$0.00 left"));
    }

    #[test]
    fn each_credit_alert_names_its_threshold() {
        let now = at("2026-12-10T12:00:00Z");
        let status = CreditStatus {
            monthly_usd: 20.0,
            used_usd: 17.0,
            period: period(now, 1, Tz::UTC),
            by_plugin: vec![("assistant".into(), 17.0)],
            pace_per_day: 0.5,
        };
        let alert = |mark| status.alert(WhenSpent::Stop, mark, now, Tz::UTC);
        assert_eq!(
            alert(50),
            "💳 50 % of the Agent SDK credit is used. Agent SDK credit: $17.00 of $20.00 used (85%), \
             $3.00 left until Jan 1; runs out about Dec 16 at the last 7 days' pace."
        );
        assert!(alert(80).starts_with("💳 80 % of the Agent SDK credit is used. "));
        let spent = CreditStatus {
            used_usd: 21.0,
            ..status
        };
        let alert = spent.alert(WhenSpent::Stop, 100, now, Tz::UTC);
        assert!(
            alert.starts_with("💳 The Agent SDK credit is spent. ")
                && alert.ends_with("; spent. Calls through the claude CLI stop until it resets."),
            "{alert}"
        );
    }

    #[test]
    fn only_a_cli_backend_on_a_subscription_draws() {
        let mut config = crate::config::Config::parse(
            std::path::Path::new("/m/mission.toml"),
            "data_dir = \"d\"\n[claude]\nenv = [\"HOME\"]\n[claude.credit]\nplan = \"pro\"\n",
        )
        .unwrap()
        .claude
        .unwrap();
        assert!(!draws(&config, Backend::Api, None));
        assert!(draws(&config, Backend::Cli, None), "no API key reaches the CLI");
        assert!(draws(&config, Backend::Persistent, Some("none")));
        assert!(!draws(&config, Backend::Persistent, Some("ANTHROPIC_API_KEY")));
        config.credit.as_mut().unwrap().login = Login::ApiKey;
        assert!(!draws(&config, Backend::Cli, Some("none")));
        config.credit.as_mut().unwrap().login = Login::Subscription;
        assert!(draws(&config, Backend::Persistent, Some("ANTHROPIC_API_KEY")));
    }
}
