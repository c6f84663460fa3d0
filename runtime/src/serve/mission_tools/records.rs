//! The change records (`changes`): every change the host's own tools made,
//! who pressed for it, and the text before and after; listed by `mission
//! changes`. They are kept as the schedule files are: a record of the
//! business's own decisions, a few a day.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{datetime, Database};

/// One change made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeRecord {
    /// Its id.
    pub id: i64,
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The tool: `create_schedule`, `pause`…
    pub tool: String,
    /// What it acted on: a schedule's name.
    pub target: String,
    /// What the card said would happen.
    pub summary: String,
    /// The plugin whose Claude asked for it.
    pub caller: String,
    /// The chat it was asked in, if any.
    pub chat: Option<i64>,
    /// Who pressed for it (Telegram user id), if anyone: none is allowed
    /// outright by the config.
    pub by_id: Option<i64>,
    /// Their name.
    pub by_name: Option<String>,
    /// The schedule file (or state) before, if there was one.
    pub before: Option<String>,
    /// And after, if there is one.
    pub after: Option<String>,
}

/// Records `change` (its id and time are given here); returns its id.
pub async fn record(db: &Database, change: ChangeRecord) -> anyhow::Result<i64> {
    db.call(move |c| {
        c.prepare_cached(
            "INSERT INTO changes (at, tool, target, summary, caller, chat, by_id, by_name, before, after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(rusqlite::params![
            change.at.timestamp_millis(),
            change.tool,
            change.target,
            change.summary,
            change.caller,
            change.chat,
            change.by_id,
            change.by_name,
            change.before,
            change.after
        ])?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// The latest `limit` changes, newest first; of `target` only, if given.
pub async fn recent(db: &Database, target: Option<&str>, limit: u32) -> anyhow::Result<Vec<ChangeRecord>> {
    let target = target.map(str::to_owned);
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT id, at, tool, target, summary, caller, chat, by_id, by_name, before, after
             FROM changes WHERE ?1 IS NULL OR target = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(rusqlite::params![target, limit], |row| {
            Ok(ChangeRecord {
                id: row.get(0)?,
                at: datetime(row.get(1)?),
                tool: row.get(2)?,
                target: row.get(3)?,
                summary: row.get(4)?,
                caller: row.get(5)?,
                chat: row.get(6)?,
                by_id: row.get(7)?,
                by_name: row.get(8)?,
                before: row.get(9)?,
                after: row.get(10)?,
            })
        })?;
        rows.collect()
    })
    .await
}
