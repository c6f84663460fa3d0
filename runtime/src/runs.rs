//! Run records: one row per run of a task plugin, written when it starts
//! (so a crash leaves a trace) and completed when it ends.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::call::CallReport;
use crate::config::PluginName;
use crate::db::Database;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// `mission run` from the command line.
    Manual,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
        }
    }
}

/// One run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The row id.
    pub id: i64,
    /// The plugin that ran.
    pub plugin: String,
    /// What started it (`manual`).
    pub trigger: String,
    /// When it was due.
    pub scheduled_at: DateTime<Utc>,
    /// 1 for a first attempt, more for retries.
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; none while running (or if the host died).
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded`, `failed`, `trapped`, `timed_out` or
    /// `out_of_memory`.
    pub outcome: String,
    /// The error, for any outcome but `succeeded`.
    pub error: Option<String>,
    /// The plugin's summary, for `succeeded`.
    pub summary: Option<String>,
    /// The start of what it printed.
    pub output: String,
    /// How many bytes it printed in all.
    pub output_bytes: u64,
    /// Whether its output went past the limit and was cut.
    pub output_truncated: bool,
}

impl RunRecord {
    /// Whether the run ended well.
    pub fn succeeded(&self) -> bool {
        self.outcome == "succeeded"
    }
}

fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Records that `plugin` started a run; returns the run's id.
pub async fn start(
    db: &Database,
    plugin: &PluginName,
    trigger: Trigger,
    scheduled_at: DateTime<Utc>,
    attempt: u32,
) -> anyhow::Result<i64> {
    let plugin = plugin.to_string();
    let started_at = millis(Utc::now());
    db.call(move |c| {
        c.execute(
            "INSERT INTO runs (plugin, trigger, scheduled_at, attempt, started_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
            (
                plugin,
                trigger.as_str(),
                millis(scheduled_at),
                attempt,
                started_at,
            ),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// Completes run `id` with what the call reported; returns the full record.
pub async fn finish(db: &Database, id: i64, report: &CallReport<String>) -> anyhow::Result<RunRecord> {
    let (outcome, error, summary) = match &report.result {
        Ok(summary) => ("succeeded", None, Some(summary.clone())),
        Err(e) => (e.kind(), Some(e.to_string()), None),
    };
    let output = report.output.clone();
    let finished_at = millis(Utc::now());
    db.call(move |c| {
        c.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, error = ?4, summary = ?5,
                 output = ?6, output_bytes = ?7, output_truncated = ?8
             WHERE id = ?1",
            (
                id,
                finished_at,
                outcome,
                error,
                summary,
                output.excerpt,
                output.bytes,
                output.truncated,
            ),
        )?;
        c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row_to_record)
    })
    .await
}

/// The latest `limit` runs, newest first, of one plugin or of all.
pub async fn recent(db: &Database, plugin: Option<&str>, limit: u32) -> anyhow::Result<Vec<RunRecord>> {
    let plugin = plugin.map(str::to_owned);
    db.call(move |c| {
        let mut statement = c.prepare_cached(&format!(
            "{SELECT} WHERE ?1 IS NULL OR plugin = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map((plugin, limit), row_to_record)?;
        rows.collect()
    })
    .await
}

const SELECT: &str = "SELECT id, plugin, trigger, scheduled_at, attempt, started_at, finished_at, outcome,
                             error, summary, output, output_bytes, output_truncated
                      FROM runs";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        plugin: row.get(1)?,
        trigger: row.get(2)?,
        scheduled_at: from_millis(row.get(3)?),
        attempt: row.get(4)?,
        started_at: from_millis(row.get(5)?),
        finished_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        outcome: row.get(7)?,
        error: row.get(8)?,
        summary: row.get(9)?,
        output: row.get(10)?,
        output_bytes: row.get(11)?,
        output_truncated: row.get(12)?,
    })
}
