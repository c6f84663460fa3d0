//! Schedule files as the host's own tools write them. A change is planned
//! first — the file's new text, read exactly as the host will read it, so
//! what the config would refuse is refused before anyone is asked, with
//! the config's own error — then applied once a person pressed for it:
//! written under a temporary name and renamed (hot reload applies it), with
//! a first line saying who asked for it and when. A deleted schedule is
//! moved aside into `.deleted/` in the schedules directory, kept, and can
//! be brought back.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::after::check_schedule_name;
use crate::config::Config;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{Schedule, ORIGIN_PREFIX};

/// Where deleted schedule files are kept, inside the schedules directory.
const DELETED: &str = ".deleted";

/// The fields a tool may set, as the schedule file names them.
const FIELDS: [&str; 7] = [
    "plugin", "cron", "every", "timezone", "config", "overlap", "catch_up",
];

/// A change to one schedule file, planned and checked.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The schedule's name.
    pub name: String,
    /// Its file.
    pub file: PathBuf,
    /// The file's text now, if there is one.
    pub before: Option<String>,
    /// Its text after, if there is one (none: deleted).
    pub after: Option<String>,
    /// The schedule as the host will read it, if there is one after.
    pub schedule: Option<Schedule>,
    /// A deleted file this brings back, if it does.
    pub restores: Option<PathBuf>,
}

/// A new schedule `input["name"]` with `input`'s fields.
pub fn plan_create(config: &Config, input: &Map<String, Value>) -> Result<Planned, String> {
    let name = name(input)?;
    let file = file_of(config, &name);
    if file.exists() {
        return Err(format!(
            "a schedule named `{name}` exists already: change_schedule changes it, or pick another name"
        ));
    }
    let mut table = toml::Table::new();
    set_fields(&mut table, input)?;
    planned(config, name, file, None, &table, None)
}

/// Schedule `input["name"]` with `input`'s fields laid over its file's.
pub fn plan_change(config: &Config, input: &Map<String, Value>) -> Result<Planned, String> {
    let name = name(input)?;
    let file = file_of(config, &name);
    let before = read(&file, &name)?;
    let mut table: toml::Table = toml::from_str(&before)
        .map_err(|e| format!("{}: cannot be read to change it: {e}", file.display()))?;
    if input.contains_key("cron") {
        table.remove("every");
    }
    if input.contains_key("every") {
        table.remove("cron");
    }
    set_fields(&mut table, input)?;
    let header = header_of(&before);
    planned(config, name, file, Some(before), &table, Some(header))
}

/// Schedule `input["name"]` moved aside.
pub fn plan_delete(config: &Config, input: &Map<String, Value>) -> Result<Planned, String> {
    let name = name(input)?;
    let file = file_of(config, &name);
    let before = read(&file, &name)?;
    Ok(Planned {
        name,
        file,
        before: Some(before),
        after: None,
        schedule: None,
        restores: None,
    })
}

/// Schedule `input["name"]` brought back from its latest deletion.
pub fn plan_restore(config: &Config, input: &Map<String, Value>) -> Result<Planned, String> {
    let name = name(input)?;
    let file = file_of(config, &name);
    if file.exists() {
        return Err(format!(
            "a schedule named `{name}` exists: there is nothing to bring back"
        ));
    }
    let kept = deleted(config, &name)
        .pop()
        .ok_or_else(|| format!("no deleted schedule named `{name}` is kept"))?;
    let text = std::fs::read_to_string(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
    let schedule = Schedule::parse(&file, &text, config, host_zone()).map_err(|e| e.to_string())?;
    Ok(Planned {
        name,
        file,
        before: None,
        after: Some(text),
        schedule: Some(schedule),
        restores: Some(kept),
    })
}

/// Makes `planned` so: the file written (with `origin`, the line saying
/// who asked for it, first; a file brought back leaves `.deleted/`), or
/// moved aside. Returns the text written, if any.
pub fn apply(planned: &Planned, origin: &str) -> Result<Option<String>, String> {
    let failed = |e: std::io::Error| format!("{}: {e}", planned.file.display());
    // What the card showed is what is replaced, or nothing is.
    if let Some(before) = &planned.before {
        let now = std::fs::read_to_string(&planned.file).map_err(failed)?;
        if &now != before {
            return Err(format!(
                "{} changed while the card waited; ask again to see it as it is",
                planned.file.display()
            ));
        }
    }
    let Some(after) = &planned.after else {
        let dir = planned.file.parent().unwrap_or(Path::new(".")).join(DELETED);
        std::fs::create_dir_all(&dir).map_err(failed)?;
        let kept = dir.join(format!("{}.{}.toml", planned.name, Utc::now().timestamp_millis()));
        std::fs::rename(&planned.file, kept).map_err(failed)?;
        return Ok(None);
    };
    let text = format!("{ORIGIN_PREFIX}{origin}\n{after}");
    let stamp = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let temporary = planned
        .file
        .with_extension(format!("toml.{}.{stamp}.new", std::process::id()));
    std::fs::write(&temporary, &text).map_err(failed)?;
    let placed = match &planned.before {
        // Replaces the file the card showed.
        Some(_) => std::fs::rename(&temporary, &planned.file),
        // A new one never replaces a file made meanwhile.
        None => std::fs::hard_link(&temporary, &planned.file).and_then(|()| std::fs::remove_file(&temporary)),
    };
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!(
                    "a schedule named `{}` was made while the card waited",
                    planned.name
                )
            }
            _ => failed(e),
        });
    }
    if let Some(kept) = &planned.restores {
        if let Err(e) = std::fs::remove_file(kept) {
            tracing::warn!(file = %kept.display(), "brought back, but its deleted copy stays: {e}");
        }
    }
    Ok(Some(text))
}

/// The line a written file starts with, after [`ORIGIN_PREFIX`]: "created
/// by Anna on 2026-12-07 16:20 UTC".
pub fn origin(what: &str, by: Option<&str>, at: DateTime<Utc>) -> String {
    let by = by.map_or("allowed outright by the config".to_owned(), |by| {
        format!("by {by}")
    });
    format!("{what} {by} on {}", at.format("%Y-%m-%d %H:%M UTC"))
}

/// The deleted files of schedule `name` kept, oldest first.
fn deleted(config: &Config, name: &str) -> Vec<PathBuf> {
    let dir = config.schedules_dir.join(DELETED);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut kept: Vec<(i64, PathBuf)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let file = path.file_name()?.to_str()?;
            let stamp = file
                .strip_prefix(name)?
                .strip_prefix('.')?
                .strip_suffix(".toml")?;
            Some((stamp.parse().ok()?, path))
        })
        .collect();
    kept.sort();
    kept.into_iter().map(|(_, path)| path).collect()
}

fn name(input: &Map<String, Value>) -> Result<String, String> {
    let name = input
        .get("name")
        .and_then(Value::as_str)
        .ok_or("`name`: the schedule's name is required")?;
    check_schedule_name(name).map_err(|e| format!("`name`: {e}"))?;
    Ok(name.to_owned())
}

fn file_of(config: &Config, name: &str) -> PathBuf {
    config.schedules_dir.join(format!("{name}.toml"))
}

fn read(file: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("there is no schedule named `{name}` (see the schedules tool)")
        }
        _ => format!("{}: {e}", file.display()),
    })
}

/// The comment lines a file begins with (who asked for it before).
fn header_of(text: &str) -> String {
    text.lines()
        .take_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Lays `input`'s schedule fields over `table`; refuses a field no tool
/// sets.
fn set_fields(table: &mut toml::Table, input: &Map<String, Value>) -> Result<(), String> {
    for (key, value) in input {
        if key == "name" {
            continue;
        }
        if !FIELDS.contains(&key.as_str()) {
            return Err(format!(
                "`{key}`: not a field the tools set (they set {})",
                FIELDS.join(", ")
            ));
        }
        let value = match (key.as_str(), value) {
            ("config", Value::Object(values)) => {
                let mut merged = match table.remove("config") {
                    Some(toml::Value::Table(kept)) => kept,
                    _ => toml::Table::new(),
                };
                for (name, value) in values {
                    merged.insert(name.clone(), scalar(&format!("config.{name}"), value)?);
                }
                toml::Value::Table(merged)
            }
            ("config", _) => return Err("`config`: an object of names and values".into()),
            (key, value) => scalar(key, value)?,
        };
        table.insert(key.clone(), value);
    }
    Ok(())
}

fn scalar(field: &str, value: &Value) -> Result<toml::Value, String> {
    Ok(match value {
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        _ => return Err(format!("`{field}`: a string, a number or true/false")),
    })
}

/// The plan for `table` as schedule `name`'s file, read as the host will
/// read it.
fn planned(
    config: &Config,
    name: String,
    file: PathBuf,
    before: Option<String>,
    table: &toml::Table,
    header: Option<String>,
) -> Result<Planned, String> {
    let body = toml::to_string(table).map_err(|e| e.to_string())?;
    let after = format!("{}{body}", header.unwrap_or_default());
    let schedule = Schedule::parse(&file, &after, config, host_zone()).map_err(|e| e.to_string())?;
    Ok(Planned {
        name,
        file,
        before,
        after: Some(after),
        schedule: Some(schedule),
        restores: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: serde_json::Value) -> Map<String, Value> {
        match json {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn what_the_card_showed_is_what_is_changed_or_nothing_is() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::parse(
            &dir.path().join("mission.toml"),
            "data_dir = \"d\"\n[plugins.p]\nworld = \"task\"\nwasm = \"p.wasm\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(&config.schedules_dir).unwrap();
        let file = config.schedules_dir.join("brief.toml");
        // A new one never replaces a file made while its card waited.
        let create = plan_create(
            &config,
            &input(serde_json::json!({"name": "brief", "plugin": "p", "cron": "0 7 * * *"})),
        )
        .unwrap();
        std::fs::write(&file, "plugin = \"p\"\ncron = \"0 9 * * *\"\n").unwrap();
        let error = apply(&create, "created by A").unwrap_err();
        assert!(error.contains("was made while the card waited"), "{error}");
        assert!(std::fs::read_to_string(&file).unwrap().contains("0 9 * * *"));
        // A change applies to the text it was planned on, not to an edit since.
        let change = plan_change(
            &config,
            &input(serde_json::json!({"name": "brief", "cron": "0 8 * * *"})),
        )
        .unwrap();
        std::fs::write(&file, "plugin = \"p\"\ncron = \"0 10 * * *\"\n").unwrap();
        let error = apply(&change, "changed by A").unwrap_err();
        assert!(error.contains("changed while the card waited"), "{error}");
        let change = plan_change(
            &config,
            &input(serde_json::json!({"name": "brief", "cron": "0 8 * * *"})),
        )
        .unwrap();
        let written = apply(&change, "changed by A").unwrap().unwrap();
        assert!(
            written.starts_with("# From the chat: changed by A\n"),
            "{written}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
        let left: Vec<_> = std::fs::read_dir(&config.schedules_dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }
}
