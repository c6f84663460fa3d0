//! What the scheduler remembers per schedule across restarts, in the
//! `schedule_state` table: the last due time it fired (for catch-up) and
//! whether a user paused it.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::OptionalExtension;

use crate::db::Database;

/// The last due time `schedule` fired for, if it ever did.
pub async fn last_due(db: &Database, schedule: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    let schedule = schedule.to_owned();
    let ms: Option<Option<i64>> = db
        .call(move |c| {
            c.query_row(
                "SELECT last_due_at FROM schedule_state WHERE schedule = ?1",
                [schedule],
                |r| r.get(0),
            )
            .optional()
        })
        .await?;
    Ok(ms.flatten().and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
}

/// Records that `schedule` fired for `due`.
pub async fn set_last_due(db: &Database, schedule: &str, due: DateTime<Utc>) -> anyhow::Result<()> {
    let schedule = schedule.to_owned();
    db.call(move |c| {
        c.execute(
            "INSERT INTO schedule_state (schedule, last_due_at) VALUES (?1, ?2)
             ON CONFLICT (schedule) DO UPDATE SET last_due_at = excluded.last_due_at",
            (schedule, due.timestamp_millis()),
        )
    })
    .await
    .map(drop)
}

/// Whether `schedule` is paused.
pub async fn is_paused(db: &Database, schedule: &str) -> anyhow::Result<bool> {
    let schedule = schedule.to_owned();
    let paused: Option<bool> = db
        .call(move |c| {
            c.query_row(
                "SELECT paused FROM schedule_state WHERE schedule = ?1",
                [schedule],
                |r| r.get(0),
            )
            .optional()
        })
        .await?;
    Ok(paused.unwrap_or(false))
}

/// Pauses or resumes `schedule`; a running host sees it at the next due time.
pub async fn set_paused(db: &Database, schedule: &str, paused: bool) -> anyhow::Result<()> {
    let schedule = schedule.to_owned();
    db.call(move |c| {
        c.execute(
            "INSERT INTO schedule_state (schedule, paused) VALUES (?1, ?2)
             ON CONFLICT (schedule) DO UPDATE SET paused = excluded.paused",
            (schedule, paused),
        )
    })
    .await
    .map(drop)
}
