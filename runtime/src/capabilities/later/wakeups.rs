//! Wake-ups as stored (`wakeups`): added by `later`, claimed and finished
//! by the trigger that runs them, listed by `mission later` and the page.
//! A wake-up is `pending` until its run starts, `running` while it runs
//! (a stop or a crash puts it back), then `done` with the run's outcome,
//! or `cancelled`.

use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::db::retention::{period, Rule};
use crate::db::{datetime, Database};

/// A wake-up to add.
pub struct NewWakeUp {
    /// The plugin it wakes.
    pub plugin: String,
    /// When, in Unix milliseconds.
    pub due_at: i64,
    /// What its run is given back.
    pub payload: Vec<u8>,
    /// The run that asked for it, if a run did.
    pub run: Option<i64>,
}

/// What adding a wake-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// It is kept, with this id.
    Id(i64),
    /// The plugin has its limit waiting already: nothing was kept.
    OverLimit,
}

/// Adds `wake_up` unless its plugin has `limit` waiting already.
pub async fn add(db: &Database, wake_up: NewWakeUp, limit: u32) -> anyhow::Result<Added> {
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let waiting: u32 = transaction
            .prepare_cached("SELECT count(*) FROM wakeups WHERE plugin = ?1 AND state = 'pending'")?
            .query_row([&wake_up.plugin], |row| row.get(0))?;
        if waiting >= limit {
            return Ok(Added::OverLimit);
        }
        transaction
            .prepare_cached(
                "INSERT INTO wakeups (plugin, due_at, payload, created_at, created_by_run, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            )?
            .execute(rusqlite::params![
                wake_up.plugin,
                wake_up.due_at,
                wake_up.payload,
                now,
                wake_up.run
            ])?;
        let id = transaction.last_insert_rowid();
        transaction.commit()?;
        Ok(Added::Id(id))
    })
    .await
}

/// Cancels `plugin`'s wake-up `id` if it is still waiting.
pub async fn cancel(db: &Database, plugin: &str, id: i64) -> anyhow::Result<bool> {
    let (plugin, now) = (plugin.to_owned(), chrono::Utc::now().timestamp_millis());
    db.call(move |c| {
        let changed = c
            .prepare_cached(
                "UPDATE wakeups SET state = 'cancelled', finished_at = ?3
                 WHERE id = ?1 AND plugin = ?2 AND state = 'pending'",
            )?
            .execute(rusqlite::params![id, plugin, now])?;
        Ok(changed == 1)
    })
    .await
}

/// A wake-up waiting, as `mission later` and the page show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pending {
    /// Its id.
    pub id: i64,
    /// The plugin it wakes.
    pub plugin: String,
    /// When it is due.
    pub due_at: chrono::DateTime<chrono::Utc>,
    /// Its payload's size.
    pub payload_bytes: u64,
    /// When it was asked for.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The run that asked for it, if a run did.
    pub created_by_run: Option<i64>,
}

/// Every wake-up waiting, the one due first first.
pub async fn pending(db: &Database) -> anyhow::Result<Vec<Pending>> {
    db.call(|c| {
        let mut statement = c.prepare_cached(
            "SELECT id, plugin, due_at, length(payload), created_at, created_by_run FROM wakeups
             WHERE state = 'pending' ORDER BY due_at, id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Pending {
                id: row.get(0)?,
                plugin: row.get(1)?,
                due_at: datetime(row.get(2)?),
                payload_bytes: row.get(3)?,
                created_at: datetime(row.get(4)?),
                created_by_run: row.get(5)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// How many wake-ups wait, and when the first is due (Unix ms).
pub async fn waiting(db: &Database) -> anyhow::Result<(u64, Option<i64>)> {
    db.call(|c| {
        c.prepare_cached("SELECT count(*), min(due_at) FROM wakeups WHERE state = 'pending'")?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
    })
    .await
}

/// Puts back what a stop or a crash left `running`: it runs again, unless
/// its run had finished (see [`claim`]).
pub async fn reopen(db: &Database) -> anyhow::Result<usize> {
    db.call(|c| c.execute("UPDATE wakeups SET state = 'pending' WHERE state = 'running'", []))
        .await
}

/// The ids of the wake-ups due by `now` (Unix ms), the first due first, at
/// most `limit`.
pub async fn due(db: &Database, now: i64, limit: u32) -> anyhow::Result<Vec<i64>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT id FROM wakeups WHERE state = 'pending' AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
        )?;
        let rows = statement.query_map([now, i64::from(limit)], |row| row.get(0))?;
        rows.collect()
    })
    .await
}

/// A wake-up claimed for its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its id.
    pub id: i64,
    /// The plugin it wakes.
    pub plugin: String,
    /// When it was due, in Unix milliseconds.
    pub due_at: i64,
    /// What its run is given back.
    pub payload: Vec<u8>,
}

/// Claims wake-up `id` for its run: `running` from here. None if it is no
/// longer waiting — cancelled, claimed already, or its run finished before
/// a crash kept it from being marked done (it is marked now: never twice).
pub async fn claim(db: &Database, id: i64) -> anyhow::Result<Option<Claimed>> {
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ran: Option<String> = transaction
            .prepare_cached(
                "SELECT outcome FROM runs WHERE wakeup = ?1 AND outcome NOT IN ('running', 'interrupted')
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row([id], |row| row.get(0))
            .optional()?;
        if let Some(outcome) = ran {
            transaction
                .prepare_cached(
                    "UPDATE wakeups SET state = 'done', outcome = ?2, finished_at = coalesce(finished_at, ?3)
                     WHERE id = ?1 AND state = 'pending'",
                )?
                .execute(rusqlite::params![id, outcome, now])?;
            transaction.commit()?;
            return Ok(None);
        }
        let claimed = transaction
            .prepare_cached(
                "UPDATE wakeups SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'pending'
                 RETURNING plugin, due_at, payload",
            )?
            .query_row(rusqlite::params![id, now], |row| {
                Ok(Claimed {
                    id,
                    plugin: row.get(0)?,
                    due_at: row.get(1)?,
                    payload: row.get(2)?,
                })
            })
            .optional()?;
        transaction.commit()?;
        Ok(claimed)
    })
    .await
}

/// Marks wake-up `id` done with its run's `outcome`.
pub async fn finish(db: &Database, id: i64, outcome: &str) -> anyhow::Result<()> {
    let outcome = outcome.to_owned();
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        c.prepare_cached("UPDATE wakeups SET state = 'done', outcome = ?2, finished_at = ?3 WHERE id = ?1")?
            .execute(rusqlite::params![id, outcome, now])
    })
    .await?;
    Ok(())
}

/// What `mission rerun` gives a repeated run: wake-up `id`'s payload and
/// due time, whatever became of it, while it is kept.
pub async fn stored(db: &Database, id: i64) -> anyhow::Result<Option<Claimed>> {
    db.call(move |c| {
        c.prepare_cached("SELECT plugin, due_at, payload FROM wakeups WHERE id = ?1")?
            .query_row([id], |row| {
                Ok(Claimed {
                    id,
                    plugin: row.get(0)?,
                    due_at: row.get(1)?,
                    payload: row.get(2)?,
                })
            })
            .optional()
    })
    .await
}

/// How wake-ups go: done and cancelled ones after `[retention] runs`, as
/// the runs they started; a waiting one stays.
pub const RETENTION: &[Rule] = &[Rule {
    table: "wakeups",
    kind: "wake-ups",
    delete: "DELETE FROM wakeups WHERE id IN (SELECT id FROM wakeups
             WHERE finished_at < ?1 AND state IN ('done', 'cancelled') LIMIT ?2)",
    keep: |p| p.retention.runs,
    kept: |p| format!("{} once done or cancelled", period(p.retention.runs)),
}];
