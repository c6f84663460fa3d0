//! What a watch has seen of its directories: each matching file's size and
//! modification time, scanned from the disk and kept in SQLite after each
//! run, so the changes since — while the host ran, or while it was down —
//! are a difference of two scans, whatever the file watcher reported.
//! A name that is not UTF-8 is left out (a plugin is told, and opens, paths
//! as strings), and the log says so whenever what is left out changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::config::watches::WatchConfig;
use crate::db::Database;
pub use crate::wasm::bindings::task::mission::plugin::event::ChangeKind;

/// The most files one scan of a watch records; the rest are left out, and
/// logged.
const MAX_FILES: usize = 100_000;

/// A file as seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    size: u64,
    mtime_ns: i64,
}

/// The files of a watch: by directory, then path inside it.
pub type Files = BTreeMap<(PathBuf, String), Seen>;

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The watched directory it is in.
    pub root: PathBuf,
    /// Its path inside, `/`-separated.
    pub path: String,
    /// `created`, `modified` or `removed`.
    pub kind: ChangeKind,
}

/// The entries a watch's scans leave out because their names are not
/// UTF-8, as last told in the log.
#[derive(Debug, Default)]
pub struct LeftOut(BTreeSet<PathBuf>);

impl LeftOut {
    /// Logs `now` if it is not what was last told.
    fn tell(&mut self, watch: &str, now: BTreeSet<PathBuf>) {
        if now == self.0 {
            return;
        }
        if !now.is_empty() {
            let shown: Vec<String> = now
                .iter()
                .take(5)
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            tracing::warn!(
                watch,
                left_out = now.len(),
                names = ?shown,
                "files left out of the watch: their names are not UTF-8, so a plugin could not be told them"
            );
        }
        self.0 = now;
    }
}

/// Scans `watch`'s directories now. A directory that cannot be read is
/// logged and its files are taken from `before`, so a missing disk is not
/// a removal of everything on it; names that are not UTF-8 are left out
/// and told through `left_out`.
pub fn scan(watch: &WatchConfig, before: &Files, left_out: &mut LeftOut) -> Files {
    let mut files = Files::new();
    let mut unnamed = BTreeSet::new();
    for root in &watch.paths {
        let mut found = Files::new();
        match walk(watch, root, root, &mut found, &mut unnamed) {
            Ok(()) => files.extend(found),
            Err(e) => {
                tracing::warn!(watch = watch.name, path = %root.display(), "cannot read the watched directory: {e}");
                files.extend(
                    before
                        .iter()
                        .filter(|((r, _), _)| r == root)
                        .map(|(k, v)| (k.clone(), *v)),
                );
            }
        }
    }
    left_out.tell(&watch.name, unnamed);
    if files.len() >= MAX_FILES {
        tracing::warn!(
            watch = watch.name,
            "more than {MAX_FILES} files: the rest are not watched"
        );
    }
    files
}

fn walk(
    watch: &WatchConfig,
    root: &Path,
    dir: &Path,
    found: &mut Files,
    unnamed: &mut BTreeSet<PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        if found.len() >= MAX_FILES {
            return Ok(());
        }
        let entry = entry?;
        // Symlinks are not followed: a watch sees what is in its directories.
        let metadata = entry.path().symlink_metadata()?;
        let name = entry.file_name();
        let matches = |name: &str| metadata.is_dir() || (metadata.is_file() && watch.matches(name));
        let Some(name) = name.to_str() else {
            if matches(&name.to_string_lossy()) {
                unnamed.insert(entry.path());
            }
            continue;
        };
        if metadata.is_dir() {
            walk(watch, root, &entry.path(), found, unnamed)?;
        } else if matches(name) {
            let Ok(relative) = entry.path().strip_prefix(root).map(Path::to_path_buf) else {
                continue;
            };
            let path = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let mtime_ns = metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            found.insert(
                (root.to_path_buf(), path),
                Seen {
                    size: metadata.len(),
                    mtime_ns,
                },
            );
        }
    }
    Ok(())
}

/// What changed from `before` to `now`.
pub fn changes(before: &Files, now: &Files) -> Vec<Change> {
    let mut changes = Vec::new();
    for (key, seen) in now {
        let kind = match before.get(key) {
            None => ChangeKind::Created,
            Some(old) if old != seen => ChangeKind::Modified,
            Some(_) => continue,
        };
        changes.push(Change {
            root: key.0.clone(),
            path: key.1.clone(),
            kind,
        });
    }
    for key in before.keys().filter(|k| !now.contains_key(*k)) {
        changes.push(Change {
            root: key.0.clone(),
            path: key.1.clone(),
            kind: ChangeKind::Removed,
        });
    }
    changes
}

/// Every file in `now`, as created: what a queue directory holds.
pub fn present(now: &Files) -> Vec<Change> {
    changes(&Files::new(), now)
}

/// What `watch` saw after its last run, if it has seen anything yet.
pub async fn load(db: &Database, watch: &str) -> anyhow::Result<Option<Files>> {
    let watch = watch.to_owned();
    db.call(move |c| {
        let known: Option<i64> = c
            .query_row("SELECT 1 FROM watch_state WHERE watch = ?1", [&watch], |r| {
                r.get(0)
            })
            .optional()?;
        if known.is_none() {
            return Ok(None);
        }
        let mut statement =
            c.prepare("SELECT root, path, size, mtime_ns FROM watch_files WHERE watch = ?1")?;
        let rows = statement.query_map([&watch], |row| {
            Ok((
                (PathBuf::from(row.get::<_, String>(0)?), row.get::<_, String>(1)?),
                Seen {
                    size: row.get(2)?,
                    mtime_ns: row.get(3)?,
                },
            ))
        })?;
        rows.collect::<rusqlite::Result<Files>>().map(Some)
    })
    .await
}

/// Keeps `files` as what `watch` has seen, with the run that saw them.
pub async fn save(db: &Database, watch: &str, files: &Files, run: Option<i64>) -> anyhow::Result<()> {
    let (watch, files) = (watch.to_owned(), files.clone());
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction()?;
        transaction.execute("DELETE FROM watch_files WHERE watch = ?1", [&watch])?;
        {
            let mut insert = transaction
                .prepare_cached("INSERT INTO watch_files (watch, root, path, size, mtime_ns) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for ((root, path), seen) in &files {
                insert.execute(rusqlite::params![watch, root.to_string_lossy(), path, seen.size, seen.mtime_ns])?;
            }
        }
        transaction.execute(
            "INSERT INTO watch_state (watch, seen_at, files, last_run, runs) VALUES (?1, ?2, ?3, ?4, ?4 IS NOT NULL)
             ON CONFLICT (watch) DO UPDATE SET seen_at = ?2, files = ?3, last_run = coalesce(?4, last_run),
                 runs = runs + (?4 IS NOT NULL)",
            rusqlite::params![watch, now, files.len() as i64, run],
        )?;
        transaction.commit()
    })
    .await
}

/// A watch as `mission watches` and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchRecord {
    /// Its name.
    pub watch: String,
    /// When it last took stock of its directories.
    pub seen_at: chrono::DateTime<chrono::Utc>,
    /// How many matching files it saw then.
    pub files: u64,
    /// Its latest run.
    pub last_run: Option<i64>,
    /// How that run ended.
    pub last_outcome: Option<String>,
    /// Its runs in all.
    pub runs: u64,
    /// Why it is not watching (a directory gone), if it is not.
    pub broken: Option<String>,
    /// Since when it has not been watching.
    pub broken_since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Every watch that has seen its directories, by name.
pub async fn records(db: &Database) -> anyhow::Result<Vec<WatchRecord>> {
    db.call(|c| {
        let mut statement = c.prepare(
            "SELECT w.watch, w.seen_at, w.files, w.last_run, r.outcome, w.runs, w.broken, w.broken_since
             FROM watch_state w LEFT JOIN runs r ON r.id = w.last_run ORDER BY w.watch",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(WatchRecord {
                watch: row.get(0)?,
                seen_at: crate::db::datetime(row.get(1)?),
                files: row.get(2)?,
                last_run: row.get(3)?,
                last_outcome: row.get(4)?,
                runs: row.get(5)?,
                broken: row.get(6)?,
                broken_since: row.get::<_, Option<i64>>(7)?.map(crate::db::datetime),
            })
        })?;
        rows.collect()
    })
    .await
}
