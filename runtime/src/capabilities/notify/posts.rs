//! Messages a plugin posted with buttons (`posts`, `post_buttons`: the
//! plugin's data stays here, Telegram's `callback_data` names only the post
//! and the button's place) and the presses on them (`presses`). A press is
//! stored — the post marked pressed, the press queued — in one transaction
//! before Telegram's callback query is answered; the presses trigger claims
//! each (`running`) before its run and marks it `done` after, and never
//! claims one whose run finished.

use rusqlite::{OptionalExtension, TransactionBehavior};

use crate::db::retention::{period, Rule};
use crate::db::Database;

/// One button: its place (`ROW.COLUMN`), label and the plugin's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostButton {
    /// `ROW.COLUMN`, from 0.
    pub place: String,
    /// What it says.
    pub label: String,
    /// The plugin's data.
    pub data: Vec<u8>,
}

/// A post's text as sent: Telegram HTML or plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostText {
    /// The text.
    pub text: String,
    /// Whether it is Telegram HTML.
    pub html: bool,
}

/// Keeps a post about to be sent (its message id comes once it is) with
/// its buttons; returns its id, which the buttons' callback data carry.
pub async fn open(
    db: &Database,
    plugin: &str,
    chat: i64,
    text: &PostText,
    expires_at: i64,
    buttons: Vec<PostButton>,
) -> anyhow::Result<i64> {
    let (plugin, text, now) = (
        plugin.to_owned(),
        text.clone(),
        chrono::Utc::now().timestamp_millis(),
    );
    db.call(move |c| {
        let transaction = c.transaction()?;
        transaction.execute(
            "INSERT INTO posts (plugin, chat, text, html, posted_at, expires_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open')",
            rusqlite::params![plugin, chat, text.text, text.html, now, expires_at],
        )?;
        let id = transaction.last_insert_rowid();
        put_buttons(&transaction, id, &buttons)?;
        transaction.commit()?;
        Ok(id)
    })
    .await
}

fn put_buttons(c: &rusqlite::Connection, post: i64, buttons: &[PostButton]) -> rusqlite::Result<()> {
    c.execute("DELETE FROM post_buttons WHERE post = ?1", [post])?;
    let mut insert =
        c.prepare_cached("INSERT INTO post_buttons (post, place, label, data) VALUES (?1, ?2, ?3, ?4)")?;
    for button in buttons {
        insert.execute(rusqlite::params![post, button.place, button.label, button.data])?;
    }
    Ok(())
}

/// Notes the message id Telegram gave post `id`; none: it was not sent,
/// and the post is dropped.
pub async fn sent(db: &Database, id: i64, message: Option<i64>) -> anyhow::Result<()> {
    db.call(move |c| match message {
        Some(message) => c.execute("UPDATE posts SET message_id = ?2 WHERE id = ?1", [id, message]),
        None => {
            c.execute("DELETE FROM post_buttons WHERE post = ?1", [id])?;
            c.execute("DELETE FROM posts WHERE id = ?1", [id])
        }
    })
    .await?;
    Ok(())
}

/// The post `plugin` made as `message` in `chat`, if it made one.
pub async fn owned(db: &Database, plugin: &str, chat: i64, message: i64) -> anyhow::Result<Option<i64>> {
    let plugin = plugin.to_owned();
    db.call(move |c| {
        c.query_row(
            "SELECT id FROM posts WHERE plugin = ?1 AND chat = ?2 AND message_id = ?3",
            rusqlite::params![plugin, chat, message],
            |row| row.get(0),
        )
        .optional()
    })
    .await
}

/// Post `id` edited by its plugin: its new text and buttons; with buttons
/// it is open to a press again, until `expires_at`.
pub async fn edited(
    db: &Database,
    id: i64,
    text: &PostText,
    expires_at: i64,
    buttons: Vec<PostButton>,
) -> anyhow::Result<()> {
    let text = text.clone();
    db.call(move |c| {
        let transaction = c.transaction()?;
        let state = match buttons.is_empty() {
            // Without buttons nothing is left to press.
            true => "CASE WHEN state = 'open' THEN 'closed' ELSE state END",
            false => "'open'",
        };
        transaction.execute(
            &format!("UPDATE posts SET text = ?2, html = ?3, expires_at = ?4, state = {state} WHERE id = ?1"),
            rusqlite::params![id, text.text, text.html, expires_at],
        )?;
        put_buttons(&transaction, id, &buttons)?;
        transaction.commit()
    })
    .await?;
    Ok(())
}

/// What a press came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pressed {
    /// Stored: it runs the plugin (press id).
    Taken(i64),
    /// The post was pressed before (by whom).
    AlreadyDone(String),
    /// The post's buttons expired.
    Expired,
    /// No such button under this message in this chat.
    Unknown,
}

/// One press as the bot saw it.
pub struct Press<'a> {
    /// The post and the button's place, from the callback data.
    pub post: i64,
    /// `ROW.COLUMN`.
    pub place: &'a str,
    /// Where the button was.
    pub chat: i64,
    /// Its message, if the press still says (not across a restart).
    pub message: Option<i64>,
    /// Who pressed.
    pub user: i64,
    /// Their name.
    pub user_name: &'a str,
}

/// A post as a press finds it: its state, expiry, who pressed it, its
/// plugin and message.
type PostState = (String, i64, Option<String>, String, Option<i64>);

/// Stores `press` if its post is open: the post marked pressed and the
/// press queued, in one transaction.
pub async fn press(db: &Database, press: Press<'_>) -> anyhow::Result<Pressed> {
    let (post, place, chat, message, user) = (
        press.post,
        press.place.to_owned(),
        press.chat,
        press.message,
        press.user,
    );
    let name = press.user_name.to_owned();
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<PostState> = transaction
            .query_row(
                "SELECT state, expires_at, pressed_by_name, plugin, message_id FROM posts
                 WHERE id = ?1 AND chat = ?2 AND (?3 IS NULL OR message_id = ?3)",
                rusqlite::params![post, chat, message],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
            )
            .optional()?;
        let Some((state, expires_at, by, plugin, message)) = found else {
            return Ok(Pressed::Unknown);
        };
        if state != "open" {
            return Ok(Pressed::AlreadyDone(by.unwrap_or_default()));
        }
        if now > expires_at {
            transaction.execute("UPDATE posts SET state = 'expired' WHERE id = ?1", [post])?;
            transaction.commit()?;
            return Ok(Pressed::Expired);
        }
        let button: Option<(String, Vec<u8>)> = transaction
            .query_row(
                "SELECT label, data FROM post_buttons WHERE post = ?1 AND place = ?2",
                rusqlite::params![post, place],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((label, data)) = button else {
            return Ok(Pressed::Unknown);
        };
        transaction.execute(
            "UPDATE posts SET state = 'pressed', pressed_by = ?2, pressed_by_name = ?3, pressed_at = ?4,
                 pressed_label = ?5
             WHERE id = ?1",
            rusqlite::params![post, user, name, now, label],
        )?;
        transaction.execute(
            "INSERT INTO presses (post, plugin, chat, message_id, label, data, user_id, user_name, pressed_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending')",
            rusqlite::params![post, plugin, chat, message.unwrap_or_default(), label, data, user, name, now],
        )?;
        let id = transaction.last_insert_rowid();
        transaction.commit()?;
        Ok(Pressed::Taken(id))
    })
    .await
}

/// A press claimed for its run, with what the run and the mark need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The press's id.
    pub id: i64,
    /// The plugin that posted.
    pub plugin: String,
    /// Where.
    pub chat: i64,
    /// The message.
    pub message: i64,
    /// The button's label and the plugin's data.
    pub label: String,
    /// The plugin's data.
    pub data: Vec<u8>,
    /// Who pressed.
    pub user_id: i64,
    /// Their name.
    pub user_name: String,
    /// When (Unix ms).
    pub pressed_at: i64,
    /// The post's text, for the mark.
    pub text: PostText,
}

/// Puts back what a stop or a crash left `running`.
pub async fn reopen(db: &Database) -> anyhow::Result<usize> {
    db.call(|c| c.execute("UPDATE presses SET state = 'pending' WHERE state = 'running'", []))
        .await
}

/// The presses waiting, oldest first.
pub async fn waiting(db: &Database) -> anyhow::Result<Vec<i64>> {
    db.call(|c| {
        let mut statement = c.prepare_cached("SELECT id FROM presses WHERE state = 'pending' ORDER BY id")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect()
    })
    .await
}

/// Claims press `id` for its run; none if it no longer waits or its run
/// finished before a crash kept it from being marked done (marked now).
pub async fn claim(db: &Database, id: i64) -> anyhow::Result<Option<Claimed>> {
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ran: Option<String> = transaction
            .query_row(
                "SELECT outcome FROM runs WHERE press = ?1 AND outcome NOT IN ('running', 'interrupted')
                 ORDER BY id DESC LIMIT 1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(outcome) = ran {
            transaction.execute(
                "UPDATE presses SET state = 'done', outcome = ?2 WHERE id = ?1",
                rusqlite::params![id, outcome],
            )?;
            transaction.commit()?;
            return Ok(None);
        }
        let claimed = transaction
            .query_row(
                "UPDATE presses SET state = 'running' WHERE id = ?1 AND state = 'pending'
                 RETURNING plugin, chat, message_id, label, data, user_id, user_name, pressed_at,
                     (SELECT text FROM posts WHERE posts.id = presses.post),
                     (SELECT html FROM posts WHERE posts.id = presses.post)",
                [id],
                |row| {
                    Ok(Claimed {
                        id,
                        plugin: row.get(0)?,
                        chat: row.get(1)?,
                        message: row.get(2)?,
                        label: row.get(3)?,
                        data: row.get(4)?,
                        user_id: row.get(5)?,
                        user_name: row.get(6)?,
                        pressed_at: row.get(7)?,
                        text: PostText {
                            text: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
                            html: row.get::<_, Option<bool>>(9)?.unwrap_or_default(),
                        },
                    })
                },
            )
            .optional()?;
        transaction.commit()?;
        Ok(claimed)
    })
    .await
}

/// Marks press `id` done with its run's `outcome`.
pub async fn finish(db: &Database, id: i64, outcome: &str) -> anyhow::Result<()> {
    let outcome = outcome.to_owned();
    db.call(move |c| {
        c.execute(
            "UPDATE presses SET state = 'done', outcome = ?2 WHERE id = ?1",
            rusqlite::params![id, outcome],
        )
    })
    .await?;
    Ok(())
}

/// How posts and presses go: after `[retention] runs`, once pressed,
/// closed or expired (an open post stays while its buttons may be
/// pressed).
pub const RETENTION: &[Rule] = &[
    Rule {
        table: "presses",
        kind: "presses",
        delete: "DELETE FROM presses WHERE id IN (SELECT id FROM presses
                 WHERE pressed_at < ?1 AND state = 'done' LIMIT ?2)",
        keep: |p| p.retention.runs,
        kept: |p| format!("{} once run", period(p.retention.runs)),
    },
    Rule {
        table: "post_buttons",
        kind: "posts",
        delete: "DELETE FROM post_buttons WHERE rowid IN (SELECT post_buttons.rowid FROM post_buttons
                 JOIN posts ON posts.id = post_buttons.post
                 WHERE posts.posted_at < ?1 AND (posts.state != 'open' OR posts.expires_at < ?1) LIMIT ?2)",
        keep: |p| p.retention.runs,
        kept: |p| format!("{} once pressed or expired", period(p.retention.runs)),
    },
    Rule {
        table: "posts",
        kind: "posts",
        delete: "DELETE FROM posts WHERE id IN (SELECT id FROM posts
                 WHERE posted_at < ?1 AND (state != 'open' OR expires_at < ?1)
                 AND NOT EXISTS (SELECT 1 FROM post_buttons WHERE post = posts.id) LIMIT ?2)",
        keep: |p| p.retention.runs,
        kept: |p| format!("{} once pressed or expired", period(p.retention.runs)),
    },
];
