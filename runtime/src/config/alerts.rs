//! `[alerts]`: where the host tells what broke, after how many failures,
//! when it holds its words, the daily digest, and the host's own heartbeat.
//!
//! ```toml
//! [alerts]
//! chat = 123456789        # an allowed user's chat (telegram.allowed_users)
//! after_failures = 1      # consecutive failed runs (after retries) before an alert
//! digest = "0 8 * * *"    # a daily summary, on this cron expression
//! quiet = "22:00-07:00"   # hold all but urgent alerts in these hours
//! timezone = "Europe/Berlin"  # for `digest` and `quiet`; default: the host's zone
//! ping = { url = "https://hc-ping.com/UUID", every = "5m" }  # Healthchecks-style
//! approval_wait = "1h"    # how long a task's Claude tool use waits for a person here
//! ```
//!
//! A schedule file may say `alert = false`, its own `after_failures`, or
//! `urgent = true` (its alerts are not held by quiet hours).

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::cron::CronExpr;
use super::http::is_loopback_host;
use super::telegram::TelegramConfig;
use super::units::HumanDuration;
use crate::os::zone::host_zone;

/// The validated `[alerts]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// The Telegram chat alerts go to.
    pub chat: i64,
    /// Consecutive failed runs of a schedule before it is told.
    pub after_failures: u32,
    /// When the daily digest is sent.
    pub digest: Option<CronExpr>,
    /// The hours in which only urgent alerts are sent.
    pub quiet: Option<QuietHours>,
    /// The zone of `digest` and `quiet`.
    pub zone: Tz,
    /// The host's heartbeat, for a monitor outside.
    pub ping: Option<PingConfig>,
    /// How long a task's Claude tool use, asked about in `chat`, waits
    /// (within the run's own deadline).
    pub approval_wait: Duration,
}

/// A span of the day, such as `22:00-07:00` (it may cross midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When it begins.
    pub from: NaiveTime,
    /// When it ends.
    pub to: NaiveTime,
}

impl QuietHours {
    /// Reads `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<QuietHours, String> {
        let bad = || format!("`{text}` is not a span of the day such as \"22:00-07:00\"");
        let (from, to) = text.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (from, to) = (time(from)?, time(to)?);
        if from == to {
            return Err(format!("`{text}` begins and ends at the same time"));
        }
        Ok(QuietHours { from, to })
    }

    /// Whether `now`, in `zone`, falls within these hours.
    pub fn holds(&self, now: DateTime<Utc>, zone: Tz) -> bool {
        let time = now.with_timezone(&zone).time();
        match self.from < self.to {
            true => self.from <= time && time < self.to,
            false => time >= self.from || time < self.to,
        }
    }
}

/// `[alerts] ping`: a URL pinged while the host is up, the way
/// Healthchecks.io and its self-hosted kin expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// The check's URL; `/start` and `/fail` are appended for those pings.
    pub url: url::Url,
    /// How often it is pinged.
    pub every: Duration,
}

/// `[alerts]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    /// Example: `chat = 123456789`
    chat: i64,
    /// Example: `after_failures = 3` (default 1)
    after_failures: Option<u32>,
    /// Example: `digest = "0 8 * * *"`
    digest: Option<String>,
    /// Example: `quiet = "22:00-07:00"`
    quiet: Option<String>,
    /// Example: `timezone = "Europe/Berlin"`
    timezone: Option<String>,
    /// Example: `ping = { url = "https://hc-ping.com/UUID", every = "5m" }`
    ping: Option<RawPing>,
    /// Example: `approval_wait = "1h"` (the default)
    approval_wait: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPing {
    url: String,
    every: Option<HumanDuration>,
}

impl RawAlerts {
    /// `[alerts]` validated: its chat is an allowed user's, so only the
    /// people who may use the bot read what broke.
    pub(super) fn validate(self, telegram: Option<&TelegramConfig>) -> Result<AlertsConfig, String> {
        let telegram = telegram.ok_or("alerts: alerts are sent by the bot; configure [telegram]")?;
        let allowed = u64::try_from(self.chat).is_ok_and(|user| telegram.allowed_users.contains(&user));
        if !allowed {
            return Err(format!(
                "alerts.chat: `{}` is not the chat of an allowed user (telegram.allowed_users)",
                self.chat
            ));
        }
        let after_failures = self.after_failures.unwrap_or(1);
        if after_failures == 0 {
            return Err("alerts.after_failures: must be at least 1".into());
        }
        let digest = self
            .digest
            .map(|text| CronExpr::parse(&text).map_err(|e| format!("alerts.digest: {e}")))
            .transpose()?;
        let quiet = self
            .quiet
            .map(|text| QuietHours::parse(&text).map_err(|e| format!("alerts.quiet: {e}")))
            .transpose()?;
        let zone = match self.timezone {
            Some(name) => name
                .parse()
                .map_err(|_| format!("alerts.timezone: `{name}` is not an IANA time zone"))?,
            None => host_zone(),
        };
        let ping = self.ping.map(RawPing::validate).transpose()?;
        let approval_wait = self.approval_wait.map_or(Duration::from_secs(3600), |w| w.0);
        if approval_wait.is_zero() {
            return Err("alerts.approval_wait: must be more than zero".into());
        }
        Ok(AlertsConfig {
            chat: self.chat,
            after_failures,
            digest,
            quiet,
            zone,
            ping,
            approval_wait,
        })
    }
}

impl RawPing {
    fn validate(self) -> Result<PingConfig, String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("alerts.ping.url: `{}`: {e}", self.url))?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(host.trim_matches(['[', ']'])) => {}
            _ => {
                return Err(format!(
                    "alerts.ping.url: `{}` must be https (plain http only to this machine)",
                    self.url
                ))
            }
        }
        let every = self.every.map_or(Duration::from_secs(300), |e| e.0);
        if every < Duration::from_secs(1) {
            return Err("alerts.ping.every: at least 1s".into());
        }
        Ok(PingConfig { url, every })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_may_cross_midnight_and_follow_the_zone() {
        let night = QuietHours::parse("22:00-07:00").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 21:30 UTC is 22:30 in Berlin in winter.
        assert!(night.holds(at("2026-12-01T21:30:00Z"), berlin));
        assert!(!night.holds(at("2026-12-01T21:30:00Z"), Tz::UTC));
        assert!(night.holds(at("2026-12-02T05:59:00Z"), berlin));
        assert!(!night.holds(at("2026-12-02T06:00:00Z"), berlin));
        let lunch = QuietHours::parse("12:00-13:00").unwrap();
        assert!(lunch.holds(at("2026-12-01T12:30:00Z"), Tz::UTC));
        assert!(!lunch.holds(at("2026-12-01T13:00:00Z"), Tz::UTC));
        assert!(QuietHours::parse("22:00")
            .unwrap_err()
            .contains("\"22:00-07:00\""));
        assert!(QuietHours::parse("25:00-07:00").is_err());
        assert!(QuietHours::parse("07:00-07:00").is_err());
    }

    #[test]
    fn a_ping_url_is_https_or_this_machine() {
        let ping = |url: &str| {
            RawPing {
                url: url.into(),
                every: None,
            }
            .validate()
        };
        assert_eq!(
            ping("https://hc-ping.com/abc").unwrap().every,
            Duration::from_secs(300)
        );
        assert!(ping("http://127.0.0.1:8000/ping/abc").is_ok());
        assert!(ping("http://hc.example/abc")
            .unwrap_err()
            .contains("must be https"));
        assert!(ping("ftp://hc.example/abc").is_err());
    }
}
