//! Schedules: the files (`schedules/*.toml`, one schedule each, named by the
//! file's stem) read here, their cron expressions ([`CronExpr`]), the
//! [`scheduler`] that fires them by the [`clock`], and what it remembers per
//! schedule ([`state`]). A schedule fires on a cron expression or a fixed
//! interval ([`Timing`]).
//!
//! ```toml
//! plugin = "briefing"            # a task plugin from mission.toml
//! cron = "0 7 * * mon-fri"       # minute hour day-of-month month day-of-week
//! # every = "90m"                # or a fixed interval, instead of `cron`
//! timezone = "Europe/Berlin"     # IANA name; default: the host's zone
//! overlap = "skip"               # skip | queue | allow
//! catch_up = "once"              # none | once
//! timeout = "5m"                 # default: the plugin's
//! retries = 2                    # extra attempts after a failure
//! retry_backoff = "30s"          # first wait; doubles each retry
//! jitter = "10s"                 # random delay before each run, at most this
//! config = { topic = "sales" }   # over the plugin's config values
//! alert = true                   # told in [alerts] chat when it fails (the default)
//! after_failures = 3             # consecutive failed runs before that (default: [alerts]')
//! urgent = true                  # its alerts go out in [alerts] quiet hours too
//! after = { schedule = "sync-shop", on = "success" }  # also run when that
//!                                # schedule's run ends so (success | failure
//!                                # | any); a list for several; with neither
//!                                # `cron` nor `every`, only then
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::config::after::{check_schedule_name, After, RawAfter};
use crate::config::units::HumanDuration;
use crate::config::{scalar_values, Config, World};
use crate::os::regular_file;

pub mod alerts;
pub mod chains;
mod chart;
pub mod clock;
pub mod scheduler;
pub mod state;
pub mod status;
mod timing;
mod trigger;

pub use trigger::{follow_ups, scheduler, FollowUpsRun};

pub use crate::config::cron::CronExpr;
pub use timing::Timing;

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
    pub timing: Timing,
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
    /// Whether its failures are told in `[alerts] chat`.
    pub alert: bool,
    /// Consecutive failed runs before it is told; `[alerts]`'s without one.
    pub after_failures: Option<u32>,
    /// Whether its alerts go out in quiet hours too.
    pub urgent: bool,
    /// The schedules whose runs' ends start it too.
    pub after: Vec<After>,
    /// Where it came from, if the host's own tools wrote it: "created by
    /// Anna on 2026-12-07 16:20 UTC" (its first line, after
    /// [`ORIGIN_PREFIX`]).
    pub origin: Option<String>,
}

/// How a schedule file the host's own tools wrote begins.
pub const ORIGIN_PREFIX: &str = "# From the chat: ";

impl Schedule {
    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.retry_backoff.saturating_mul(1 << (retry - 1).min(16))
    }

    /// A schedule `name` of the plugin of the same name on `cron` in
    /// `zone`, with every other setting at its default: for tests.
    #[cfg(test)]
    pub(crate) fn for_test(name: &str, cron: &str, zone: Tz) -> Schedule {
        Schedule {
            name: name.into(),
            file: format!("{name}.toml").into(),
            plugin: name.into(),
            timing: Timing::Cron(Box::new(CronExpr::parse(cron).unwrap())),
            zone,
            overlap: Overlap::Skip,
            catch_up: CatchUp::None,
            timeout: None,
            retries: 0,
            retry_backoff: Duration::from_secs(10),
            jitter: Duration::ZERO,
            values: Vec::new(),
            alert: true,
            after_failures: None,
            urgent: false,
            after: Vec::new(),
            origin: None,
        }
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
    cron: Option<String>,
    every: Option<HumanDuration>,
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
    alert: Option<bool>,
    after_failures: Option<u32>,
    #[serde(default)]
    urgent: bool,
    after: Option<RawAfter>,
}

impl Schedule {
    /// Reads and validates the schedule file `file` against `config`.
    pub fn load(file: &Path, config: &Config, default_zone: Tz) -> Result<Schedule, ScheduleError> {
        let text =
            regular_file::read_to_string(file, regular_file::MAX_SCHEDULE).map_err(|e| ScheduleError {
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
        check_schedule_name(&name).map_err(|e| error(format!("{e}: name the file so")))?;
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
        let after = RawAfter::links(raw.after, "after").map_err(error)?;
        for link in &after {
            if link.schedule == name {
                return Err(error(format!("after: `{name}` cannot follow itself")));
            }
        }
        let timing = match (raw.cron, raw.every) {
            (Some(cron), None) => Timing::Cron(Box::new(
                CronExpr::parse(&cron).map_err(|e| error(format!("cron: {e}")))?,
            )),
            (None, Some(every)) if every.0 >= Duration::from_secs(1) => Timing::Every(every.0),
            (None, Some(_)) => return Err(error("every: must be at least 1s".into())),
            (Some(_), Some(_)) => return Err(error("set `cron` or `every`, not both".into())),
            (None, None) if !after.is_empty() => Timing::OnlyAfter,
            (None, None) => {
                return Err(error(
                    "set `cron` (e.g. \"0 7 * * *\"), `every` (e.g. \"90m\") or `after` \
                     (e.g. { schedule = \"sync-shop\" })"
                        .into(),
                ))
            }
        };
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
            timing,
            zone,
            overlap: raw.overlap,
            catch_up: raw.catch_up,
            timeout: raw.timeout.map(|t| t.0),
            retries: raw.retries,
            retry_backoff: raw.retry_backoff.map_or(Duration::from_secs(30), |b| b.0),
            jitter: raw.jitter.map_or(Duration::ZERO, |j| j.0),
            values: values.into_iter().collect(),
            alert: raw.alert.unwrap_or(true),
            after_failures: match raw.after_failures {
                Some(0) => return Err(error("after_failures: must be at least 1".into())),
                other => other,
            },
            urgent: raw.urgent,
            after,
            origin: text
                .lines()
                .next()
                .and_then(|line| line.strip_prefix(ORIGIN_PREFIX))
                .map(str::to_owned),
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
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_stem()?.to_str().map(str::to_owned))
        .collect();
    let mut schedules = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match Schedule::load(&file, config, default_zone) {
            Ok(schedule) => schedules.push(schedule),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(chains::refuse_broken(&mut schedules, &names));
    (schedules, errors)
}

/// `time` in `zone` as RFC 3339 with its offset.
pub fn format_in_zone(time: DateTime<Utc>, zone: Tz) -> String {
    zone.from_utc_datetime(&time.naive_utc()).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_fixed_interval_is_read_from_every() {
        let schedule = parse("plugin = \"briefing\"\nevery = \"90m\"\n").unwrap();
        assert_eq!(schedule.timing.every(), Some(Duration::from_secs(5400)));
        assert_eq!(schedule.timing.to_string(), "every 90m");
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
            (
                "plugin = \"briefing\"\ncron = \"@daily\"\nevery = \"1h\"\n",
                "set `cron` or `every`, not both",
            ),
            (
                "plugin = \"briefing\"\n",
                "set `cron` (e.g. \"0 7 * * *\"), `every` (e.g. \"90m\") or `after`",
            ),
            (
                "plugin = \"briefing\"\nevery = \"0s\"\n",
                "every: must be at least 1s",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with("/m/schedules/morning.toml: "), "{error}");
            assert!(error.contains(expected), "expected {expected:?} in {error}");
        }
    }
}
