//! `mission db`: how big the SQLite file is and what fills it, and the
//! compile cache beside it; with `--compact`, prune what retention no longer
//! keeps, give the space back, and sweep compiled code no plugin uses.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::SystemTime;

use chrono::Utc;
use serde::Serialize;

use super::open_db;
use crate::config::units::HumanDuration;
use crate::config::{Config, Limits};
use crate::db::retention::{self, Policy, Pruned};
use crate::db::Database;
use crate::display::bytes;
use crate::host::DATABASE_FILE;
use crate::os::regular_file;
use crate::plugin::cache::{CacheFiles, CompileCache, CACHE_DIR};
use crate::plugin::hash::ContentHash;
use crate::serve::pruning::RULES;

/// `mission db`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// Prune what retention no longer keeps now, then give the space back
    /// (VACUUM).
    #[arg(long)]
    pub compact: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One table: its rows and the bytes its pages (with its indexes) take.
#[derive(Debug, Serialize)]
struct TableSize {
    table: String,
    rows: u64,
    bytes: u64,
}

/// What one plugin keeps in `state`, against its quota.
#[derive(Debug, Serialize)]
struct StateUsage {
    plugin: String,
    keys: u64,
    bytes: u64,
    max_keys: u64,
    max_bytes: u64,
}

/// The file, its write-ahead log and its tables; what each plugin keeps in
/// `state`; the compile cache.
#[derive(Debug, Serialize)]
struct Sizes {
    file_bytes: u64,
    wal_bytes: u64,
    free_bytes: u64,
    tables: Vec<TableSize>,
    state: Vec<StateUsage>,
    compile_cache: CacheFiles,
}

pub(super) async fn db(config: Config, compact: bool, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let cache = CompileCache::open(
        &config.data_dir.join(CACHE_DIR),
        &crate::wasm::engine::new_engine()?,
    )?;
    let before = sizes(&config, &db, &cache).await?;
    let mut compacted: Option<(Pruned, CacheFiles, Sizes)> = None;
    if compact {
        let policy = Policy::of(&config);
        let pruned = retention::prune(&db, &policy, Utc::now(), RULES).await?;
        db.call(|c| {
            c.execute_batch("VACUUM")?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })
        .await?;
        let swept = cache.sweep(
            &configured_components(&config),
            policy.retention.compile_cache,
            SystemTime::now(),
        )?;
        compacted = Some((pruned, swept, sizes(&config, &db, &cache).await?));
    }
    if json {
        let value = match &compacted {
            Some((pruned, swept, after)) => {
                serde_json::json!({"before": before, "pruned": pruned, "swept": swept, "after": after})
            }
            None => serde_json::to_value(&before)?,
        };
        say!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let file = config.data_dir.join(DATABASE_FILE);
    let shown = compacted.as_ref().map_or(&before, |(_, _, after)| after);
    if let Some((pruned, swept, after)) = &compacted {
        say!(
            "pruned {} rows: {}",
            pruned.total(),
            serde_json::to_string(pruned)?
                .trim_matches(['{', '}'])
                .replace(',', ", ")
                .replace('"', "")
        );
        say!(
            "compacted {}: {} -> {}",
            file.display(),
            bytes(before.file_bytes + before.wal_bytes),
            bytes(after.file_bytes + after.wal_bytes)
        );
        say!(
            "swept {} of compiled code no plugin uses ({})",
            files(swept.files),
            bytes(swept.bytes)
        );
    }
    say!(
        "{}: {} (write-ahead log {}, free {})",
        file.display(),
        bytes(shown.file_bytes),
        bytes(shown.wal_bytes),
        bytes(shown.free_bytes)
    );
    let kept = kept(&config);
    say!("{:<20} {:>10} {:>12}  KEPT", "TABLE", "ROWS", "SIZE");
    for table in &shown.tables {
        let keep = kept
            .iter()
            .find(|(name, _)| *name == table.table)
            .map_or("always", |(_, keep)| keep.as_str());
        say!(
            "{:<20} {:>10} {:>12}  {keep}",
            table.table,
            table.rows,
            bytes(table.bytes)
        );
    }
    if !shown.state.is_empty() {
        say!("{:<20} {:>16} {:>24}", "STATE OF PLUGIN", "KEYS", "SIZE");
        for usage in &shown.state {
            say!(
                "{:<20} {:>16} {:>24}",
                usage.plugin,
                format!("{} of {}", usage.keys, usage.max_keys),
                format!("{} of {}", bytes(usage.bytes), bytes(usage.max_bytes))
            );
        }
    }
    say!(
        "compile cache {}: {}, {} (code no plugin uses goes after {} unused)",
        config.data_dir.join(CACHE_DIR).display(),
        files(shown.compile_cache.files),
        bytes(shown.compile_cache.bytes),
        HumanDuration(config.retention.compile_cache)
    );
    Ok(ExitCode::SUCCESS)
}

/// The components the config names now: their compiled code stays.
fn configured_components(config: &Config) -> HashSet<ContentHash> {
    config
        .plugins
        .iter()
        .filter_map(|plugin| regular_file::read(&plugin.wasm, regular_file::MAX_COMPONENT).ok())
        .map(|wasm| ContentHash::of(&wasm))
        .collect()
}

/// `1 file`, `2 files`.
fn files(count: usize) -> String {
    match count {
        1 => "1 file".to_owned(),
        _ => format!("{count} files"),
    }
}

/// How long each pruned table is kept, for the listing.
fn kept(config: &Config) -> Vec<(&'static str, String)> {
    let policy = Policy::of(config);
    let mut kept: Vec<(&'static str, String)> = RULES
        .iter()
        .copied()
        .flatten()
        .map(|rule| (rule.table, (rule.kept)(&policy)))
        .collect();
    kept.push(("tool_allowances", "until /reset".to_owned()));
    kept.push(("claude_sessions", "until /reset".to_owned()));
    kept
}

async fn sizes(config: &Config, db: &Database, cache: &CompileCache) -> anyhow::Result<Sizes> {
    let file = config.data_dir.join(DATABASE_FILE);
    let len = |path: std::path::PathBuf| std::fs::metadata(path).map_or(0, |m| m.len());
    let wal = file.with_file_name(format!("{DATABASE_FILE}-wal"));
    let (free_bytes, tables) = db
        .call(|c| {
            let free: u64 = c.query_row(
                "SELECT freelist_count * page_size FROM pragma_freelist_count, pragma_page_size",
                [],
                |r| r.get(0),
            )?;
            let mut statement = c.prepare(
                "SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name
                 WHERE m.tbl_name NOT LIKE 'sqlite_%' GROUP BY m.tbl_name ORDER BY SUM(s.pgsize) DESC",
            )?;
            let sized: Vec<(String, u64)> = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut tables = Vec::new();
            for (table, bytes) in sized {
                // The name comes from sqlite_master, not from input.
                let rows = c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0))?;
                tables.push(TableSize { table, rows, bytes });
            }
            Ok((free, tables))
        })
        .await?;
    let kept: Vec<(String, u64, u64)> = db
        .call(|c| {
            let mut statement = c.prepare(
                "SELECT plugin, keys, bytes FROM plugin_state_usage WHERE keys > 0 ORDER BY plugin",
            )?;
            let kept = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect();
            kept
        })
        .await?;
    let state = kept
        .into_iter()
        .map(|(plugin, keys, bytes)| {
            // A plugin no longer configured is shown against the built-in
            // quota.
            let limits = config.plugin(&plugin).map_or(Limits::default(), |p| p.limits);
            StateUsage {
                plugin,
                keys,
                bytes,
                max_keys: limits.state_keys,
                max_bytes: limits.state_bytes,
            }
        })
        .collect();
    Ok(Sizes {
        file_bytes: len(file),
        wal_bytes: len(wal),
        free_bytes,
        tables,
        state,
        compile_cache: cache.size()?,
    })
}
