//! `mission watches`: each watch, what it watches, whether it is watching
//! (a watch whose directory is gone is shown broken), what it last saw and
//! its latest run.

use std::process::ExitCode;

use serde::Serialize;

use super::open_db;
use crate::config::Config;
use crate::triggers::watch::seen::{self, WatchRecord};

/// `mission watches`'s arguments.
#[derive(Debug, clap::Args)]
pub struct WatchesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A configured watch with its record.
#[derive(Serialize)]
struct WatchStatus {
    name: String,
    plugin: String,
    paths: Vec<String>,
    pattern: Option<String>,
    until_empty: bool,
    record: Option<WatchRecord>,
}

pub(super) async fn list(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let records = seen::records(&db).await?;
    let watches: Vec<WatchStatus> = config
        .watches
        .iter()
        .map(|w| WatchStatus {
            name: w.name.clone(),
            plugin: w.plugin.to_string(),
            paths: w.paths.iter().map(|p| p.display().to_string()).collect(),
            pattern: w.pattern.clone(),
            until_empty: w.until_empty,
            record: records.iter().find(|r| r.watch == w.name).cloned(),
        })
        .collect();
    if json {
        say!("{}", serde_json::to_string_pretty(&watches)?);
        return Ok(ExitCode::SUCCESS);
    }
    if watches.is_empty() {
        say!(
            "No watch is configured ([watches.NAME] in {}).",
            config.file.display()
        );
    }
    for w in watches {
        let what = match &w.pattern {
            Some(pattern) => format!("{pattern} in {}", w.paths.join(", ")),
            None => w.paths.join(", "),
        };
        let queue = if w.until_empty {
            " (a queue: runs until empty)"
        } else {
            ""
        };
        say!("{}  runs `{}` on changes to {what}{queue}", w.name, w.plugin);
        if let Some(r) = w.record.as_ref().filter(|r| r.broken.is_some()) {
            say!(
                "    BROKEN, not watching since {}: {} (it watches again when the directory is back)",
                r.broken_since
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
                r.broken.as_deref().unwrap_or_default()
            );
        }
        match w.record {
            Some(r) => say!(
                "    saw {} file(s) at {}; {} run(s){}",
                r.files,
                r.seen_at.format("%Y-%m-%d %H:%M:%S UTC"),
                r.runs,
                match (r.last_run, r.last_outcome) {
                    (Some(id), Some(outcome)) =>
                        format!(", the latest #{id} {outcome} (mission runs --id {id})"),
                    _ => String::new(),
                }
            ),
            None => say!("    not started yet: `mission up` takes stock of it"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
