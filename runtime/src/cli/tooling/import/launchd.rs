//! LaunchAgent plists (XML or binary) read as jobs: the program and its
//! arguments, environment and working directory, and when launchd starts
//! it, mapped to schedules (`StartCalendarInterval`, `StartInterval`) and
//! watches (`WatchPaths`, `QueueDirectories`). Jobs launchd starts for
//! other reasons (kept alive, on sockets, on mounts) are reported, not
//! imported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use super::timing::{calendar_timings, interval_timing, ImportedTiming};
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_from_labels() {
        assert_eq!(name_for("com.acme.CRM sync"), "com-acme-crm-sync");
        assert_eq!(name_for("local.backup_nightly"), "local-backup_nightly");
        assert_eq!(name_for("..."), "job");
    }
}
