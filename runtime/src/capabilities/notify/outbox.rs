//! The outbox: Telegram messages the host itself sends (alerts), kept in
//! SQLite until Telegram has them, so each is sent at least once across a
//! restart or a Telegram outage, and queuing one never waits for Telegram.

use std::time::Duration;

use rusqlite::Transaction;

use super::telegram::TelegramSender;
use crate::db::Database;

/// How often the outbox is looked at when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);

/// The longest wait between failed sends.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Queues `text` for `chat` in `transaction`, with whatever else it writes.
pub fn queue(transaction: &Transaction<'_>, chat: i64, text: &str) -> rusqlite::Result<()> {
    transaction.execute(
        "INSERT INTO outbox (chat_id, text, queued_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![chat, text, chrono::Utc::now().timestamp_millis()],
    )?;
    Ok(())
}

/// Sends what the outbox holds, oldest first, until `stopped`; a failed
/// send is tried again with a doubling wait, the rest behind it waiting.
pub async fn deliver(
    db: Database,
    sender: std::sync::Arc<TelegramSender>,
    stopped: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut backoff = POLL;
    loop {
        let wait = match next(&db).await {
            Ok(Some((id, chat, text))) => match sender.send(chat, &text, None).await {
                Ok(()) => {
                    if let Err(e) = mark_sent(&db, id).await {
                        tracing::error!("outbox: sent message {id} but could not mark it: {e:#}");
                    }
                    backoff = POLL;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(chat, "outbox: sending failed, trying again in {backoff:?}: {e:#}");
                    let wait = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            },
            Ok(None) => POLL,
            Err(e) => {
                tracing::error!("outbox: cannot read it: {e:#}");
                POLL
            }
        };
        tokio::select! {
            () = &mut stopped => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

async fn next(db: &Database) -> anyhow::Result<Option<(i64, i64, String)>> {
    use rusqlite::OptionalExtension;
    db.call(|c| {
        c.query_row(
            "SELECT id, chat_id, text FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()
    })
    .await
}

async fn mark_sent(db: &Database, id: i64) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute("UPDATE outbox SET sent_at = ?2 WHERE id = ?1", (id, now))
            .map(|_| ())
    })
    .await
}
