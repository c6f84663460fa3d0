//! How CLI commands reach a running host: through the SQLite file. The host
//! writes a heartbeat every scheduler tick; `mission trigger` and `mission
//! reload` queue a request in the `requests` table, which the host takes
//! within a second and answers (a run record, a plugin load record).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::OptionalExtension;

use crate::db::Database;

/// A heartbeat older than this means no host is running.
const HEARTBEAT_STALE: Duration = Duration::from_secs(5);

/// Records that the host with `pid`, started at `started`, is alive now.
pub async fn heartbeat(
    db: &Database,
    pid: u32,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.call(move |c| {
        c.execute(
            "INSERT INTO host (id, pid, started_at, heartbeat_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at,
                 heartbeat_at = excluded.heartbeat_at",
            (pid, started.timestamp_millis(), now.timestamp_millis()),
        )
    })
    .await
    .map(drop)
}

/// Clears the heartbeat of the host with `pid` (on clean shutdown).
pub async fn sign_off(db: &Database, pid: u32) -> anyhow::Result<()> {
    db.call(move |c| c.execute("DELETE FROM host WHERE pid = ?1", [pid]))
        .await
        .map(drop)
}

/// The pid of the running host, if one has a fresh heartbeat.
pub async fn running_host(db: &Database) -> anyhow::Result<Option<u32>> {
    let row: Option<(u32, i64)> = db
        .call(|c| {
            c.query_row("SELECT pid, heartbeat_at FROM host", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
        .await?;
    Ok(row.and_then(|(pid, heartbeat)| {
        let heartbeat = Utc.timestamp_millis_opt(heartbeat).single()?;
        let age = Utc::now()
            .signed_duration_since(heartbeat)
            .to_std()
            .unwrap_or_default();
        (age < HEARTBEAT_STALE).then_some(pid)
    }))
}

/// What a CLI command asks a running host to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Run a schedule now (`mission trigger`); the target is the schedule.
    Trigger,
    /// Reload plugins from disk (`mission reload`); the target is a plugin,
    /// or empty for all.
    Reload,
}

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            RequestKind::Trigger => "trigger",
            RequestKind::Reload => "reload",
        }
    }
}

/// Queues a request for the running host; returns its id.
pub async fn request(db: &Database, kind: RequestKind, target: &str) -> anyhow::Result<i64> {
    let target = target.to_owned();
    db.call(move |c| {
        c.execute(
            "INSERT INTO requests (kind, target, created_at) VALUES (?1, ?2, ?3)",
            (kind.as_str(), target, Utc::now().timestamp_millis()),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// Takes every pending request of `kind`: `(request id, target)`.
pub async fn take_requests(db: &Database, kind: RequestKind) -> anyhow::Result<Vec<(i64, String)>> {
    db.call(move |c| {
        let transaction = c.transaction()?;
        let pending = transaction
            .prepare("SELECT id, target FROM requests WHERE kind = ?1 AND taken_at IS NULL ORDER BY id")?
            .query_map([kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
        transaction.execute(
            "UPDATE requests SET taken_at = ?1 WHERE taken_at IS NULL AND kind = ?2",
            (Utc::now().timestamp_millis(), kind.as_str()),
        )?;
        transaction.commit()?;
        Ok(pending)
    })
    .await
}

/// Marks request `id` answered: its work (all attempts of a triggered run)
/// is over, or it could not be done.
pub async fn finish_request(db: &Database, id: i64) -> anyhow::Result<()> {
    db.call(move |c| {
        c.execute(
            "UPDATE requests SET done_at = ?2 WHERE id = ?1",
            (id, Utc::now().timestamp_millis()),
        )
    })
    .await
    .map(drop)
}

/// Marks every request a host took but did not answer as answered: at
/// shutdown after interrupting runs, and at start for a killed host's.
pub async fn finish_abandoned_requests(db: &Database) -> anyhow::Result<usize> {
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "UPDATE requests SET done_at = ?1 WHERE taken_at IS NOT NULL AND done_at IS NULL",
            [now],
        )
    })
    .await
}

/// Whether request `id` has been answered.
pub async fn is_finished(db: &Database, id: i64) -> anyhow::Result<bool> {
    db.call(move |c| {
        c.query_row(
            "SELECT done_at IS NOT NULL FROM requests WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
    })
    .await
}
