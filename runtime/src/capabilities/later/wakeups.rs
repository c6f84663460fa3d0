//! Wake-ups as stored (`wakeups`): added by `later`, claimed and finished
//! by the trigger that runs them, listed by `mission later` and the page.
//! A wake-up is `pending` until it is due and claimed, `running` from its
//! claim while its run waits for a lane and runs (a stop or a crash puts it
//! back), then `done` with the run's outcome, or `cancelled`.

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

/// A wake-up claimed for its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its id.
    pub id: i64,
    /// The plugin it wakes.
    pub plugin: String,
    /// When it was due, in Unix milliseconds.
    pub due_at: i64,
}

/// Claims the wake-ups due by `now` (Unix ms), the first due first, at most
/// `limit`, in one transaction: `running` from here, their runs owed. Those
/// whose run finished before a crash kept them from being marked done are
/// marked now instead (never twice).
pub async fn claim_due(db: &Database, now: i64, limit: u32) -> anyhow::Result<Vec<Claimed>> {
    let claimed_at = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction
            .prepare_cached(
                "UPDATE wakeups SET state = 'done', finished_at = coalesce(finished_at, ?2),
                     outcome = (SELECT outcome FROM runs WHERE runs.wakeup = wakeups.id
                                AND outcome NOT IN ('running', 'interrupted') ORDER BY id DESC LIMIT 1)
                 WHERE state = 'pending' AND due_at <= ?1 AND EXISTS
                     (SELECT 1 FROM runs WHERE runs.wakeup = wakeups.id
                      AND outcome NOT IN ('running', 'interrupted'))",
            )?
            .execute([now, claimed_at])?;
        let mut claimed = transaction
            .prepare_cached(
                "UPDATE wakeups SET state = 'running', started_at = ?2
                 WHERE id IN (SELECT id FROM wakeups WHERE state = 'pending' AND due_at <= ?1
                              ORDER BY due_at, id LIMIT ?3)
                 RETURNING id, plugin, due_at",
            )?
            .query_map(rusqlite::params![now, claimed_at, limit], |row| {
                Ok(Claimed {
                    id: row.get(0)?,
                    plugin: row.get(1)?,
                    due_at: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        transaction.commit()?;
        claimed.sort_by_key(|w| (w.due_at, w.id));
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

/// What a wake-up's run is given back, read when it starts (and by
/// `mission rerun`, whatever became of it, while it is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// When it was due, in Unix milliseconds.
    pub due_at: i64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// Wake-up `id`'s due time and payload, while it is kept.
pub async fn stored(db: &Database, id: i64) -> anyhow::Result<Option<Stored>> {
    db.call(move |c| {
        c.prepare_cached("SELECT due_at, payload FROM wakeups WHERE id = ?1")?
            .query_row([id], |row| {
                Ok(Stored {
                    due_at: row.get(0)?,
                    payload: row.get(1)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn add_due(db: &Database, due_at: i64) -> i64 {
        let wake_up = NewWakeUp {
            plugin: "p".into(),
            due_at,
            payload: due_at.to_string().into_bytes(),
            run: None,
        };
        match add(db, wake_up, u32::MAX).await.unwrap() {
            Added::Id(id) => id,
            Added::OverLimit => unreachable!("no limit"),
        }
    }

    #[tokio::test]
    async fn what_is_due_is_claimed_at_once_first_due_first_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let later = add_due(&db, 300).await;
        let first = add_due(&db, 100).await;
        let second = add_due(&db, 200).await;
        add_due(&db, 10_000).await;
        let claimed = claim_due(&db, 1_000, 100).await.unwrap();
        let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
        assert_eq!(ids, [first, second, later], "due ones only, the first due first");
        assert!(
            claim_due(&db, 1_000, 100).await.unwrap().is_empty(),
            "claimed once"
        );
        assert_eq!(waiting(&db).await.unwrap(), (1, Some(10_000)));
        let stored = stored(&db, first).await.unwrap().unwrap();
        assert_eq!(stored.payload, b"100");

        // A stop puts them back; the one whose run had finished is marked
        // done with its outcome, not claimed again.
        db.call(move |c| {
            c.execute(
                "INSERT INTO runs (plugin, trigger, scheduled_at, attempt, started_at, outcome, wakeup)
                 VALUES ('p', 'later', 0, 1, 0, 'succeeded', ?1)",
                [first],
            )
        })
        .await
        .unwrap();
        assert_eq!(reopen(&db).await.unwrap(), 3);
        let again: Vec<i64> = claim_due(&db, 1_000, 1)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(again, [second], "at most the limit");
        let outcome: (String, Option<String>) = db
            .call(move |c| {
                c.query_row(
                    "SELECT state, outcome FROM wakeups WHERE id = ?1",
                    [first],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
            })
            .await
            .unwrap();
        assert_eq!(outcome, ("done".to_owned(), Some("succeeded".to_owned())));
    }
}
