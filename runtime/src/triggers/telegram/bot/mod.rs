//! The Telegram bot: long-polls the Bot API (teloxide for the requests),
//! stores every update durably before confirming it, hands each allowed
//! message to the chat plugin — in order within a chat, chats in parallel —
//! and sends the reply back, split to Telegram's limit, with a typing
//! indicator while the plugin works. The [`commands`](super::commands) are
//! answered by the host. Each call is measured ([`crate::triggers::telegram::chat_calls`]); the
//! shadow handlers get each message after the live one has answered, in a
//! queue of their own per chat, so they never hold up a reply. Button
//! presses on tool-approval prompts are handled at once, outside the chat's
//! queue (the message they unblock is in it). It reaches the host only
//! through an [`Invoker`].
//!
//! This file is the poll loop; beside it the per-chat [`worker`]s, the live
//! [`message`], the [`shadows`] and the button [`presses`].

mod message;
mod presses;
mod shadows;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::RequestError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use shadows::ShadowTurn;

use super::files;
use super::prompter::TelegramPrompter;
use super::updates::{self, ButtonPress, StoredUpdate};
use crate::capabilities::notify::telegram::TelegramSender;
use crate::config::{PluginName, TelegramConfig};
use crate::db::Database;
use crate::triggers::Invoker;

/// The longest wait between failed `getUpdates` calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The bot of one host.
pub struct TelegramBot {
    host: Invoker,
    config: TelegramConfig,
    sender: Arc<TelegramSender>,
    started: Instant,
    /// Each chat's queue of messages for the shadow handlers.
    shadow_queues: std::sync::Mutex<HashMap<i64, mpsc::UnboundedSender<ShadowTurn>>>,
}

impl TelegramBot {
    /// A bot for `host` with `config`, talking to Telegram through `sender`.
    pub fn new(host: Invoker, config: TelegramConfig, sender: Arc<TelegramSender>) -> TelegramBot {
        TelegramBot {
            host,
            config,
            sender,
            started: Instant::now(),
            shadow_queues: std::sync::Mutex::default(),
        }
    }

    /// Polls and answers until `shutdown` completes; then lets each chat
    /// finish the message it is on (up to `shutdown_grace`). Updates stored but not
    /// handled are handled at the next start.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let grace = self.host.config().shutdown_grace;
        let bot = Arc::new(self);
        let db = bot.host.db().clone();
        let approvals = bot.host.claude().approvals().clone();
        approvals.connect(
            Arc::new(TelegramPrompter::new(bot.sender.clone())),
            bot.config.approval_timeout,
        );
        if let Err(e) = approvals.abandon_stale().await {
            tracing::error!("failed to settle tool approvals left by the last run: {e:#}");
        }
        if !bot.config.shadow.is_empty() {
            let shadows: Vec<&str> = bot.config.shadow.iter().map(PluginName::as_str).collect();
            tracing::info!(
                shadows = shadows.join(", "),
                "shadow handlers get every message too"
            );
        }
        // Before the updates left unhandled: those owed are older.
        bot.resume_shadows().await;
        let mut chats: HashMap<i64, mpsc::UnboundedSender<StoredUpdate>> = HashMap::new();
        let mut workers = JoinSet::new();
        match updates::unhandled(&db).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(count = pending.len(), "handling updates stored before a restart");
                }
                for update in pending {
                    bot.dispatch(&mut chats, &mut workers, update);
                }
            }
            Err(e) => tracing::error!("failed to read stored Telegram updates: {e:#}"),
        }
        let mut backoff = Duration::from_secs(1);
        // One past the newest update stored: read once, then kept here.
        let mut stored_up_to: Option<i64> = None;
        tokio::pin!(shutdown);
        tracing::info!(handler = %bot.config.handler, "telegram bot polling");
        loop {
            let offset = match stored_up_to {
                Some(offset) => Ok(offset),
                None => updates::next_offset(&db).await,
            };
            let wait = match offset {
                Err(e) => {
                    tracing::error!("failed to read the Telegram offset: {e:#}");
                    Some(backoff)
                }
                Ok(offset) => {
                    stored_up_to = Some(offset);
                    let poll = bot
                        .sender
                        .bot()
                        .get_updates()
                        .offset(i32::try_from(offset).unwrap_or(i32::MAX))
                        .timeout(bot.config.poll_timeout.as_secs() as u32)
                        .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
                    let result = tokio::select! {
                        () = &mut shutdown => break,
                        result = async { poll.await } => result,
                    };
                    match result {
                        Ok(received) => {
                            backoff = Duration::from_secs(1);
                            match bot.take(&db, received, &mut chats, &mut workers).await {
                                Ok(Some(newest)) => {
                                    stored_up_to = Some(offset.max(newest + 1));
                                    None
                                }
                                Ok(None) => None,
                                Err(wait) => Some(wait),
                            }
                        }
                        Err(RequestError::RetryAfter(wait)) => {
                            tracing::warn!(retry_after = ?wait.duration(), "Telegram asked to slow down");
                            Some(wait.duration())
                        }
                        Err(e) => {
                            tracing::warn!("getUpdates failed, retrying in {backoff:?}: {e}");
                            let wait = backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                            Some(wait)
                        }
                    }
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        drop(chats);
        // A chat waiting for a person's answer would hold up the shutdown.
        approvals.close("Mission Control is stopping").await;
        let finished =
            tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("messages still being handled at shutdown are handled again at the next start");
            workers.shutdown().await;
        }
    }

    /// Stores `received` and queues each new update for its chat, then
    /// syncs the database: the updates are on disk before the next poll
    /// confirms them to Telegram, while their chats already work on them.
    /// Returns the newest update id received, or how long to wait before
    /// asking again if storing or syncing failed (an update received again
    /// is not handled twice).
    async fn take(
        self: &Arc<Self>,
        db: &Database,
        received: Vec<Update>,
        chats: &mut HashMap<i64, mpsc::UnboundedSender<StoredUpdate>>,
        workers: &mut JoinSet<()>,
    ) -> Result<Option<i64>, Duration> {
        let received: Vec<StoredUpdate> = received.iter().map(stored).collect();
        let Some(newest) = received.iter().map(|u| u.update_id).max() else {
            return Ok(None);
        };
        let new = match updates::store(db, received).await {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("failed to store Telegram updates, asking for them again: {e:#}");
                return Err(Duration::from_secs(1));
            }
        };
        for update in new {
            self.dispatch(chats, workers, update);
        }
        if let Err(e) = db.sync().await {
            tracing::error!("failed to sync stored Telegram updates, not confirming them yet: {e:#}");
            return Err(Duration::from_secs(1));
        }
        Ok(Some(newest))
    }
}

/// The parts of `update` the bot uses.
fn stored(update: &Update) -> StoredUpdate {
    if let UpdateKind::CallbackQuery(query) = &update.kind {
        return StoredUpdate {
            update_id: i64::from(update.id.0),
            chat_id: query.message.as_ref().map(|m| m.chat().id.0),
            sender_id: Some(query.from.id.0),
            sender_name: query.from.full_name(),
            text: None,
            sent_at: chrono::Utc::now().timestamp_millis(),
            reply: None,
            files: Vec::new(),
            preview_message: None,
            press: Some(ButtonPress {
                callback_id: query.id.0.clone(),
                data: query.data.clone().unwrap_or_default(),
                message_id: query.message.as_ref().map(|m| m.id().0),
            }),
        };
    }
    let message = match &update.kind {
        UpdateKind::Message(message) => Some(message),
        UpdateKind::Error(raw) => {
            // Telegram sent what teloxide could not read (a field it does
            // not know, a kind it lacks): said by its kind, not dropped unseen.
            let kinds: Vec<&str> = raw
                .as_object()
                .map(|o| {
                    o.keys()
                        .map(String::as_str)
                        .filter(|k| *k != "update_id")
                        .collect()
                })
                .unwrap_or_default();
            tracing::warn!(
                update = update.id.0,
                kind = kinds.join(","),
                "an update the Telegram library could not read: ignored"
            );
            None
        }
        _ => None,
    };
    StoredUpdate {
        update_id: i64::from(update.id.0),
        chat_id: message.map(|m| m.chat.id.0),
        sender_id: message.and_then(|m| m.from.as_ref()).map(|u| u.id.0),
        sender_name: message
            .and_then(|m| m.from.as_ref())
            .map(|u| u.full_name())
            .unwrap_or_default(),
        // A photo's or a document's caption is its text.
        text: message.and_then(|m| m.text().or(m.caption())).map(str::to_owned),
        sent_at: message.map_or(0, |m| m.date.timestamp_millis()),
        reply: None,
        press: None,
        files: message.map(files::of).unwrap_or_default(),
        preview_message: None,
    }
}
