//! When a schedule fires: a cron expression read in a zone, or a fixed
//! interval (`every = "90m"`, for what cron cannot say), or never on its
//! own (a schedule that only follows others: `after`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::CronExpr;
use crate::config::units::HumanDuration;

/// A schedule's fire times.
#[derive(Debug, Clone)]
pub enum Timing {
    /// At the times of a cron expression, in the schedule's zone.
    Cron(Box<CronExpr>),
    /// Every so long, counted from the Unix epoch, so the times do not move
    /// with restarts (`every = "90m"` fires at 00:00, 01:30, 03:00 UTC...).
    Every(Duration),
    /// Never on its own: only after the schedules its `after` names.
    OnlyAfter,
}

impl Timing {
    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Timing::Cron(cron) => cron.next_after(after, zone),
            Timing::Every(interval) => {
                let step = interval_millis(*interval);
                let at = after.timestamp_millis();
                DateTime::from_timestamp_millis((at.div_euclid(step) + 1) * step)
            }
            Timing::OnlyAfter => None,
        }
    }

    /// The latest fire time at or before `at`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            Timing::Cron(cron) => cron.previous_at_or_before(at, zone),
            Timing::Every(interval) => {
                let step = interval_millis(*interval);
                DateTime::from_timestamp_millis(at.timestamp_millis().div_euclid(step) * step)
            }
            Timing::OnlyAfter => None,
        }
    }

    /// The cron expression, if it is one.
    pub fn cron(&self) -> Option<&str> {
        match self {
            Timing::Cron(cron) => Some(cron.as_str()),
            Timing::Every(_) | Timing::OnlyAfter => None,
        }
    }

    /// The interval, if it is one.
    pub fn every(&self) -> Option<Duration> {
        match self {
            Timing::Cron(_) | Timing::OnlyAfter => None,
            Timing::Every(interval) => Some(*interval),
        }
    }
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Timing::Cron(cron) => f.write_str(cron.as_str()),
            Timing::Every(interval) => write!(f, "every {}", HumanDuration(*interval)),
            Timing::OnlyAfter => f.write_str("only after another job"),
        }
    }
}

fn interval_millis(interval: Duration) -> i64 {
    i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn an_interval_fires_on_its_multiples_of_the_epoch() {
        let every = Timing::Every(Duration::from_secs(90 * 60));
        let next = every.next_after(at("2026-12-01T00:10:00Z"), Tz::UTC).unwrap();
        assert_eq!(next, at("2026-12-01T01:30:00Z"));
        assert_eq!(every.next_after(next, Tz::UTC), Some(at("2026-12-01T03:00:00Z")));
        assert_eq!(
            every.previous_at_or_before(at("2026-12-01T01:30:00Z"), Tz::UTC),
            Some(at("2026-12-01T01:30:00Z"))
        );
        assert_eq!(
            every.previous_at_or_before(at("2026-12-01T01:29:59Z"), Tz::UTC),
            Some(at("2026-12-01T00:00:00Z"))
        );
        assert_eq!(every.to_string(), "every 90m");
    }
}
