//! The record of every HTTP request a plugin made or was refused
//! (`http_requests`): what `mission http` shows. Never a query string, a
//! header or a secret: method, origin, path, status, sizes and time.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::retention::{period, Rule};
use crate::db::{datetime, Database};

/// What a call was made for, so its requests can be found with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A task run, by its run record's id.
    Run(i64),
    /// A chat message, by its chat.
    Chat(i64),
    /// Neither (a benchmark, a test).
    Unrecorded,
}

/// One request as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequestRecord {
    /// When it was sent (or refused).
    pub at: DateTime<Utc>,
    /// The plugin.
    pub plugin: String,
    /// The run it belongs to, if a task's.
    pub run: Option<i64>,
    /// The chat it belongs to, if a chat plugin's.
    pub chat: Option<i64>,
    /// `GET`, `POST`, ...
    pub method: String,
    /// `https://host:port`.
    pub origin: String,
    /// The path, without the query.
    pub path: String,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_out: u64,
    /// Response body bytes received.
    pub bytes_in: u64,
    /// From sending to the end of the body (or the failure).
    pub ms: u64,
    /// Refused by the host: not granted, not allowed, a private address,
    /// too many requests.
    pub denied: bool,
    /// Why it was denied or failed.
    pub error: Option<String>,
}

/// Appends `record`.
pub async fn record(db: &Database, record: HttpRequestRecord) -> anyhow::Result<()> {
    db.call(move |c| {
        c.prepare_cached(
            "INSERT INTO http_requests (at, plugin, run, chat, method, origin, path, status,
                 bytes_out, bytes_in, ms, denied, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(rusqlite::params![
            record.at.timestamp_millis(),
            record.plugin,
            record.run,
            record.chat,
            record.method,
            record.origin,
            record.path,
            record.status,
            record.bytes_out,
            record.bytes_in,
            record.ms,
            record.denied,
            record.error,
        ])
        .map(drop)
    })
    .await
}

/// The latest `limit` requests, newest first, of one plugin or of all.
pub async fn recent(
    db: &Database,
    plugin: Option<&str>,
    limit: u32,
) -> anyhow::Result<Vec<HttpRequestRecord>> {
    let plugin = plugin.map(str::to_owned);
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT at, plugin, run, chat, method, origin, path, status, bytes_out, bytes_in, ms,
                    denied, error
             FROM http_requests WHERE ?1 IS NULL OR plugin = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map((plugin, limit), |r| {
            Ok(HttpRequestRecord {
                at: datetime(r.get(0)?),
                plugin: r.get(1)?,
                run: r.get(2)?,
                chat: r.get(3)?,
                method: r.get(4)?,
                origin: r.get(5)?,
                path: r.get(6)?,
                status: r.get(7)?,
                bytes_out: r.get(8)?,
                bytes_in: r.get(9)?,
                ms: r.get(10)?,
                denied: r.get(11)?,
                error: r.get(12)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// How request records go: after `[retention] http`.
pub const RETENTION: &[Rule] = &[Rule {
    table: "http_requests",
    kind: "http",
    delete: "DELETE FROM http_requests WHERE id IN (SELECT id FROM http_requests WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.retention.http,
    kept: |p| period(p.retention.http),
}];
