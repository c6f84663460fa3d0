//! The durable queue of Telegram updates (`telegram_updates`): each batch
//! is stored, and synced to disk before the next `getUpdates` confirms it to
//! Telegram, its reply is stored (in the commit that records the exchange's
//! history) before it is sent, and it is marked when handled, so a crash
//! loses nothing, a restart handles only what was not handled, and a reply
//! the plugin already gave is sent again rather than asked for again. A
//! message the live handler was asked about stays owed to the shadow
//! handlers until they have all been handed it.

use super::files::IncomingFile;
use crate::capabilities::reply_files::OutgoingFile;
use chrono::Utc;

use crate::db::retention::{period, Rule};
use crate::db::{text_enum, Database};
use crate::plugin::call::{ParseMode, Reply};

text_enum! {
    /// What came of an update, as recorded when it is handled.
    pub enum UpdateOutcome {
        /// The plugin's reply was sent.
        Replied = "replied",
        /// The plugin replied; Telegram did not take the reply.
        ReplyFailed = "reply_failed",
        /// The plugin chose not to reply.
        NoReply = "no_reply",
        /// The plugin failed (or was not loaded); the user got an apology.
        PluginFailed = "plugin_failed",
        /// The sender is not on the allowlist.
        Refused = "refused",
        /// Not a text message from a user.
        Ignored = "ignored",
        /// `/reset`, answered by the host.
        Reset = "reset",
        /// `/status`, answered by the host.
        Status = "status",
        /// `/cost`, answered by the host.
        Cost = "cost",
        /// `/schedules`, `/runs`, `/run`, `/pause` or `/resume`, answered by
        /// the host.
        Jobs = "jobs",
        /// A button press that decided a tool approval.
        Decided = "decided",
        /// A button press on an approval no longer waiting.
        Stale = "stale",
        /// `/stop`, answered at once.
        Stopped = "stopped",
        /// A press on a plugin's button, stored to start its run.
        Pressed = "pressed",
    }
}

impl UpdateOutcome {
    /// Whether the live handler was asked about the message (or had
    /// answered it before a restart): then the shadows are handed it too.
    pub fn goes_to_shadows(self) -> bool {
        matches!(
            self,
            UpdateOutcome::Replied
                | UpdateOutcome::ReplyFailed
                | UpdateOutcome::NoReply
                | UpdateOutcome::PluginFailed
        )
    }
}

/// A press of an inline button (a `callback_query`).
#[derive(Debug, Clone, PartialEq)]
pub struct ButtonPress {
    /// The callback query's id, to answer it.
    pub callback_id: String,
    /// The button's data.
    pub data: String,
    /// The message the button is under (not kept across a restart).
    pub message_id: Option<i32>,
}

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
    /// The chat plugin's reply, if it answered before a restart.
    pub reply: Option<StoredReply>,
    /// The button pressed, for a callback query (`chat_id` is the chat of
    /// the message the button is under).
    pub press: Option<ButtonPress>,
    /// The message's files (a photo, a document, a voice note...).
    pub files: Vec<IncomingFile>,
    /// The message that showed Claude's text while it was written, if the
    /// host died before it was removed.
    pub preview_message: Option<i32>,
}

/// A reply stored before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReply {
    /// The text; empty for files alone.
    pub text: String,
    /// How Telegram should read it.
    pub parse_mode: Option<ParseMode>,
    /// The files sent after it.
    pub files: Vec<OutgoingFile>,
}

impl StoredReply {
    /// The plugin's `reply` (if any) and the `files` it attached; none if
    /// there is neither.
    pub fn of(reply: Option<&Reply>, files: Vec<OutgoingFile>) -> Option<StoredReply> {
        match (reply, files.is_empty()) {
            (None, true) => None,
            (reply, _) => Some(StoredReply {
                text: reply.map(|r| r.text.clone()).unwrap_or_default(),
                parse_mode: reply.and_then(|r| r.parse_mode),
                files,
            }),
        }
    }
}

fn mode_name(mode: ParseMode) -> &'static str {
    match mode {
        ParseMode::MarkdownV2 => "markdown_v2",
        ParseMode::Html => "html",
    }
}

fn mode_from_name(name: &str) -> Option<ParseMode> {
    match name {
        "markdown_v2" => Some(ParseMode::MarkdownV2),
        "html" => Some(ParseMode::Html),
        _ => None,
    }
}

/// Stores `updates`, and returns those not stored before (Telegram sends an
/// update again until a poll confirms it). Before the next poll confirms
/// them, the caller syncs the database ([`Database::sync`]), so not even a
/// power cut may lose them.
pub async fn store(db: &Database, updates: Vec<StoredUpdate>) -> anyhow::Result<Vec<StoredUpdate>> {
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction()?;
        let mut new = Vec::with_capacity(updates.len());
        {
            let mut insert = transaction.prepare_cached(
                "INSERT OR IGNORE INTO telegram_updates
                     (update_id, chat_id, sender_id, sender_name, text, sent_at, received_at,
                      callback_id, callback_data, files)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for u in updates {
                let inserted = insert.execute(rusqlite::params![
                    u.update_id,
                    u.chat_id,
                    u.sender_id,
                    &u.sender_name,
                    &u.text,
                    u.sent_at,
                    now,
                    u.press.as_ref().map(|p| &p.callback_id),
                    u.press.as_ref().map(|p| &p.data),
                    (!u.files.is_empty()).then(|| serde_json::to_string(&u.files).unwrap_or_default()),
                ])?;
                if inserted == 1 {
                    new.push(u);
                }
            }
        }
        transaction.commit()?;
        Ok(new)
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
        let mut statement = c.prepare_cached(&format!(
            "{SELECT_UPDATE} WHERE handled_at IS NULL ORDER BY update_id"
        ))?;
        let rows = statement.query_map([], stored_update)?;
        rows.collect()
    })
    .await
}

/// The columns [`stored_update`] reads.
const SELECT_UPDATE: &str =
    "SELECT update_id, chat_id, sender_id, sender_name, text, sent_at, reply, reply_mode,
        callback_id, callback_data, files, reply_files, preview_message
 FROM telegram_updates";

fn stored_update(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredUpdate> {
    Ok(StoredUpdate {
        update_id: r.get(0)?,
        chat_id: r.get(1)?,
        sender_id: r.get(2)?,
        sender_name: r.get(3)?,
        text: r.get(4)?,
        sent_at: r.get(5)?,
        reply: r.get::<_, Option<String>>(6)?.map(|text| StoredReply {
            text,
            parse_mode: r
                .get::<_, Option<String>>(7)
                .ok()
                .flatten()
                .and_then(|m| mode_from_name(&m)),
            files: r
                .get::<_, Option<String>>(11)
                .ok()
                .flatten()
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
        }),
        press: match (r.get::<_, Option<String>>(8)?, r.get::<_, Option<String>>(9)?) {
            (Some(callback_id), data) => Some(ButtonPress {
                callback_id,
                data: data.unwrap_or_default(),
                message_id: None,
            }),
            _ => None,
        },
        files: r
            .get::<_, Option<String>>(10)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default(),
        preview_message: r.get(12)?,
    })
}

/// Stores the reply to update `update_id` before it is sent, on the
/// caller's transaction.
pub fn store_reply(
    transaction: &rusqlite::Connection,
    update_id: i64,
    reply: &StoredReply,
) -> rusqlite::Result<()> {
    let files =
        (!reply.files.is_empty()).then(|| serde_json::to_string(&reply.files).expect("files serialize"));
    transaction
        .prepare_cached(
            "UPDATE telegram_updates SET reply = ?2, reply_mode = ?3, reply_files = ?4 WHERE update_id = ?1",
        )?
        .execute((update_id, &reply.text, reply.parse_mode.map(mode_name), files))
        .map(drop)
}

/// Notes `message` as the one showing Claude's text for update
/// `update_id` (none: it is gone).
pub async fn set_preview(db: &Database, update_id: i64, message: Option<i32>) -> anyhow::Result<()> {
    db.call(move |c| {
        c.prepare_cached("UPDATE telegram_updates SET preview_message = ?2 WHERE update_id = ?1")?
            .execute((update_id, message))
            .map(drop)
    })
    .await
}

/// Marks update `update_id` handled, with what came of it; with `shadows`
/// (shadow handlers are configured) and an outcome that
/// [goes to them](UpdateOutcome::goes_to_shadows), it is owed to them until
/// [`shadows_done_in`].
pub async fn mark_handled(
    db: &Database,
    update_id: i64,
    outcome: UpdateOutcome,
    shadows: bool,
) -> anyhow::Result<()> {
    db.call(move |c| mark_handled_in(c, update_id, outcome, shadows))
        .await
}

/// [`mark_handled`] on the caller's transaction.
pub fn mark_handled_in(
    transaction: &rusqlite::Connection,
    update_id: i64,
    outcome: UpdateOutcome,
    shadows: bool,
) -> rusqlite::Result<()> {
    let owed = shadows && outcome.goes_to_shadows();
    transaction
        .prepare_cached(
            "UPDATE telegram_updates SET handled_at = ?2, outcome = ?3, shadows_owed = ?4 WHERE update_id = ?1",
        )?
        .execute((update_id, Utc::now().timestamp_millis(), outcome, owed))
        .map(drop)
}

/// Records, on the caller's transaction, that every shadow handler has
/// been handed update `update_id`.
pub fn shadows_done_in(transaction: &rusqlite::Connection, update_id: i64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("UPDATE telegram_updates SET shadows_owed = 0 WHERE update_id = ?1")?
        .execute([update_id])
        .map(drop)
}

/// The handled updates still owed to the shadow handlers (a restart came
/// before they were all handed them), oldest first, each with the shadows
/// that were handed it already.
pub async fn owed_to_shadows(db: &Database) -> anyhow::Result<Vec<(StoredUpdate, Vec<String>)>> {
    db.call(|c| {
        let mut owed = c.prepare_cached(&format!(
            "{SELECT_UPDATE} WHERE handled_at IS NOT NULL AND shadows_owed = 1 ORDER BY update_id"
        ))?;
        let mut handed = c.prepare_cached(
            "SELECT DISTINCT plugin FROM chat_calls WHERE update_id = ?1 AND role = 'shadow'",
        )?;
        let updates: Vec<StoredUpdate> = owed.query_map([], stored_update)?.collect::<Result<_, _>>()?;
        updates
            .into_iter()
            .map(|update| {
                let done = handed
                    .query_map([update.update_id], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok((update, done))
            })
            .collect()
    })
    .await
}

/// How many handled messages the shadow handlers have not all been handed.
pub async fn owed_count(db: &Database) -> anyhow::Result<u64> {
    db.call(|c| {
        c.query_row(
            "SELECT count(*) FROM telegram_updates WHERE handled_at IS NOT NULL AND shadows_owed = 1",
            [],
            |r| r.get(0),
        )
    })
    .await
}

/// Owes nothing to shadow handlers any more (none is configured now).
pub async fn forget_shadows_owed(db: &Database) -> anyhow::Result<()> {
    db.call(|c| {
        c.execute(
            "UPDATE telegram_updates SET shadows_owed = 0 WHERE shadows_owed = 1",
            [],
        )
        .map(drop)
    })
    .await
}

/// How handled updates go: after `[retention] updates`; the newest stays
/// whatever its age, as it is where polling resumes.
pub const RETENTION: &[Rule] = &[Rule {
    table: "telegram_updates",
    kind: "updates",
    delete: "DELETE FROM telegram_updates WHERE update_id IN (SELECT update_id FROM telegram_updates
                 WHERE handled_at IS NOT NULL AND handled_at < ?1
                   AND update_id < (SELECT max(update_id) FROM telegram_updates) LIMIT ?2)",
    keep: |p| p.retention.updates,
    kept: |p| format!("{} once handled", period(p.retention.updates)),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::call::HandlerRole;
    use crate::triggers::telegram::chat_calls::{self, ChatCall};

    fn message(update_id: i64) -> StoredUpdate {
        StoredUpdate {
            update_id,
            chat_id: Some(7),
            sender_id: Some(1),
            sender_name: "Anna".into(),
            text: Some(format!("message {update_id}")),
            sent_at: 0,
            reply: None,
            press: None,
            files: Vec::new(),
            preview_message: None,
        }
    }

    fn owed_ids(owed: &[(StoredUpdate, Vec<String>)]) -> Vec<(i64, Vec<String>)> {
        owed.iter()
            .map(|(u, handed)| (u.update_id, handed.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_message_the_live_handler_was_asked_about_is_owed_to_the_shadows_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        store(&db, (1..=6).map(message).collect()).await.unwrap();
        mark_handled(&db, 1, UpdateOutcome::Replied, true).await.unwrap();
        mark_handled(&db, 2, UpdateOutcome::PluginFailed, true)
            .await
            .unwrap();
        // A command, and a message while no shadow was configured: not owed.
        mark_handled(&db, 3, UpdateOutcome::Status, true).await.unwrap();
        mark_handled(&db, 4, UpdateOutcome::Replied, false).await.unwrap();
        // Marked in the commit that records the answer.
        db.call(|c| mark_handled_in(c, 5, UpdateOutcome::NoReply, true))
            .await
            .unwrap();
        // 6 is not handled yet: the live handler comes first.

        // One of two shadows was handed update 2 before a restart.
        let handed = ChatCall::unmade("candidate", HandlerRole::Shadow, 7, Some(2), "trapped".into());
        chat_calls::record(&db, handed).await;
        let live = ChatCall::unmade("live", HandlerRole::Live, 7, Some(1), "trapped".into());
        chat_calls::record(&db, live).await;
        let owed = owed_to_shadows(&db).await.unwrap();
        assert_eq!(
            owed_ids(&owed),
            [(1, vec![]), (2, vec!["candidate".to_owned()]), (5, vec![])]
        );
        assert_eq!(owed[0].0, message(1));

        db.call(|c| shadows_done_in(c, 1)).await.unwrap();
        let owed = owed_to_shadows(&db).await.unwrap();
        assert_eq!(owed_ids(&owed), [(2, vec!["candidate".to_owned()]), (5, vec![])]);

        // No shadow configured any more: nothing is owed.
        forget_shadows_owed(&db).await.unwrap();
        assert!(owed_to_shadows(&db).await.unwrap().is_empty());
    }
}
