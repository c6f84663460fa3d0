//! The durable queue of Telegram updates (`telegram_updates`): each update
//! is stored before the next `getUpdates` confirms it to Telegram, and
//! marked when handled, so a crash loses nothing and a restart handles only
//! what was not handled.

use chrono::Utc;

use crate::db::Database;

/// One incoming update as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUpdate {
    /// Telegram's update id.
    pub update_id: i64,
    /// The chat, for message updates.
    pub chat_id: Option<i64>,
    /// The sender's user id, if any.
    pub sender_id: Option<u64>,
    /// The sender's display name.
    pub sender_name: String,
    /// The text, for text messages.
    pub text: Option<String>,
    /// When it was sent, Unix milliseconds.
    pub sent_at: i64,
}

/// Stores `updates` (ignoring ones already stored).
pub async fn store(db: &Database, updates: Vec<StoredUpdate>) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO telegram_updates
                     (update_id, chat_id, sender_id, sender_name, text, sent_at, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for u in updates {
                insert.execute((
                    u.update_id,
                    u.chat_id,
                    u.sender_id,
                    u.sender_name,
                    u.text,
                    u.sent_at,
                    now,
                ))?;
            }
        }
        transaction.commit()
    })
    .await
}

/// The offset for the next `getUpdates`: one past the newest stored update.
pub async fn next_offset(db: &Database) -> anyhow::Result<i64> {
    db.call(|c| {
        c.query_row(
            "SELECT COALESCE(MAX(update_id) + 1, 0) FROM telegram_updates",
            [],
            |r| r.get(0),
        )
    })
    .await
}

/// Every stored update not handled yet, oldest first.
pub async fn unhandled(db: &Database) -> anyhow::Result<Vec<StoredUpdate>> {
    db.call(|c| {
        let mut statement = c.prepare_cached(
            "SELECT update_id, chat_id, sender_id, sender_name, text, sent_at FROM telegram_updates
             WHERE handled_at IS NULL ORDER BY update_id",
        )?;
        let rows = statement.query_map([], |r| {
            Ok(StoredUpdate {
                update_id: r.get(0)?,
                chat_id: r.get(1)?,
                sender_id: r.get(2)?,
                sender_name: r.get(3)?,
                text: r.get(4)?,
                sent_at: r.get(5)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// Marks update `update_id` handled, with what came of it.
pub async fn mark_handled(db: &Database, update_id: i64, outcome: &str) -> anyhow::Result<()> {
    let outcome = outcome.to_owned();
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "UPDATE telegram_updates SET handled_at = ?2, outcome = ?3 WHERE update_id = ?1",
            (update_id, now, outcome),
        )
    })
    .await
    .map(drop)
}
