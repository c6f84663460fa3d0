//! The schedule files as the reading tools last read them, kept while the
//! config is the same and no file in the schedules directory changed (its
//! name, size and modification time), so asking about fifty schedules does
//! not parse fifty files and cron expressions each time; and each
//! schedule's next fire times, kept until the first of them passes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{self, Schedule, ScheduleError};

/// The next fire times a schedule is shown with.
pub const NEXT_RUNS: usize = 3;

/// The next [`NEXT_RUNS`] fire times of `schedule` after `now`.
pub fn next_times(schedule: &Schedule, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut at = now;
    let mut next = Vec::new();
    while next.len() < NEXT_RUNS {
        let Some(time) = schedule.timing.next_after(at, schedule.zone) else {
            break;
        };
        next.push(time);
        at = time;
    }
    next
}

/// Each `*.toml` file of the directory: its path, size and modification time.
type Stamps = Vec<(PathBuf, u64, Option<SystemTime>)>;

/// The last reading and what it was read from.
struct Read {
    config: Arc<Config>,
    stamps: Stamps,
    schedules: Vec<Schedule>,
    refused: Vec<ScheduleError>,
}

/// The schedules as last read, and their next fire times; see the module.
#[derive(Default)]
pub struct ScheduleCache {
    read: Mutex<Option<Read>>,
    next: Mutex<HashMap<String, Vec<DateTime<Utc>>>>,
}

impl ScheduleCache {
    /// The schedules and refused files under `config`, as `load_all` reads
    /// them, read again only if something changed.
    pub fn load(&self, config: &Arc<Config>) -> (Vec<Schedule>, Vec<ScheduleError>) {
        let stamps = stamps(config);
        let mut last = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(read) = last.as_ref() {
            if Arc::ptr_eq(&read.config, config) && read.stamps == stamps {
                return (read.schedules.clone(), read.refused.clone());
            }
        }
        let (schedules, refused) = schedule::load_all(config, host_zone());
        self.next.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *last = Some(Read {
            config: config.clone(),
            stamps,
            schedules: schedules.clone(),
            refused: refused.clone(),
        });
        (schedules, refused)
    }
}

impl ScheduleCache {
    /// `schedule`'s next fire times after `now`, as last computed while
    /// none of them has passed (the files as [`ScheduleCache::load`] last
    /// read them).
    pub fn next_times(&self, schedule: &Schedule, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        match next.get(&schedule.name) {
            Some(times) if times.first().is_some_and(|first| *first > now) => times.clone(),
            _ => {
                let times = next_times(schedule, now);
                next.insert(schedule.name.clone(), times.clone());
                times
            }
        }
    }
}

fn stamps(config: &Config) -> Stamps {
    let Ok(entries) = std::fs::read_dir(&config.schedules_dir) else {
        return Vec::new();
    };
    let mut stamps: Stamps = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "toml") {
                return None;
            }
            let metadata = entry.metadata().ok()?;
            Some((path, metadata.len(), metadata.modified().ok()))
        })
        .collect();
    stamps.sort();
    stamps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_or_config_is_read_again_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let config = |text: &str| Arc::new(Config::parse(&dir.path().join("mission.toml"), text).unwrap());
        let first = config("data_dir = \"d\"\n[plugins.p]\nworld = \"task\"\nwasm = \"p.wasm\"\n");
        std::fs::create_dir_all(dir.path().join("schedules")).unwrap();
        let file = dir.path().join("schedules/brief.toml");
        std::fs::write(&file, "plugin = \"p\"\ncron = \"0 7 * * *\"\n").unwrap();
        let cache = ScheduleCache::default();
        let (read, _) = cache.load(&first);
        assert_eq!(read[0].timing.cron(), Some("0 7 * * *"));
        // A different text and size: read again.
        std::fs::write(&file, "plugin = \"p\"\ncron = \"30 8 * * 1-5\"\n").unwrap();
        let (read, _) = cache.load(&first);
        assert_eq!(read[0].timing.cron(), Some("30 8 * * 1-5"));
        // A new file: read again.
        std::fs::write(dir.path().join("schedules/other.toml"), "plugin = \"nowhere\"\n").unwrap();
        let (read, refused) = cache.load(&first);
        assert_eq!((read.len(), refused.len()), (1, 1));
        // The next fire times are kept until the first passes.
        let now = chrono::Utc::now();
        let next = cache.next_times(&read[0], now);
        assert_eq!(next.len(), 3);
        assert_eq!(cache.next_times(&read[0], now), next);
        assert_eq!(cache.next_times(&read[0], next[0])[..2], next[1..]);
        // Another config (its plugin gone): read again under it.
        let second = config("data_dir = \"d\"\n");
        let (read, refused) = cache.load(&second);
        assert_eq!((read.len(), refused.len()), (0, 2));
    }
}
