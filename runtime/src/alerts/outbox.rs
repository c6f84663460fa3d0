//! The outbox: alerts kept in SQLite until Telegram has them, so each is
//! sent at least once across a restart or a Telegram outage, and queuing
//! one never waits for Telegram. In quiet hours only urgent ones go out;
//! the rest wait, in order, for the hours to end.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;

use super::Action;
use crate::config::alerts::QuietHours;
use crate::db::Database;

/// How often the outbox is looked at when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);

/// The longest wait between failed sends.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What sends an alert: the bot's client.
#[async_trait::async_trait]
pub trait Courier: Send + Sync {
    /// Sends `text` to `chat` under rows of buttons (label, callback data).
    async fn send(&self, chat: i64, text: &str, buttons: &[Vec<(&str, String)>]) -> anyhow::Result<()>;
}

/// Sends what the outbox holds, oldest first, until `stopped`; a failed
/// send is tried again with a doubling wait, the rest behind it waiting.
/// `quiet` says, each time, the quiet hours now configured.
pub async fn deliver(
    db: Database,
    courier: std::sync::Arc<dyn Courier>,
    quiet: impl Fn() -> Option<(QuietHours, Tz)> + Send,
    stopped: impl Future<Output = ()>,
) {
    tokio::pin!(stopped);
    let mut backoff = POLL;
    loop {
        let urgent_only = quiet().is_some_and(|(hours, zone)| hours.holds(Utc::now(), zone));
        let wait = match next(&db, urgent_only).await {
            Ok(Some(queued)) => {
                let buttons = buttons(queued.id, &queued.actions);
                match courier.send(queued.chat, &queued.text, &buttons).await {
                    Ok(()) => {
                        if let Err(e) = mark_sent(&db, queued.id).await {
                            tracing::error!("outbox: sent alert {} but could not mark it: {e:#}", queued.id);
                        }
                        backoff = POLL;
                        Duration::ZERO
                    }
                    Err(e) => {
                        tracing::warn!(
                            chat = queued.chat,
                            "outbox: sending failed, trying again in {backoff:?}: {e:#}"
                        );
                        let wait = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        wait
                    }
                }
            }
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

/// The rows of buttons under alert `id` for its `actions`: **Details** on
/// a row of its own, the rest below it.
fn buttons(id: i64, actions: &[Action]) -> Vec<Vec<(&'static str, String)>> {
    let (details, rest): (Vec<Action>, Vec<Action>) = actions.iter().partition(|a| **a == Action::Details);
    [details, rest]
        .into_iter()
        .filter(|row| !row.is_empty())
        .map(|row| row.iter().map(|a| (a.label(), a.callback_data(id))).collect())
        .collect()
}

/// An alert waiting to be sent.
struct Queued {
    id: i64,
    chat: i64,
    text: String,
    /// The buttons under it.
    actions: Vec<Action>,
}

/// The oldest alert not sent (only urgent ones if `urgent_only`).
async fn next(db: &Database, urgent_only: bool) -> anyhow::Result<Option<Queued>> {
    use rusqlite::OptionalExtension;
    db.call(move |c| {
        c.query_row(
            "SELECT id, chat_id, text, actions FROM outbox
             WHERE sent_at IS NULL AND (urgent OR NOT ?1) ORDER BY id LIMIT 1",
            [urgent_only],
            |row| {
                let actions: Option<String> = row.get(3)?;
                Ok(Queued {
                    id: row.get(0)?,
                    chat: row.get(1)?,
                    text: row.get(2)?,
                    actions: Action::list(actions.as_deref().unwrap_or_default()),
                })
            },
        )
        .optional()
    })
    .await
}

async fn mark_sent(db: &Database, id: i64) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute("UPDATE outbox SET sent_at = ?2 WHERE id = ?1", (id, now))
            .map(|_| ())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_sits_on_a_row_of_its_own_above_the_other_buttons() {
        let actions = Action::list("details run pause mute");
        let rows: Vec<Vec<&str>> = buttons(9, &actions)
            .iter()
            .map(|row| row.iter().map(|(label, _)| *label).collect())
            .collect();
        assert_eq!(rows, [vec!["Details"], vec!["Run again", "Pause", "Mute 24 h"]]);
        assert_eq!(buttons(9, &Action::list("run_now"))[0][0].1, "alert:9:run_now");
        assert!(buttons(9, &Action::list("")).is_empty(), "a recovery has none");
    }
}
