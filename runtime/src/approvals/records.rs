//! The desk's SQL: every decision in `tool_approvals`, the conversation
//! allowances in `tool_allowances`, and the latest decisions for `/status`,
//! the page and `mission approvals`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ApprovalOutcome;
use crate::config::PluginName;
use crate::db::retention::{period, Rule};
use crate::db::{self, Database};

/// How many tool uses wait for a person's decision.
pub async fn waiting(db: &Database) -> anyhow::Result<u64> {
    db.call(|c| {
        c.prepare_cached("SELECT count(*) FROM tool_approvals WHERE outcome = 'pending'")?
            .query_row([], |row| row.get(0))
    })
    .await
}

/// One decision, for `/status`, the page and `mission approvals`.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// Its id.
    pub id: i64,
    /// The plugin asking.
    pub plugin: String,
    /// The chat asked in.
    pub chat_id: Option<i64>,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// When it was asked.
    pub asked_at: DateTime<Utc>,
    /// What came of it.
    pub outcome: ApprovalOutcome,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided, for a press.
    pub decided_by: Option<i64>,
    /// Their name.
    pub decided_by_name: Option<String>,
    /// Why, for a deny without a press.
    pub reason: Option<String>,
}

/// A tool use about to be asked about, as first recorded.
pub(super) struct NewApproval {
    pub plugin: String,
    pub session_key: Option<String>,
    pub chat: Option<i64>,
    /// The task run that asks, if a task's.
    pub run: Option<i64>,
    pub tool: String,
    pub summary: String,
}

/// Records a tool use asked about, `outcome` already if it was decided
/// without asking; returns its id.
pub(super) async fn insert(
    db: &Database,
    row: NewApproval,
    outcome: ApprovalOutcome,
    reason: Option<String>,
) -> anyhow::Result<i64> {
    let now = Utc::now().timestamp_millis();
    let decided_at = (outcome != ApprovalOutcome::Pending).then_some(now);
    db.call(move |c| {
        c.execute(
            "INSERT INTO tool_approvals
                 (plugin, session_key, chat_id, tool, summary, asked_at, outcome, decided_at, reason, run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            (
                row.plugin,
                row.session_key,
                row.chat,
                row.tool,
                row.summary,
                now,
                outcome,
                decided_at,
                reason,
                row.run,
            ),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// Notes the message the prompt for approval `id` was posted as.
pub(super) async fn record_message(db: &Database, id: i64, message: i32) {
    let stored = db
        .call(move |c| {
            c.execute(
                "UPDATE tool_approvals SET message_id = ?2 WHERE id = ?1",
                (id, message),
            )
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(approval = id, "recording the prompt's message failed: {e:#}");
    }
}

/// The person who pressed a button.
pub(super) struct Decider {
    /// Their Telegram user id.
    pub id: i64,
    /// Their name.
    pub name: String,
}

/// Records the outcome of a pending approval (once: a settled one stays).
pub(super) async fn finish(
    db: &Database,
    id: i64,
    outcome: ApprovalOutcome,
    decider: Option<Decider>,
    reason: Option<&str>,
) {
    let reason = reason.map(str::to_owned);
    let now = Utc::now().timestamp_millis();
    let (by, by_name) = decider.map(|d| (d.id, d.name)).unzip();
    let stored = db
        .call(move |c| {
            c.execute(
                "UPDATE tool_approvals
                 SET outcome = ?2, decided_at = ?3, decided_by = ?4, decided_by_name = ?5, reason = ?6
                 WHERE id = ?1 AND outcome = 'pending'",
                (id, outcome, now, by, by_name, reason),
            )
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(approval = id, "recording a tool approval's outcome failed: {e:#}");
    }
}

/// Whether a person allowed `tool` for the rest of `plugin`'s conversation
/// `key`.
pub(super) async fn allowed_earlier(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    tool: &str,
) -> anyhow::Result<bool> {
    let (plugin, key, tool) = (plugin.to_string(), key.to_owned(), tool.to_owned());
    db.call(move |c| {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM tool_allowances WHERE plugin = ?1 AND session_key = ?2 AND tool = ?3)",
            (plugin, key, tool),
            |r| r.get(0),
        )
    })
    .await
}

/// Allows `tool` for the rest of `plugin`'s conversation `key`, as `by`
/// chose.
pub(super) async fn allow_conversation(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    tool: &str,
    by: u64,
) -> anyhow::Result<()> {
    let (plugin, key, tool) = (plugin.to_string(), key.to_owned(), tool.to_owned());
    let by = i64::try_from(by).unwrap_or(i64::MAX);
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "INSERT OR REPLACE INTO tool_allowances (plugin, session_key, tool, allowed_by, allowed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (plugin, key, tool, by, now),
        )
    })
    .await
    .map(drop)
}

/// The latest `limit` decisions, newest first.
pub async fn recent(db: &Database, limit: u32) -> anyhow::Result<Vec<ApprovalRecord>> {
    db.call(move |c| {
        let mut select = c.prepare_cached(&format!("{SELECT} ORDER BY id DESC LIMIT ?1"))?;
        let rows = select.query_map([limit], read_record)?;
        rows.collect()
    })
    .await
}

const SELECT: &str = "SELECT id, plugin, chat_id, tool, summary, asked_at, outcome, decided_at,
                             decided_by, decided_by_name, reason
                      FROM tool_approvals";

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id: r.get(0)?,
        plugin: r.get(1)?,
        chat_id: r.get(2)?,
        tool: r.get(3)?,
        summary: r.get(4)?,
        asked_at: db::datetime(r.get(5)?),
        outcome: r.get(6)?,
        decided_at: r.get::<_, Option<i64>>(7)?.map(db::datetime),
        decided_by: r.get(8)?,
        decided_by_name: r.get(9)?,
        reason: r.get(10)?,
    })
}

/// How approvals go: a decided one after `[retention] approvals`; a
/// pending one stays, as it is settled at the next start.
pub const RETENTION: &[Rule] = &[Rule {
    table: "tool_approvals",
    kind: "approvals",
    delete: "DELETE FROM tool_approvals WHERE id IN (SELECT id FROM tool_approvals
                 WHERE asked_at < ?1 AND outcome != 'pending' LIMIT ?2)",
    keep: |p| p.retention.approvals,
    kept: |p| period(p.retention.approvals),
}];
