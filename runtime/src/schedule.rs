//! Schedule files (`schedules/*.toml`, one schedule each, named by the file's
//! stem) and the cron expressions in them.
//!
//! ```toml
//! plugin = "briefing"            # a task plugin from mission.toml
//! cron = "0 7 * * mon-fri"       # minute hour day-of-month month day-of-week
//! timezone = "Europe/Berlin"     # IANA name; default: the host's zone
//! overlap = "skip"               # skip | queue | allow
//! catch_up = "once"              # none | once
//! timeout = "5m"                 # default: the plugin's
//! retries = 2                    # extra attempts after a failure
//! retry_backoff = "30s"          # first wait; doubles each retry
//! jitter = "10s"                 # random delay before each run, at most this
//! config = { topic = "sales" }   # over the plugin's config values
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;

use crate::config::{scalar_values, Config, World};
use crate::units::HumanDuration;

/// A standard 5-field cron expression, with names (`jan`, `mon`), ranges,
/// steps, lists and the `@hourly` .. `@yearly` macros; day-of-week 0 and 7
/// are Sunday; with both day fields restricted a day matching either fires.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: croner::Cron,
}

impl CronExpr {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let fields = text.split_whitespace().count();
        if !text.trim_start().starts_with('@') && fields != 5 {
            return Err(format!(
                "`{text}` has {fields} fields; write 5: minute hour day-of-month month day-of-week"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        Ok(CronExpr {
            text: text.to_owned(),
            cron,
        })
    }

    /// The first fire time strictly after `after`, in `zone`. Spring-forward
    /// gaps fire at the first instant after the gap; a fixed time repeated by
    /// fall-back fires once. Chain calls from the returned instant.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest fire time at or before `at`, in `zone`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// What to do when a run is due while the previous one is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Overlap {
    /// Skip the new run (logged).
    #[default]
    Skip,
    /// Run it when the current one ends; at most one waits.
    Queue,
    /// Run both at once.
    Allow,
}

/// What to do about runs missed while the host was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Nothing: wait for the next due time.
    #[default]
    None,
    /// Run once on start if any due time passed while the host was down.
    Once,
}

/// One validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The file's stem.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The task plugin it runs.
    pub plugin: String,
    /// When.
    pub cron: CronExpr,
    /// The zone the cron expression is read in.
    pub zone: Tz,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Catch-up policy after downtime.
    pub catch_up: CatchUp,
    /// Deadline per attempt; none means the plugin's own.
    pub timeout: Option<Duration>,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// The most random delay added before each run.
    pub jitter: Duration,
    /// Config values laid over the plugin's, sorted by key.
    pub values: Vec<(String, String)>,
}

impl Schedule {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.retry_backoff.saturating_mul(1 << (retry - 1).min(16))
    }
}

/// A schedule file that could not be read or is invalid.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ScheduleError {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A schedule file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    plugin: String,
    cron: String,
    timezone: Option<String>,
    #[serde(default)]
    overlap: Overlap,
    #[serde(default)]
    catch_up: CatchUp,
    timeout: Option<HumanDuration>,
    #[serde(default)]
    retries: u32,
    retry_backoff: Option<HumanDuration>,
    jitter: Option<HumanDuration>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
}

/// The host's time zone (from `TZ` or the system), or UTC if it has none
/// that chrono-tz knows.
pub fn host_zone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|name| name.trim_start_matches(':').parse().ok())
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| name.parse().ok())
        })
        .unwrap_or(Tz::UTC)
}

impl Schedule {
    /// Reads and validates the schedule file `file` against `config`.
    pub fn load(file: &Path, config: &Config, default_zone: Tz) -> Result<Schedule, ScheduleError> {
        let text = std::fs::read_to_string(file).map_err(|e| ScheduleError {
            file: file.to_owned(),
            message: format!("cannot read the schedule file: {e}"),
        })?;
        Schedule::parse(file, &text, config, default_zone)
    }

    /// Validates `text` as the contents of the schedule file `file`.
    pub fn parse(
        file: &Path,
        text: &str,
        config: &Config,
        default_zone: Tz,
    ) -> Result<Schedule, ScheduleError> {
        let error = |message: String| ScheduleError {
            file: file.to_owned(),
            message,
        };
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        crate::config::PluginName::parse(&name)
            .map_err(|_| error(format!("`{name}` is not a valid schedule name: name the file with lowercase letters, digits, `-` or `_`")))?;
        let raw: RawSchedule = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let plugin = config.plugin(&raw.plugin).ok_or_else(|| {
            error(format!(
                "plugin: no plugin named `{}` in {}",
                raw.plugin,
                config.file.display()
            ))
        })?;
        if plugin.world != World::Task {
            return Err(error(format!(
                "plugin: `{}` is a {} plugin; a schedule runs task plugins",
                raw.plugin, plugin.world
            )));
        }
        let cron = CronExpr::parse(&raw.cron).map_err(|e| error(format!("cron: {e}")))?;
        let zone = match raw.timezone {
            Some(zone) => zone.parse::<Tz>().map_err(|_| {
                error(format!(
                    "timezone: `{zone}` is not an IANA time zone name (e.g. \"Europe/Berlin\")"
                ))
            })?,
            None => default_zone,
        };
        let mut values: BTreeMap<String, String> = plugin.values.iter().cloned().collect();
        values.extend(scalar_values("config", raw.config).map_err(error)?);
        Ok(Schedule {
            name,
            file: file.to_owned(),
            plugin: raw.plugin,
            cron,
            zone,
            overlap: raw.overlap,
            catch_up: raw.catch_up,
            timeout: raw.timeout.map(|t| t.0),
            retries: raw.retries,
            retry_backoff: raw.retry_backoff.map_or(Duration::from_secs(30), |b| b.0),
            jitter: raw.jitter.map_or(Duration::ZERO, |j| j.0),
            values: values.into_iter().collect(),
        })
    }
}

/// Every `*.toml` file in `config`'s schedules directory, sorted by name:
/// the valid schedules, and an error for each invalid file. A missing
/// directory means no schedules.
pub fn load_all(config: &Config, default_zone: Tz) -> (Vec<Schedule>, Vec<ScheduleError>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&config.schedules_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return (
                Vec::new(),
                vec![ScheduleError {
                    file: config.schedules_dir.clone(),
                    message: format!("cannot read the schedules directory: {e}"),
                }],
            )
        }
    };
    files.sort();
    let mut schedules = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match Schedule::load(&file, config, default_zone) {
            Ok(schedule) => schedules.push(schedule),
            Err(e) => errors.push(e),
        }
    }
    (schedules, errors)
}

/// `time` in `zone` as RFC 3339 with its offset.
pub fn format_in_zone(time: DateTime<Utc>, zone: Tz) -> String {
    zone.from_utc_datetime(&time.naive_utc()).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    /// The next `count` fire times after `from`, as RFC 3339 in `zone`.
    fn next(expr: &str, zone: &str, from: &str, count: usize) -> Vec<String> {
        let cron = CronExpr::parse(expr).unwrap();
        let zone: Tz = zone.parse().unwrap();
        let mut at = utc(from);
        (0..count)
            .map(|_| {
                at = cron.next_after(at, zone).unwrap();
                format_in_zone(at, zone)
            })
            .collect()
    }

    #[test]
    fn weekdays_are_numbered_from_sunday_and_seven_is_sunday_too() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            next("0 9 * * 1-5", "UTC", "2026-11-27T00:00:00Z", 2),
            ["2026-11-27T09:00:00+00:00", "2026-11-30T09:00:00+00:00"]
        );
        for sunday in ["0", "7", "sun"] {
            assert_eq!(
                next(&format!("0 0 * * {sunday}"), "UTC", "2026-11-24T00:00:00Z", 1),
                ["2026-11-29T00:00:00+00:00"],
                "{sunday}"
            );
        }
    }

    #[test]
    fn names_ranges_steps_and_lists() {
        assert_eq!(
            next("0 0 1 jan *", "UTC", "2026-11-24T00:00:00Z", 1),
            ["2027-01-01T00:00:00+00:00"]
        );
        assert_eq!(
            next("*/20 9-10 * * mon", "UTC", "2026-11-30T09:30:00Z", 4),
            [
                "2026-11-30T09:40:00+00:00",
                "2026-11-30T10:00:00+00:00",
                "2026-11-30T10:20:00+00:00",
                "2026-11-30T10:40:00+00:00"
            ]
        );
        assert_eq!(
            next("0 8,12,18 * * *", "UTC", "2026-11-24T09:00:00Z", 3),
            [
                "2026-11-24T12:00:00+00:00",
                "2026-11-24T18:00:00+00:00",
                "2026-11-25T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // Fridays, and the 13th whatever its weekday (2026-12-13 is a Sunday).
        assert_eq!(
            next("0 0 13 * fri", "UTC", "2026-12-01T00:00:00Z", 3),
            [
                "2026-12-04T00:00:00+00:00",
                "2026-12-11T00:00:00+00:00",
                "2026-12-13T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn macros() {
        let from = "2026-11-24T10:30:00Z";
        assert_eq!(next("@hourly", "UTC", from, 1), ["2026-11-24T11:00:00+00:00"]);
        assert_eq!(next("@daily", "UTC", from, 1), ["2026-11-25T00:00:00+00:00"]);
        assert_eq!(next("@weekly", "UTC", from, 1), ["2026-11-29T00:00:00+00:00"]);
        assert_eq!(next("@monthly", "UTC", from, 1), ["2026-12-01T00:00:00+00:00"]);
        assert_eq!(next("@yearly", "UTC", from, 1), ["2027-01-01T00:00:00+00:00"]);
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_right_after_the_gap() {
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once() {
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn wildcard_hours_follow_real_elapsed_hours_across_fall_back() {
        assert_eq!(
            next("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
        assert_eq!(
            next("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00"
            ]
        );
    }

    #[test]
    fn refuses_six_fields_and_out_of_range_values() {
        assert!(CronExpr::parse("0 0 * * * *")
            .unwrap_err()
            .contains("has 6 fields; write 5"));
        assert!(CronExpr::parse("61 * * * *")
            .unwrap_err()
            .contains("not a valid cron expression"));
        assert!(CronExpr::parse("* * *").unwrap_err().contains("has 3 fields"));
    }

    fn config() -> Config {
        Config::parse(
            Path::new("/m/mission.toml"),
            r#"
            data_dir = "data"
            [plugins.briefing]
            world = "task"
            wasm = "b.wasm"
            config = { greeting = "Hi", recipient = "team" }
            [plugins.echo]
            world = "chat"
            wasm = "e.wasm"
            "#,
        )
        .unwrap()
    }

    fn parse(text: &str) -> Result<Schedule, String> {
        Schedule::parse(Path::new("/m/schedules/morning.toml"), text, &config(), Tz::UTC)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_schedule_with_its_policies_and_merged_config() {
        let schedule = parse(
            r#"
            plugin = "briefing"
            cron = "0 7 * * mon-fri"
            timezone = "Europe/Berlin"
            overlap = "queue"
            catch_up = "once"
            timeout = "5m"
            retries = 2
            retry_backoff = "10s"
            jitter = "30s"
            config = { recipient = "Anna" }
            "#,
        )
        .unwrap();
        assert_eq!(schedule.name, "morning");
        assert_eq!(schedule.zone, chrono_tz::Europe::Berlin);
        assert_eq!(
            (schedule.overlap, schedule.catch_up),
            (Overlap::Queue, CatchUp::Once)
        );
        assert_eq!(schedule.timeout, Some(Duration::from_secs(300)));
        assert_eq!(schedule.retries, 2);
        assert_eq!(schedule.backoff(1), Duration::from_secs(10));
        assert_eq!(schedule.backoff(2), Duration::from_secs(20));
        assert_eq!(schedule.jitter, Duration::from_secs(30));
        let values: Vec<_> = schedule
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(values, [("greeting", "Hi"), ("recipient", "Anna")]);
    }

    #[test]
    fn defaults_are_skip_no_catch_up_no_retries_and_the_given_zone() {
        let schedule = parse("plugin = \"briefing\"\ncron = \"@daily\"\n").unwrap();
        assert_eq!(
            (schedule.overlap, schedule.catch_up),
            (Overlap::Skip, CatchUp::None)
        );
        assert_eq!(
            (schedule.retries, schedule.jitter, schedule.timeout),
            (0, Duration::ZERO, None)
        );
        assert_eq!(schedule.zone, Tz::UTC);
    }

    #[test]
    fn each_bad_field_is_named_with_the_file() {
        let cases = [
            (
                "plugin = \"briefing\"\ncron = \"0 7 * *\"\n",
                "cron: `0 7 * *` has 4 fields",
            ),
            (
                "plugin = \"briefing\"\ncron = \"@daily\"\ntimezone = \"Mars/Olympus\"\n",
                "timezone: `Mars/Olympus`",
            ),
            (
                "plugin = \"nope\"\ncron = \"@daily\"\n",
                "plugin: no plugin named `nope`",
            ),
            (
                "plugin = \"echo\"\ncron = \"@daily\"\n",
                "plugin: `echo` is a chat plugin",
            ),
            (
                "plugin = \"briefing\"\ncron = \"@daily\"\noverlp = \"skip\"\n",
                "unknown field `overlp`",
            ),
            (
                "plugin = \"briefing\"\ncron = \"@daily\"\noverlap = \"sometimes\"\n",
                "unknown variant `sometimes`",
            ),
            (
                "plugin = \"briefing\"\ncron = \"@daily\"\nconfig = { a = [1] }\n",
                "config.a: must be a string",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with("/m/schedules/morning.toml: "), "{error}");
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }
}
