//! The schedules' section of the status page: each schedule with its next
//! run in its own zone, its recent runs as a strip, 30 days of durations
//! and its failure streak; and the schedule files refused, with why.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::chart::{self, DurationChart};
use super::{alerts, load_all, state};
use crate::config::units::span;
use crate::config::Config;
use crate::db::Database;
use crate::display::{brief, in_zone, seconds};
use crate::host::runs::{self, RunStatus};
use crate::os::zone::host_zone;

/// How many runs each schedule's strip shows.
const STRIP_RUNS: u32 = 20;
/// The most runs per schedule the duration chart reads.
const CHART_RUNS: u32 = 2000;

/// One schedule's line.
#[derive(Debug, Serialize)]
pub struct ScheduleStatus {
    /// Its name.
    pub name: String,
    /// The plugin it runs.
    pub plugin: String,
    /// Its cron expression or interval.
    pub when: String,
    /// The zone the cron is read in.
    pub zone: String,
    /// The next run, in the schedule's own zone and named with it; none if
    /// paused or never.
    pub next: Option<String>,
    /// How long until then: `in 3h 12m`.
    pub next_in: Option<String>,
    /// Paused by `mission pause` or the page.
    pub paused: bool,
    /// Its latest run.
    pub last: Option<RunStatus>,
    /// Its recent runs, oldest first, for the strip of bars.
    pub strip: Vec<RunStatus>,
    /// Its run durations over 30 days (up to [`CHART_RUNS`] runs).
    pub durations: Option<DurationChart>,
    /// Its failure streak: `4 failed runs since Tue 22:00`.
    pub streak: Option<String>,
    /// Where it came from, if the host's own tools wrote it: `created by
    /// Anna on 2026-12-07 16:20 UTC`.
    pub origin: Option<String>,
}

impl ScheduleStatus {
    /// Whether its latest run failed.
    pub fn failing(&self) -> bool {
        self.last.as_ref().is_some_and(|r| r.failed)
    }
}

/// The schedules of `config` as of `now`, by name, and the schedule files
/// refused (each in brief). Read here rather than through the host, which
/// logs each refused file: the page shows them instead, without a log line
/// every refresh.
pub async fn section(
    db: &Database,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<(Vec<ScheduleStatus>, Vec<String>)> {
    let (files, refused) = load_all(config, host_zone());
    let streaks = alerts::failing(db).await?;
    let mut schedules = Vec::new();
    for s in files {
        let paused = state::is_paused(db, &s.name).await?;
        let next = (!paused).then(|| s.timing.next_after(now, s.zone)).flatten();
        let mut strip: Vec<RunStatus> = runs::recent(db, Some(&s.name), STRIP_RUNS)
            .await?
            .iter()
            .map(|run| RunStatus::of(run, Some(s.zone)))
            .collect();
        strip.reverse();
        let month = now - chrono::Duration::days(chart::DAYS);
        let durations = runs::durations(db, &s.name, month, CHART_RUNS).await?;
        let streak = streaks.iter().find(|f| f.schedule == s.name).map(|f| {
            let since = f.since.with_timezone(&s.zone).format("%a %H:%M %Z");
            format!(
                "{} failed run{} since {since}",
                f.failures,
                if f.failures == 1 { "" } else { "s" }
            )
        });
        schedules.push(ScheduleStatus {
            name: s.name.clone(),
            plugin: s.plugin.clone(),
            when: s.timing.to_string(),
            zone: s.zone.name().to_owned(),
            next: next.map(|t| in_zone(t, s.zone)),
            next_in: next.map(|t| format!("in {}", span((t - now).to_std().unwrap_or_default()))),
            paused,
            last: strip.last().cloned(),
            strip,
            durations: chart::chart(&durations, now, |ms| seconds(Duration::from_millis(ms))),
            streak,
            origin: s.origin.clone(),
        });
    }
    let refused = refused.iter().map(|e| brief(&e.to_string(), None)).collect();
    Ok((schedules, refused))
}
