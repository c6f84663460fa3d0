//! The record of every load and reload of a plugin, in the `plugin_loads`
//! table: what `mission plugins` shows.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::retention::{period, Rule};
use crate::db::{datetime, text_enum, Database};

text_enum! {
    /// How a load or reload ended.
    pub enum LoadOutcome {
        /// Loaded at start.
        Loaded = "loaded",
        /// A new version (or new config) replaced the old one.
        Reloaded = "reloaded",
        /// The new file was refused; the old version keeps serving.
        Refused = "refused",
        /// The file is gone; the last version keeps serving.
        Missing = "missing",
        /// Same file and config as the version serving: nothing done.
        Unchanged = "unchanged",
    }
}

/// One load or reload, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginLoad {
    /// The row id.
    pub id: i64,
    /// The plugin.
    pub plugin: String,
    /// When.
    pub at: DateTime<Utc>,
    /// How it ended.
    pub outcome: LoadOutcome,
    /// The hash of the version serving before, if any.
    pub old_hash: Option<String>,
    /// The hash of the file loaded or refused.
    pub new_hash: Option<String>,
    /// Compile (or cache load) time in milliseconds.
    pub compile_ms: Option<f64>,
    /// Why it was refused.
    pub error: Option<String>,
}

/// What to record about one load.
pub struct NewLoad<'a> {
    /// The plugin.
    pub plugin: &'a str,
    /// How it ended.
    pub outcome: LoadOutcome,
    /// The hash of the version serving before.
    pub old_hash: Option<String>,
    /// The hash of the new file.
    pub new_hash: Option<String>,
    /// Compile time.
    pub compile_time: Option<Duration>,
    /// Why it was refused.
    pub error: Option<String>,
}

impl<'a> NewLoad<'a> {
    /// A record of `outcome` for `plugin` with nothing else known yet.
    pub fn new(plugin: &'a str, outcome: LoadOutcome) -> Self {
        Self {
            plugin,
            outcome,
            old_hash: None,
            new_hash: None,
            compile_time: None,
            error: None,
        }
    }
}

/// Records one load.
pub async fn record(db: &Database, load: NewLoad<'_>) -> anyhow::Result<i64> {
    let plugin = load.plugin.to_owned();
    let at = Utc::now().timestamp_millis();
    let compile_ms = load.compile_time.map(|t| t.as_secs_f64() * 1000.0);
    let (outcome, old, new, error) = (load.outcome.as_str(), load.old_hash, load.new_hash, load.error);
    db.call(move |c| {
        c.execute(
            "INSERT INTO plugin_loads (plugin, at, outcome, old_hash, new_hash, compile_ms, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            (plugin, at, outcome, old, new, compile_ms, error),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

const SELECT: &str =
    "SELECT id, plugin, at, outcome, old_hash, new_hash, compile_ms, error FROM plugin_loads";

fn row_to_load(row: &rusqlite::Row<'_>) -> rusqlite::Result<PluginLoad> {
    Ok(PluginLoad {
        id: row.get(0)?,
        plugin: row.get(1)?,
        at: datetime(row.get(2)?),
        outcome: row.get(3)?,
        old_hash: row.get(4)?,
        new_hash: row.get(5)?,
        compile_ms: row.get(6)?,
        error: row.get(7)?,
    })
}

/// The latest record of `plugin`, and its latest successful load.
pub async fn latest(db: &Database, plugin: &str) -> anyhow::Result<(Option<PluginLoad>, Option<PluginLoad>)> {
    let plugin = plugin.to_owned();
    db.call(move |c| {
        let last = |filter: &str| {
            let sql = format!("{SELECT} WHERE plugin = ?1 {filter} ORDER BY id DESC LIMIT 1");
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query_map([&plugin], row_to_load)?;
            rows.next().transpose()
        };
        Ok((last("")?, last("AND outcome IN ('loaded', 'reloaded')")?))
    })
    .await
}

/// The id of the newest record, 0 if none: `mission reload` waits for rows
/// after it.
pub async fn newest_id(db: &Database) -> anyhow::Result<i64> {
    db.call(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM plugin_loads", [], |r| r.get(0)))
        .await
}

/// Records after `after`, oldest first.
pub async fn since(db: &Database, after: i64) -> anyhow::Result<Vec<PluginLoad>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(&format!("{SELECT} WHERE id > ?1 ORDER BY id"))?;
        let rows = statement.query_map([after], row_to_load)?;
        rows.collect()
    })
    .await
}

/// How load records go: after `[retention] loads`, but each plugin's
/// latest load of each outcome stays (`mission plugins` and the page show
/// them).
pub const RETENTION: &[Rule] = &[Rule {
    table: "plugin_loads",
    kind: "loads",
    delete: "DELETE FROM plugin_loads WHERE id IN (SELECT id FROM plugin_loads WHERE at < ?1
                 AND id NOT IN (SELECT max(id) FROM plugin_loads GROUP BY plugin, outcome) LIMIT ?2)",
    keep: |p| p.retention.loads,
    kept: |p| format!("{} (and each plugin's latest)", period(p.retention.loads)),
}];
