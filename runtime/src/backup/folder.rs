//! The folder archives are kept in: their names (the time each was taken),
//! which are complete, keeping the newest, and clearing what a killed
//! backup left. An archive is written under a hidden partial name and only
//! linked to its own name once complete and synced, so anything named
//! `mission-*.tar.gz` here is whole.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

/// How an archive's name begins.
const PREFIX: &str = "mission-";
/// How an archive's name ends.
const SUFFIX: &str = ".tar.gz";
/// How the time an archive was taken is written in its name.
const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";
/// How a partial archive's name begins, before its time and process.
const PARTIAL: &str = ".mission-partial-";

/// The name of the archive taken at `at`.
pub fn archive_name(at: DateTime<Utc>) -> String {
    format!("{PREFIX}{}{SUFFIX}", at.format(STAMP))
}

/// When the archive named `name` was taken, if `name` is an archive's.
pub fn taken_at(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()
        .map(|t| t.and_utc())
}

/// Where this process writes the archive taken at `at` until it is
/// complete.
pub fn partial_path(dir: &Path, at: DateTime<Utc>) -> PathBuf {
    dir.join(format!("{PARTIAL}{}-{}", at.format(STAMP), std::process::id()))
}

/// Where the database's copy for the partial archive `partial` is made.
pub fn database_copy_path(partial: &Path) -> PathBuf {
    with_suffix(partial, ".db")
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The complete archives in `dir`, oldest first, with when each was taken.
pub fn archives(dir: &Path) -> io::Result<Vec<(PathBuf, DateTime<Utc>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut archives = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(at) = entry.file_name().to_str().and_then(taken_at) {
            if entry.file_type()?.is_file() {
                archives.push((entry.path(), at));
            }
        }
    }
    archives.sort_by_key(|(_, at)| *at);
    Ok(archives)
}

/// Removes all but the `keep` newest archives in `dir`: those removed.
pub fn keep_newest(dir: &Path, keep: usize) -> io::Result<Vec<PathBuf>> {
    let archives = archives(dir)?;
    let excess = archives.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (path, _) in archives.into_iter().take(excess) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            // Another backup (the host's, or a command's) removed it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Removes the partial files of backups whose process is gone (killed
/// mid-way): how many.
pub fn remove_abandoned(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PARTIAL)) else {
            continue;
        };
        // `STAMP-PID`, then `.db` for the database's copy and maybe
        // SQLite's own side files (`.db-journal`); the stamp has no `-`.
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(_, after)| after.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if crate::os::process_exists(pid) {
            continue;
        }
        std::fs::remove_file(entry.path())?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_when_and_sort_by_it() {
        let at = DateTime::parse_from_rfc3339("2026-12-07T18:30:05.042Z")
            .unwrap()
            .to_utc();
        let name = archive_name(at);
        assert_eq!(name, "mission-20261207T183005.042Z.tar.gz");
        assert_eq!(taken_at(&name), Some(at));
        assert_eq!(taken_at("mission-yesterday.tar.gz"), None);
        assert_eq!(taken_at(".mission-partial-20261207T183005.042Z-12"), None);
    }

    #[test]
    fn keeps_the_newest_and_ignores_what_is_not_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let start = DateTime::parse_from_rfc3339("2026-12-01T03:00:00Z")
            .unwrap()
            .to_utc();
        for day in 0..5 {
            let at = start + chrono::Duration::days(day);
            std::fs::write(dir.path().join(archive_name(at)), "x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let removed = keep_newest(dir.path(), 2).unwrap();
        assert_eq!(removed.len(), 3);
        let left: Vec<DateTime<Utc>> = archives(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, at)| at)
            .collect();
        assert_eq!(
            left,
            [
                start + chrono::Duration::days(3),
                start + chrono::Duration::days(4)
            ]
        );
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_dead_backup_s_partial_files_are_removed_a_live_one_s_kept() {
        let dir = tempfile::tempdir().unwrap();
        let at = Utc::now();
        let ours = partial_path(dir.path(), at);
        std::fs::write(&ours, "in progress").unwrap();
        // No process has this id (above the kernel's pid_max).
        let dead = dir
            .path()
            .join(format!("{PARTIAL}{}-{}", at.format(STAMP), 99_999_999));
        std::fs::write(&dead, "abandoned").unwrap();
        std::fs::write(database_copy_path(&dead), "abandoned copy").unwrap();
        let ours_journal = dir.path().join(format!(
            "{}-journal",
            database_copy_path(&ours).file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&ours_journal, "SQLite's, in progress").unwrap();
        std::fs::write(
            dir.path().join(format!("{PARTIAL}unreadable")),
            "not ours to judge",
        )
        .unwrap();
        assert_eq!(remove_abandoned(dir.path()).unwrap(), 2);
        assert!(ours.exists());
        assert!(ours_journal.exists());
        assert!(!dead.exists());
    }
}
