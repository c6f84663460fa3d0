//! LaunchAgent plists (XML or binary) read as jobs: the program and its
//! arguments, environment and working directory, and when launchd starts
//! it, mapped to schedules (`StartCalendarInterval`, `StartInterval`) and
//! watches (`WatchPaths`, `QueueDirectories`). Jobs launchd starts for
//! other reasons (kept alive, on sockets, on mounts) are reported, not
//! imported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use plist::{Dictionary, Value};

use crate::config::units::HumanDuration;
use crate::os::regular_file;

/// The `PATH` launchd gives a job that sets none.
pub const LAUNCHD_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// Variables launchd sets for an agent, passed on from the host (which runs
/// as the same user's agent or unit).
pub const LAUNCHD_USER_VARIABLES: [&str; 4] = ["HOME", "USER", "LOGNAME", "TMPDIR"];

/// One job that runs on a schedule, ready to be written out.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The plist it came from.
    pub file: PathBuf,
    /// Its launchd `Label`.
    pub label: String,
    /// The plugin and schedule name made from the label.
    pub name: String,
    /// The program, by absolute path.
    pub program: PathBuf,
    /// Its arguments (after the program's own name).
    pub args: Vec<String>,
    /// `EnvironmentVariables`, with launchd's `PATH` if it sets none.
    pub env: BTreeMap<String, String>,
    /// `WorkingDirectory`.
    pub workdir: Option<PathBuf>,
    /// When it runs: schedules, if any.
    pub timings: Vec<ImportedTiming>,
    /// What it watches, if anything.
    pub watches: Vec<ImportedWatch>,
    /// `Disabled`: imported paused.
    pub disabled: bool,
    /// What the reader noticed and the user should know.
    pub notes: Vec<String>,
}

/// A job launchd does not run on a schedule, or cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The plist.
    pub file: PathBuf,
    /// Its label, if it has one.
    pub label: Option<String>,
    /// Why it is not imported.
    pub reason: String,
}

/// A `WatchPaths` or `QueueDirectories` entry, as a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedWatch {
    /// The directory watched.
    pub dir: PathBuf,
    /// For a watched file, its name (the watch's pattern).
    pub file: Option<String>,
    /// `QueueDirectories`: run while the directory is not empty.
    pub queue: bool,
}

impl ImportedWatch {
    /// The launchd key it came from.
    pub fn from(&self) -> &'static str {
        if self.queue {
            "QueueDirectories"
        } else {
            "WatchPaths"
        }
    }
}

/// When an imported schedule fires, and which launchd key said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedTiming {
    /// A cron expression.
    Cron {
        /// The expression.
        expr: String,
        /// Where it came from, for the file's comment.
        from: String,
    },
    /// A fixed interval (`StartInterval` that no cron step can say).
    Every {
        /// The interval.
        interval: Duration,
        /// Where it came from.
        from: String,
    },
}

/// Reads every plist at `paths` (files, or directories of `*.plist`), in
/// order: each is a job or the reason it is not one.
pub fn read_all(paths: &[PathBuf]) -> Vec<Result<Job, Skipped>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "plist"))
                        .collect()
                })
                .unwrap_or_default();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    files.iter().map(|file| read(file)).collect()
}

/// Reads one plist as a job.
pub fn read(file: &Path) -> Result<Job, Skipped> {
    let skipped = |label: Option<&str>, reason: String| Skipped {
        file: file.to_owned(),
        label: label.map(str::to_owned),
        reason,
    };
    let bytes = regular_file::read(file, regular_file::MAX_CONFIG)
        .map_err(|e| skipped(None, format!("cannot read the plist: {e}")))?;
    let value = Value::from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| skipped(None, format!("not a readable plist: {e}")))?;
    let dict = value
        .as_dictionary()
        .ok_or_else(|| skipped(None, "not a launchd job: the plist is not a dictionary".into()))?;
    let label = dict
        .get("Label")
        .and_then(Value::as_string)
        .ok_or_else(|| skipped(None, "Label: missing; launchd requires one".into()))?;
    let skip = |reason: String| skipped(Some(label), reason);
    if let Some(reason) = not_a_schedule(dict) {
        return Err(skip(reason));
    }
    let (program, args) = command(dict).map_err(skip)?;
    let mut timings = Vec::new();
    if let Some(calendar) = dict.get("StartCalendarInterval") {
        timings.extend(calendar_timings(calendar).map_err(skip)?);
    }
    if let Some(seconds) = dict.get("StartInterval") {
        let seconds = seconds
            .as_signed_integer()
            .filter(|s| *s > 0)
            .ok_or_else(|| skip("StartInterval: must be a positive number of seconds".into()))?;
        timings.push(interval_timing(seconds as u64));
    }
    let mut notes = Vec::new();
    let mut watches = Vec::new();
    for (key, queue) in [("WatchPaths", false), ("QueueDirectories", true)] {
        let Some(value) = dict.get(key) else { continue };
        let paths = value
            .as_array()
            .ok_or_else(|| skip(format!("{key}: must be an array of paths")))?;
        for path in paths {
            let path = path
                .as_string()
                .filter(|p| p.starts_with('/') || p.starts_with("~/"))
                .ok_or_else(|| skip(format!("{key}: each entry must be an absolute path")))?;
            let (watch, note) = watch_for(path, queue);
            notes.extend(note);
            watches.push(watch);
        }
    }
    let run_at_load = dict.get("RunAtLoad").and_then(Value::as_boolean) == Some(true);
    if timings.is_empty() && watches.is_empty() {
        return Err(skip(match run_at_load {
            true => "RunAtLoad only: it runs once at login, on no schedule".into(),
            false => "no StartCalendarInterval or StartInterval: launchd starts it only on demand".into(),
        }));
    }
    if run_at_load {
        notes.push(
            "RunAtLoad: launchd also ran it at login; here it runs at its times, \
             and once after the host was down (catch_up = \"once\")"
                .to_owned(),
        );
    }
    let mut env: BTreeMap<String, String> = match dict.get("EnvironmentVariables") {
        Some(Value::Dictionary(vars)) => vars
            .iter()
            .map(|(k, v)| match v.as_string() {
                Some(v) => Ok((k.clone(), v.to_owned())),
                None => Err(skip(format!("EnvironmentVariables.{k}: must be a string"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(skip("EnvironmentVariables: must be a dictionary".into())),
        None => BTreeMap::new(),
    };
    env.entry("PATH".into()).or_insert_with(|| LAUNCHD_PATH.into());
    let workdir = match dict.get("WorkingDirectory") {
        Some(dir) => Some(
            dir.as_string()
                .filter(|d| d.starts_with('/'))
                .map(PathBuf::from)
                .ok_or_else(|| skip("WorkingDirectory: must be an absolute path".into()))?,
        ),
        None => None,
    };
    let ignored: Vec<&str> = dict
        .keys()
        .map(String::as_str)
        .filter(|k| !MAPPED_KEYS.contains(k))
        .collect();
    if !ignored.is_empty() {
        let logs = ignored.iter().any(|k| k.starts_with("Standard"));
        notes.push(format!(
            "not carried over: {}{}",
            ignored.join(", "),
            if logs {
                " (the output's tail is kept in each run's record)"
            } else {
                ""
            }
        ));
    }
    let every_minute = timings.iter().any(|t| {
        matches!(t, ImportedTiming::Cron { expr, from }
            if from.starts_with("StartCalendarInterval") && expr.starts_with("* ") && expr != "* * * * *")
    });
    if every_minute {
        notes.push(
            "no Minute: launchd runs it every minute of the matching hours, and so does this \
             schedule; add a minute to its cron if that was not meant"
                .to_owned(),
        );
    }
    if timings.iter().any(|t| t.from().starts_with("StartInterval")) {
        notes.push(
            "StartInterval: launchd counts it from when the job was loaded; here it runs on \
             the clock's multiples of it, at the same rate"
                .to_owned(),
        );
    }
    Ok(Job {
        file: file.to_owned(),
        label: label.to_owned(),
        name: name_for(label),
        program,
        args,
        env,
        workdir,
        timings,
        watches,
        disabled: dict.get("Disabled").and_then(Value::as_boolean) == Some(true),
        notes,
    })
}

/// The keys the import maps (or that say it is not a schedule).
const MAPPED_KEYS: [&str; 13] = [
    "Label",
    "Program",
    "ProgramArguments",
    "EnvironmentVariables",
    "WorkingDirectory",
    "StartCalendarInterval",
    "StartInterval",
    "WatchPaths",
    "QueueDirectories",
    "RunAtLoad",
    "Disabled",
    "KeepAlive",
    "StartOnMount",
];

/// Why launchd starts this job for something other than time, if it does.
fn not_a_schedule(dict: &Dictionary) -> Option<String> {
    match dict.get("KeepAlive") {
        Some(Value::Boolean(true)) => {
            return Some("KeepAlive: a daemon launchd keeps running, not a scheduled job".into())
        }
        Some(Value::Dictionary(_)) => {
            return Some("KeepAlive: launchd restarts it on conditions, not on a schedule".into())
        }
        _ => {}
    }
    let reasons = [
        (
            "Sockets",
            "Sockets: launchd starts it on connections, not on a schedule",
        ),
        (
            "MachServices",
            "MachServices: launchd starts it on demand, not on a schedule",
        ),
    ];
    if let Some((_, reason)) = reasons.iter().find(|(key, _)| dict.contains_key(key)) {
        return Some((*reason).to_owned());
    }
    (dict.get("StartOnMount").and_then(Value::as_boolean) == Some(true))
        .then(|| "StartOnMount: it runs when a volume mounts, not on a schedule".to_owned())
}

/// A watched path as a watch: a directory, or a file as its directory
/// with its name for the pattern. Which one it is is read from this
/// machine when the path is here; otherwise a name with a `.` is taken
/// for a file, and the note says so.
fn watch_for(path: &str, queue: bool) -> (ImportedWatch, Option<String>) {
    let path = PathBuf::from(path);
    let as_dir = ImportedWatch {
        dir: path.clone(),
        file: None,
        queue,
    };
    let as_file = || {
        let name = path.file_name()?.to_str()?.to_owned();
        Some(ImportedWatch {
            dir: path.parent()?.to_path_buf(),
            file: Some(name),
            queue,
        })
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() || queue => (as_dir, None),
        Ok(_) => (as_file().unwrap_or(as_dir), None),
        Err(_) => {
            let looks_like_file = !queue && path.extension().is_some();
            let watch = if looks_like_file { as_file() } else { None }.unwrap_or(as_dir);
            let note = format!(
                "{}: {} is not on this machine; watched as {}",
                watch.from(),
                path.display(),
                match &watch.file {
                    Some(name) => format!("the file {name} in {}", watch.dir.display()),
                    None => "a directory".to_owned(),
                }
            );
            (watch, Some(note))
        }
    }
}

/// `Program` and `ProgramArguments` as the program and its arguments.
fn command(dict: &Dictionary) -> Result<(PathBuf, Vec<String>), String> {
    let arguments: Vec<String> = match dict.get("ProgramArguments") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| a.as_string().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("ProgramArguments: every item must be a string")?,
        Some(_) => return Err("ProgramArguments: must be an array of strings".into()),
        None => Vec::new(),
    };
    let (program, args) = match dict.get("Program").and_then(Value::as_string) {
        // argv[0] is the program's own name for itself: not an argument.
        Some(program) => (program.to_owned(), arguments.into_iter().skip(1).collect()),
        None => {
            let mut arguments = arguments.into_iter();
            let program = arguments
                .next()
                .ok_or("neither Program nor ProgramArguments: nothing to run")?;
            (program, arguments.collect())
        }
    };
    let path = if program.starts_with('/') {
        PathBuf::from(&program)
    } else {
        // launchd looks a bare name up on its own PATH.
        LAUNCHD_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(&program))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("Program `{program}`: not an absolute path, and not on {LAUNCHD_PATH}"))?
    };
    Ok((path, args))
}

/// A plugin and schedule name from a label: `com.acme.CRM sync` →
/// `com-acme-crm-sync`.
pub fn name_for(label: &str) -> String {
    let mut name = String::new();
    for c in label.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    let name = &name[name.len().saturating_sub(60)..];
    match name.trim_start_matches('-') {
        "" => "job".to_owned(),
        name => name.to_owned(),
    }
}

/// The fields of one calendar entry in cron order (minute, hour, day,
/// month, weekday); `None` is a wildcard.
type CalendarFields = [Option<BTreeSet<u32>>; 5];

const CALENDAR_KEYS: [(&str, u32, u32); 5] = [
    ("Minute", 0, 59),
    ("Hour", 0, 23),
    ("Day", 1, 31),
    ("Month", 1, 12),
    ("Weekday", 0, 7),
];

/// `StartCalendarInterval` (one dictionary, or an array of them) as cron
/// expressions: entries that differ in one field only share an expression
/// with a list in that field; the rest get one each.
pub fn calendar_timings(value: &Value) -> Result<Vec<ImportedTiming>, String> {
    let entries: Vec<&Dictionary> = match value {
        Value::Dictionary(d) => vec![d],
        Value::Array(items) => items
            .iter()
            .map(Value::as_dictionary)
            .collect::<Option<_>>()
            .ok_or("StartCalendarInterval: every item must be a dictionary")?,
        _ => return Err("StartCalendarInterval: must be a dictionary or an array of them".into()),
    };
    if entries.is_empty() {
        return Err("StartCalendarInterval: an empty array never fires".into());
    }
    let mut merged: Vec<(CalendarFields, Vec<String>)> = Vec::new();
    for entry in entries {
        merged.push((calendar_fields(entry)?, vec![describe(entry)]));
    }
    // Merge pairs differing in exactly one listed field until none do.
    'again: loop {
        for i in 0..merged.len() {
            for j in i + 1..merged.len() {
                if let Some(field) = sole_difference(&merged[i].0, &merged[j].0) {
                    let (mut other, from) = merged.remove(j);
                    if let (Some(into), Some(from_set)) = (&mut merged[i].0[field], other[field].take()) {
                        into.extend(from_set);
                    }
                    merged[i].1.extend(from);
                    continue 'again;
                }
            }
        }
        break;
    }
    Ok(merged
        .into_iter()
        .map(|(fields, from)| ImportedTiming::Cron {
            expr: fields
                .iter()
                .map(|f| match f {
                    None => "*".to_owned(),
                    Some(set) => set.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                })
                .collect::<Vec<_>>()
                .join(" "),
            from: format!("StartCalendarInterval {}", from.join(", ")),
        })
        .collect())
}

/// One calendar dictionary as fields; `Weekday` 7 is Sunday, 0.
fn calendar_fields(entry: &Dictionary) -> Result<CalendarFields, String> {
    if let Some(unknown) = entry
        .keys()
        .find(|k| !CALENDAR_KEYS.iter().any(|(name, ..)| name == k))
    {
        return Err(format!(
            "StartCalendarInterval: unknown key `{unknown}` (launchd knows Minute, Hour, Day, Weekday, Month)"
        ));
    }
    let mut fields: CalendarFields = Default::default();
    for (field, (key, low, high)) in fields.iter_mut().zip(CALENDAR_KEYS) {
        if let Some(value) = entry.get(key) {
            let n = value
                .as_signed_integer()
                .filter(|n| (i64::from(low)..=i64::from(high)).contains(n))
                .ok_or_else(|| {
                    format!("StartCalendarInterval.{key}: must be a number from {low} to {high}")
                })?;
            let n = if key == "Weekday" && n == 7 { 0 } else { n as u32 };
            *field = Some(BTreeSet::from([n]));
        }
    }
    Ok(fields)
}

/// The one field two entries differ in, if they differ in exactly one and
/// neither is a wildcard there.
fn sole_difference(a: &CalendarFields, b: &CalendarFields) -> Option<usize> {
    let differing: Vec<usize> = (0..5).filter(|&i| a[i] != b[i]).collect();
    match differing[..] {
        [field] if a[field].is_some() && b[field].is_some() => Some(field),
        _ => None,
    }
}

/// `{Hour=9, Minute=0}`, for the schedule file's comment.
fn describe(entry: &Dictionary) -> String {
    let fields: Vec<String> = CALENDAR_KEYS
        .iter()
        .filter_map(|(key, ..)| {
            let value = entry.get(key)?.as_signed_integer()?;
            Some(format!("{key}={value}"))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// `StartInterval` seconds as a cron step when it divides the hour or the
/// day, else as a fixed interval.
pub fn interval_timing(seconds: u64) -> ImportedTiming {
    let from = format!("StartInterval {seconds}");
    let cron = |expr: String| ImportedTiming::Cron {
        expr,
        from: from.clone(),
    };
    match (seconds % 60, seconds / 60) {
        (0, 1) => cron("* * * * *".into()),
        (0, minutes) if minutes < 60 && 60 % minutes == 0 => cron(format!("*/{minutes} * * * *")),
        (0, 60) => cron("0 * * * *".into()),
        (0, minutes) if minutes % 60 == 0 && minutes / 60 < 24 && 24 % (minutes / 60) == 0 => {
            cron(format!("0 */{} * * *", minutes / 60))
        }
        (0, 1440) => cron("0 0 * * *".into()),
        _ => ImportedTiming::Every {
            interval: Duration::from_secs(seconds),
            from,
        },
    }
}

impl ImportedTiming {
    /// The schedule file's line: `cron = "..."` or `every = "..."`.
    pub fn toml_line(&self) -> String {
        match self {
            ImportedTiming::Cron { expr, .. } => format!("cron = {}", toml_string(expr)),
            ImportedTiming::Every { interval, .. } => {
                format!("every = {}", toml_string(&HumanDuration(*interval).to_string()))
            }
        }
    }

    /// Which launchd key it came from.
    pub fn from(&self) -> &str {
        match self {
            ImportedTiming::Cron { from, .. } | ImportedTiming::Every { from, .. } => from,
        }
    }
}

impl std::fmt::Display for ImportedTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportedTiming::Cron { expr, .. } => f.write_str(expr),
            ImportedTiming::Every { interval, .. } => write!(f, "every {}", HumanDuration(*interval)),
        }
    }
}

/// `text` as a TOML string.
pub fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crons(xml: &str) -> Vec<String> {
        let value = Value::from_reader_xml(xml.as_bytes()).unwrap();
        calendar_timings(&value)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_missing_calendar_key_is_a_wildcard_and_weekday_7_is_sunday() {
        assert_eq!(
            crons("<dict><key>Hour</key><integer>9</integer></dict>"),
            ["* 9 * * *"]
        );
        assert_eq!(
            crons(
                "<dict><key>Minute</key><integer>30</integer><key>Weekday</key><integer>7</integer></dict>"
            ),
            ["30 * * * 0"]
        );
    }

    #[test]
    fn entries_differing_in_one_field_share_a_list_and_others_stay_apart() {
        let days = |d: &[u32]| {
            d.iter()
                .map(|d| format!("<dict><key>Weekday</key><integer>{d}</integer><key>Hour</key><integer>9</integer><key>Minute</key><integer>0</integer></dict>"))
                .collect::<String>()
        };
        assert_eq!(
            crons(&format!("<array>{}</array>", days(&[5, 1, 3]))),
            ["0 9 * * 1,3,5"]
        );
        let mixed = "<array>\
            <dict><key>Hour</key><integer>9</integer><key>Minute</key><integer>0</integer></dict>\
            <dict><key>Hour</key><integer>17</integer><key>Minute</key><integer>30</integer></dict>\
            <dict><key>Hour</key><integer>17</integer><key>Minute</key><integer>0</integer></dict>\
            </array>";
        // 9:00 and 17:00 share the minute; 17:30 and 17:00 share the hour:
        // one merge is taken, and what is left stands alone.
        let got = crons(mixed);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&"0 9,17 * * *".to_owned()), "{got:?}");
        assert!(got.contains(&"30 17 * * *".to_owned()), "{got:?}");
    }

    #[test]
    fn a_calendar_value_out_of_range_is_named() {
        let value =
            Value::from_reader_xml("<dict><key>Hour</key><integer>24</integer></dict>".as_bytes()).unwrap();
        let error = calendar_timings(&value).unwrap_err();
        assert_eq!(error, "StartCalendarInterval.Hour: must be a number from 0 to 23");
    }

    #[test]
    fn an_interval_is_a_cron_step_when_it_divides_the_hour_or_day() {
        let shown = |s| interval_timing(s).to_string();
        assert_eq!(shown(60), "* * * * *");
        assert_eq!(shown(900), "*/15 * * * *");
        assert_eq!(shown(3600), "0 * * * *");
        assert_eq!(shown(7200), "0 */2 * * *");
        assert_eq!(shown(86400), "0 0 * * *");
        assert_eq!(shown(5400), "every 90m");
        assert_eq!(shown(45), "every 45s");
        assert_eq!(shown(420), "every 7m");
    }

    #[test]
    fn names_are_made_from_labels() {
        assert_eq!(name_for("com.acme.CRM sync"), "com-acme-crm-sync");
        assert_eq!(name_for("local.backup_nightly"), "local-backup_nightly");
        assert_eq!(name_for("..."), "job");
    }
}
