//! What the scheduler remembers per schedule across restarts, in the
//! `schedule_state` table: the last due time accounted for — fired,
//! passed while paused, or told as missed — which catch-up and the count of
//! missed due times start after, and whether a user paused it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use crate::db::{datetime, Database};

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

/// The last due time accounted for of every schedule that has one.
pub async fn all_last_due(db: &Database) -> anyhow::Result<HashMap<String, DateTime<Utc>>> {
    db.call(|c| {
        let mut statement =
            c.prepare("SELECT schedule, last_due_at FROM schedule_state WHERE last_due_at IS NOT NULL")?;
        let rows = statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| row.map(|(name, ms)| (name, datetime(ms))))
            .collect()
    })
    .await
}

/// Records, in one transaction, each schedule's last due time accounted
/// for: fired, passed while paused, or told as missed.
pub async fn set_last_due_many(db: &Database, fired: Vec<(String, DateTime<Utc>)>) -> anyhow::Result<()> {
    db.call(move |c| {
        let transaction = c.transaction()?;
        {
            let mut statement = transaction.prepare_cached(
                "INSERT INTO schedule_state (schedule, last_due_at) VALUES (?1, ?2)
                 ON CONFLICT (schedule) DO UPDATE SET last_due_at = excluded.last_due_at",
            )?;
            for (schedule, due) in fired {
                statement.execute((schedule, due.timestamp_millis()))?;
            }
        }
        transaction.commit()
    })
    .await
}

/// The names of every paused schedule.
pub async fn paused(db: &Database) -> anyhow::Result<HashSet<String>> {
    db.call(|c| {
        let mut statement = c.prepare_cached("SELECT schedule FROM schedule_state WHERE paused")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        rows.collect()
    })
    .await
}
