//! How CLI commands reach a running host: through the SQLite file. The host
//! writes a heartbeat every scheduler tick; `mission trigger` queues a
//! request in the `requests` table, which the host takes at its next tick
//! (within a second) and answers by running the schedule.

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

/// Asks the running host to run `schedule` now; returns the request's id.
pub async fn request_trigger(db: &Database, schedule: &str) -> anyhow::Result<i64> {
    let schedule = schedule.to_owned();
    db.call(move |c| {
        c.execute(
            "INSERT INTO requests (kind, schedule, created_at) VALUES ('trigger', ?1, ?2)",
            (schedule, Utc::now().timestamp_millis()),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// Takes every pending trigger request: `(request id, schedule)`.
pub async fn take_triggers(db: &Database) -> anyhow::Result<Vec<(i64, String)>> {
    db.call(|c| {
        let transaction = c.transaction()?;
        let pending = transaction
            .prepare(
                "SELECT id, schedule FROM requests WHERE kind = 'trigger' AND taken_at IS NULL ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
        transaction.execute(
            "UPDATE requests SET taken_at = ?1 WHERE taken_at IS NULL AND kind = 'trigger'",
            [Utc::now().timestamp_millis()],
        )?;
        transaction.commit()?;
        Ok(pending)
    })
    .await
}
