//! `mission plugins` and `mission reload`: what each plugin runs as, and
//! reloading it in a running host.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;

use super::open_db;
use crate::config::Config;
use crate::plugin::loads::{self, LoadOutcome};
use crate::serve::control::{self, RequestKind};

/// `mission plugins`'s arguments.
#[derive(Debug, clap::Args)]
pub struct PluginsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mission reload`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The plugin; all if left out.
    pub plugin: Option<String>,
}

pub(super) async fn list_plugins(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let mut rows = Vec::new();
    for plugin in &config.plugins {
        let (last, loaded) = loads::latest(&db, plugin.name.as_str()).await?;
        rows.push(json!({
            "name": plugin.name.as_str(),
            "world": plugin.world.to_string(),
            "wasm": plugin.wasm.display().to_string(),
            "hash": loaded.as_ref().and_then(|l| l.new_hash.clone()),
            "loaded_at": loaded.as_ref().map(|l| l.at.to_rfc3339()),
            "last_outcome": last.as_ref().map(|l| l.outcome),
            "last_at": last.as_ref().map(|l| l.at.to_rfc3339()),
            "last_error": last.as_ref().and_then(|l| l.error.clone()),
        }));
    }
    if json {
        say!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = rows
        .iter()
        .filter_map(|row| row["name"].as_str())
        .map(str::len)
        .chain([6])
        .max()
        .unwrap_or(6);
    say!(
        "{:<name_width$} {:<6} {:<12} {:<19} LAST RELOAD",
        "PLUGIN",
        "WORLD",
        "HASH",
        "LOADED AT (UTC)"
    );
    for row in &rows {
        let hash = row["hash"].as_str().map_or("-", |h| &h[..12]);
        let last = match (row["last_outcome"].as_str(), row["last_error"].as_str()) {
            (Some(outcome), Some(error)) => format!("{outcome}: {error}"),
            (Some(outcome), None) => outcome.to_owned(),
            _ => "-".to_owned(),
        };
        let loaded_at = row["loaded_at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
            .map_or("never".to_owned(), |at| {
                at.format("%Y-%m-%d %H:%M:%S").to_string()
            });
        say!(
            "{:<name_width$} {:<6} {:<12} {:<19} {last}",
            row["name"].as_str().unwrap_or_default(),
            row["world"].as_str().unwrap_or_default(),
            hash,
            loaded_at,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn reload(config: Config, plugin: Option<&str>) -> anyhow::Result<ExitCode> {
    let targets: Vec<String> = match plugin {
        Some(name) if config.plugin(name).is_none() => {
            bail!("no plugin named `{name}` in {}", config.file.display())
        }
        Some(name) => vec![name.to_owned()],
        None => config.plugins.iter().map(|p| p.name.to_string()).collect(),
    };
    let db = open_db(&config)?;
    let Some(pid) = control::running_host(&db).await? else {
        bail!(
            "no host is running on {}: nothing to reload",
            config.file.display()
        );
    };
    let after = loads::newest_id(&db).await?;
    control::request(&db, RequestKind::Reload, plugin.unwrap_or("")).await?;
    eprintln!(
        "asked the running host (pid {pid}) to reload {}",
        targets.join(", ")
    );
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    while seen.len() < targets.len() {
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the host did not answer the reload request within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for load in loads::since(&db, after).await? {
            if targets.contains(&load.plugin)
                && !seen.iter().any(|s: &loads::PluginLoad| s.plugin == load.plugin)
            {
                seen.push(load);
            }
        }
    }
    let mut refused = false;
    for load in &seen {
        refused |= load.outcome == LoadOutcome::Refused;
        match &load.error {
            Some(error) => say!("{}: {}: {error}", load.plugin, load.outcome),
            None => say!(
                "{}: {} ({})",
                load.plugin,
                load.outcome,
                load.new_hash.as_deref().map_or("-", |h| &h[..12])
            ),
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
