//! The watches' section of the status page: each watch with what it
//! watches, when it last took stock, its runs, and why it is not watching
//! if it is not.

use serde::Serialize;

use super::seen::records;
use crate::config::watches::WatchConfig;
use crate::db::Database;
use crate::display::local;

/// One watch as the page shows it.
#[derive(Debug, Serialize)]
pub struct WatchStatus {
    /// Its name.
    pub name: String,
    /// What it watches: the directories, with the pattern.
    pub what: String,
    /// The plugin it runs.
    pub plugin: String,
    /// When it last took stock, host time, and how many files it saw.
    pub seen: Option<String>,
    /// Its runs in all, and how the latest ended.
    pub runs: String,
    /// Whether the latest run failed.
    pub failed: bool,
    /// Why it is not watching and since when, if it is not (a directory
    /// gone).
    pub broken: Option<String>,
}

/// The watches configured as `watches`, by name.
pub async fn section(db: &Database, watches: &[WatchConfig]) -> anyhow::Result<Vec<WatchStatus>> {
    let seen = records(db).await?;
    Ok(watches
        .iter()
        .map(|w| {
            let record = seen.iter().find(|r| r.watch == w.name);
            let paths: Vec<String> = w.paths.iter().map(|p| p.display().to_string()).collect();
            WatchStatus {
                name: w.name.clone(),
                what: match &w.pattern {
                    Some(pattern) => format!("{pattern} in {}", paths.join(", ")),
                    None => paths.join(", "),
                },
                plugin: w.plugin.to_string(),
                seen: record.map(|r| format!("{} ({} files)", local(r.seen_at), r.files)),
                runs: match record {
                    Some(r) => format!(
                        "{} run(s){}",
                        r.runs,
                        r.last_outcome
                            .as_deref()
                            .map(|o| format!(", latest {o}"))
                            .unwrap_or_default()
                    ),
                    None => "not started".to_owned(),
                },
                failed: record
                    .and_then(|r| r.last_outcome.as_deref())
                    .is_some_and(|o| o != "succeeded"),
                broken: record.and_then(|r| {
                    let since = r.broken_since.map(local).unwrap_or_default();
                    r.broken
                        .as_ref()
                        .map(|reason| format!("not watching since {since}: {reason}"))
                }),
            }
        })
        .collect())
}
