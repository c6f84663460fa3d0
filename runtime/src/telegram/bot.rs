//! The Telegram bot: long-polls the Bot API (teloxide for the requests),
//! stores every update durably before confirming it, hands each allowed
//! message to the chat plugin — in order within a chat, chats in parallel —
//! and sends the reply back, split to Telegram's limit, with a typing
//! indicator while the plugin works. The [`commands`](super::commands) are
//! answered by the host. Each call is measured ([`crate::telegram::chat_calls`]); the
//! shadow handlers get each message after the live one has answered, in a
//! queue of their own per chat, so they never hold up a reply. Button
//! presses on tool-approval prompts are handled at once, outside the chat's
//! queue (the message they unblock is in it). It reaches the host only
//! through [`ChatHost`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::payloads::GetUpdatesSetters;
use teloxide::requests::Requester;
use teloxide::types::{
    AllowedUpdate, ChatAction, ChatId, ParseMode as TelegramParseMode, Update, UpdateKind,
};
use teloxide::RequestError;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::chat_calls::{self, ChatCall};
use super::chat_host::ChatHost;
use super::client::TelegramSender;
use super::commands::{self, Command};
use super::prompter::TelegramPrompter;
use super::updates::{self, ButtonPress, StoredReply, StoredUpdate, UpdateOutcome};
use crate::claude::approvals::{Choice, Press};
use crate::config::{InstanceMode, PluginName, TelegramConfig};
use crate::db::Database;
use crate::plugin::call::{AnswerRecord, CallError, HandlerRole, Message, ParseMode, WarmInstance};

/// How often the typing indicator is re-sent (Telegram shows it ≤ 5 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// How long the plugin may work before "typing…" is shown: a quicker reply
/// needs none, and saves a Bot API call.
const TYPING_AFTER: Duration = Duration::from_millis(250);
/// The longest wait between failed `getUpdates` calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The bot of one host.
pub struct TelegramBot {
    host: Arc<dyn ChatHost>,
    config: TelegramConfig,
    sender: Arc<TelegramSender>,
    started: Instant,
    /// Each chat's queue of messages for the shadow handlers.
    shadow_queues: std::sync::Mutex<HashMap<i64, mpsc::UnboundedSender<ShadowTurn>>>,
}

/// A message (and its update id) for the shadow handlers named.
type ShadowTurn = (Message, i64, Vec<PluginName>);

impl TelegramBot {
    /// A bot for `host` with `config`, talking to Telegram through `sender`.
    pub fn new(host: Arc<dyn ChatHost>, config: TelegramConfig, sender: Arc<TelegramSender>) -> TelegramBot {
        TelegramBot {
            host,
            config,
            sender,
            started: Instant::now(),
            shadow_queues: std::sync::Mutex::default(),
        }
    }

    /// Polls and answers until `shutdown` completes; then lets each chat
    /// finish the message it is on (up to `grace`). Updates stored but not
    /// handled are handled at the next start.
    pub async fn run(self, grace: Duration, shutdown: impl Future<Output = ()>) {
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

    /// Queues `update` behind the earlier ones of its chat; a button press
    /// is handled at once.
    fn dispatch(
        self: &Arc<Self>,
        chats: &mut HashMap<i64, mpsc::UnboundedSender<StoredUpdate>>,
        workers: &mut JoinSet<()>,
        update: StoredUpdate,
    ) {
        if let Some(press) = update.press.clone() {
            let bot = self.clone();
            workers.spawn(async move {
                let id = update.update_id;
                let outcome = bot.press(&update, &press).await;
                if let Err(e) = updates::mark_handled(bot.host.db(), id, outcome, false).await {
                    tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                }
            });
            return;
        }
        let chat = update.chat_id.unwrap_or_default();
        let queue = chats.entry(chat).or_insert_with(|| {
            let (sender, mut queue) = mpsc::unbounded_channel::<StoredUpdate>();
            let bot = self.clone();
            workers.spawn(async move {
                let mut warm = None;
                loop {
                    let next = match (&warm, bot.config.instance) {
                        (Some(_), InstanceMode::Warm) => {
                            match tokio::time::timeout(bot.config.warm_idle, queue.recv()).await {
                                Ok(next) => next,
                                Err(_idle) => {
                                    tracing::debug!(chat, "dropping the idle warm instance");
                                    warm = None;
                                    continue;
                                }
                            }
                        }
                        _ => queue.recv().await,
                    };
                    let Some(update) = next else { return };
                    let id = update.update_id;
                    let shadows = !bot.config.shadow.is_empty();
                    let for_shadows = if shadows { chat_message(&update) } else { None };
                    let slot = (bot.config.instance == InstanceMode::Warm).then_some(&mut warm);
                    let outcome = bot.handle(update, slot).await;
                    // A NoReply was marked in the commit that recorded the answer.
                    if outcome != UpdateOutcome::NoReply {
                        if let Err(e) = updates::mark_handled(bot.host.db(), id, outcome, shadows).await {
                            tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                        }
                    }
                    if let (true, Some(message)) = (outcome.goes_to_shadows(), for_shadows) {
                        bot.shadow(message, id, bot.config.shadow.clone());
                    }
                }
            });
            sender
        });
        let _ = queue.send(update);
    }

    /// Handles one update; returns what came of it, for the record.
    async fn handle(&self, update: StoredUpdate, warm: Option<&mut Option<WarmInstance>>) -> UpdateOutcome {
        let (Some(chat), Some(sender)) = (update.chat_id, update.sender_id) else {
            return UpdateOutcome::Ignored;
        };
        if !self.config.allowed_users.contains(&sender) {
            tracing::warn!(
                chat,
                sender,
                "message from a user not on the allowlist: not passed on"
            );
            if let Some(reply) = &self.config.stranger_reply {
                self.send(chat, reply, None).await;
            }
            return UpdateOutcome::Refused;
        }
        if let Some(reply) = update.reply {
            tracing::info!(
                chat,
                update = update.update_id,
                "sending the reply given before a restart"
            );
            return self.deliver(chat, reply).await;
        }
        let Some(mut message) = chat_message(&update) else {
            self.send(chat, "I can only read text messages.", None).await;
            return UpdateOutcome::Ignored;
        };
        if let Some(command) = Command::parse(&message.text) {
            let context = commands::Context {
                host: self.host.as_ref(),
                handler: &self.config.handler,
                shadows: &self.config.shadow,
                started: self.started,
            };
            let reply = commands::answer(command, chat, &context).await;
            self.send(chat, &reply, None).await;
            return command.outcome();
        }
        message.config = self
            .host
            .plugin(self.config.handler.as_str())
            .map(|p| p.config.values.clone())
            .unwrap_or_default();
        // The reply is stored with the exchange's history, in one commit:
        // after a crash the update comes back with its reply, and the plugin
        // (and Claude behind it) is not asked twice.
        let update_id = update.update_id;
        let shadows = !self.config.shadow.is_empty();
        let record: AnswerRecord = Box::new(move |transaction, reply| match reply {
            Some(reply) => updates::store_reply(transaction, update_id, &StoredReply::from(reply)),
            None => updates::mark_handled_in(transaction, update_id, UpdateOutcome::NoReply, shadows),
        });
        let typing = self.start_typing(chat);
        let handler = self.config.handler.as_str();
        let report = self.host.chat(handler, &message, warm, Some(record)).await;
        typing.abort();
        let call = match &report {
            Ok(report) => ChatCall::of(report, handler, HandlerRole::Live, chat, Some(update_id)),
            Err(e) => ChatCall::unmade(
                handler,
                HandlerRole::Live,
                chat,
                Some(update_id),
                format!("{e:#}"),
            ),
        };
        chat_calls::record(self.host.db(), call).await;
        let outcome = match report.map(|r| r.result) {
            Ok(Ok(Some(reply))) => self.deliver(chat, StoredReply::from(&reply)).await,
            Ok(Ok(None)) => UpdateOutcome::NoReply,
            Ok(Err(e)) => {
                tracing::warn!(chat, "chat plugin did not answer: {e}");
                self.send(chat, &apology(&e), None).await;
                UpdateOutcome::PluginFailed
            }
            Err(e) => {
                tracing::error!(chat, "chat plugin not available: {e:#}");
                self.send(chat, "Sorry, I am not available right now.", None)
                    .await;
                UpdateOutcome::PluginFailed
            }
        };
        outcome
    }

    /// Queues `message` (update `update_id`) for the shadow handlers
    /// `shadows`, behind the chat's earlier ones; they are handed it side by
    /// side, their replies dropped; then their calls are recorded, and the
    /// update no longer owed to them, in one commit.
    fn shadow(&self, message: Message, update_id: i64, shadows: Vec<PluginName>) {
        let chat = message.chat_id;
        let mut queues = self.shadow_queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues.entry(chat).or_insert_with(|| {
            let (sender, mut queue) = mpsc::unbounded_channel::<ShadowTurn>();
            let host = self.host.clone();
            tokio::spawn(async move {
                while let Some((message, update_id, shadows)) = queue.recv().await {
                    let mut calls = JoinSet::new();
                    for shadow in shadows {
                        calls.spawn(shadow_call(host.clone(), shadow, message.clone(), update_id));
                    }
                    let calls = calls.join_all().await;
                    let recorded = host
                        .db()
                        .call(move |c| {
                            let transaction = c.transaction()?;
                            for call in &calls {
                                chat_calls::insert(&transaction, call)?;
                            }
                            updates::shadows_done_in(&transaction, update_id)?;
                            transaction.commit()
                        })
                        .await;
                    if let Err(e) = recorded {
                        tracing::error!(
                            update = update_id,
                            "failed to record the shadow handlers' calls: {e:#}"
                        );
                    }
                }
            });
            sender
        });
        let _ = queue.send((message, update_id, shadows));
    }

    /// Hands the shadow handlers the messages a restart kept from them,
    /// each to those not handed it yet; with no shadow configured now,
    /// forgets them.
    async fn resume_shadows(&self) {
        let db = self.host.db();
        if self.config.shadow.is_empty() {
            if let Err(e) = updates::forget_shadows_owed(db).await {
                tracing::error!("failed to clear the messages owed to shadow handlers: {e:#}");
            }
            return;
        }
        let owed = match updates::owed_to_shadows(db).await {
            Ok(owed) => owed,
            Err(e) => {
                tracing::error!("failed to read the messages owed to shadow handlers: {e:#}");
                return;
            }
        };
        if !owed.is_empty() {
            tracing::info!(
                count = owed.len(),
                "handing the shadow handlers the messages a restart kept from them"
            );
        }
        for (update, handed) in owed {
            let Some(message) = chat_message(&update) else {
                continue;
            };
            let shadows = self
                .config
                .shadow
                .iter()
                .filter(|shadow| !handed.iter().any(|h| h == shadow.as_str()))
                .cloned()
                .collect();
            self.shadow(message, update.update_id, shadows);
        }
    }

    /// Handles a button press: only an allowlisted user may decide, and only
    /// in the chat the prompt was posted in; the press is answered either way.
    async fn press(&self, update: &StoredUpdate, press: &ButtonPress) -> UpdateOutcome {
        let (chat, sender) = (
            update.chat_id.unwrap_or_default(),
            update.sender_id.unwrap_or_default(),
        );
        let answer = |text: String, alert: bool| self.answer_press(chat, press, text, alert);
        let Some((id, choice)) = Choice::parse(&press.data) else {
            answer("This button is not one of mine.".into(), false).await;
            return UpdateOutcome::Ignored;
        };
        if !self.config.allowed_users.contains(&sender) {
            tracing::warn!(
                chat,
                sender,
                approval = id,
                "button press from a user not on the allowlist: refused"
            );
            answer("You are not allowed to decide this.".into(), true).await;
            return UpdateOutcome::Refused;
        }
        let approvals = self.host.claude().approvals().clone();
        let pressed = approvals.press(id, chat, press.message_id, choice, sender, &update.sender_name);
        match pressed.await {
            Press::Decided(text) => {
                answer(text, false).await;
                UpdateOutcome::Decided
            }
            Press::NotWaiting => {
                answer("This request is no longer waiting for an answer.".into(), false).await;
                UpdateOutcome::Stale
            }
            Press::Elsewhere => {
                tracing::warn!(
                    chat,
                    sender,
                    approval = id,
                    "button press from another chat or message than the prompt's: refused"
                );
                answer("You are not allowed to decide this.".into(), true).await;
                UpdateOutcome::Refused
            }
        }
    }

    /// Answers `press` with `text` (`alert`: a notice the user must dismiss);
    /// a failure is logged, the press is handled either way.
    async fn answer_press(&self, chat: i64, press: &ButtonPress, text: String, alert: bool) {
        if let Err(e) = self.sender.answer_press(&press.callback_id, &text, alert).await {
            tracing::debug!(chat, "answering a button press failed: {e}");
        }
    }

    /// Sends the plugin's `reply` to `chat`; returns what came of it.
    async fn deliver(&self, chat: i64, reply: StoredReply) -> UpdateOutcome {
        let mode = reply.parse_mode.map(|m| match m {
            ParseMode::MarkdownV2 => TelegramParseMode::MarkdownV2,
            ParseMode::Html => TelegramParseMode::Html,
        });
        if self.send(chat, &reply.text, mode).await {
            UpdateOutcome::Replied
        } else {
            UpdateOutcome::ReplyFailed
        }
    }

    /// Sends "typing…" to `chat` from [`TYPING_AFTER`] on, every few seconds,
    /// until the handle is aborted — but not while a tool-use prompt there
    /// waits for the user; a failure is logged and never holds up the reply.
    fn start_typing(&self, chat: i64) -> tokio::task::JoinHandle<()> {
        let bot = self.sender.bot().clone();
        let approvals = self.host.claude().approvals().clone();
        tokio::spawn(async move {
            tokio::time::sleep(TYPING_AFTER).await;
            loop {
                if !approvals.is_waiting_in(chat) {
                    if let Err(e) = bot.send_chat_action(ChatId(chat), ChatAction::Typing).await {
                        tracing::debug!(chat, "typing indicator failed: {e}");
                    }
                }
                tokio::time::sleep(TYPING_EVERY).await;
            }
        })
    }

    /// Sends `text` to `chat` (see [`TelegramSender::send`]); returns
    /// whether every piece was delivered.
    async fn send(&self, chat: i64, text: &str, mode: Option<TelegramParseMode>) -> bool {
        self.sender.send(chat, text, mode).await.is_ok()
    }
}

/// Hands `message` (update `update_id`) to the shadow handler `shadow`,
/// with the shadow's own config; returns the call's record.
async fn shadow_call(
    host: Arc<dyn ChatHost>,
    shadow: PluginName,
    mut message: Message,
    update_id: i64,
) -> ChatCall {
    let (name, chat, role) = (shadow.as_str(), message.chat_id, HandlerRole::Shadow);
    message.config = host
        .plugin(name)
        .map(|p| p.config.values.clone())
        .unwrap_or_default();
    let call = match host.shadow_chat(name, &message).await {
        Ok(report) => ChatCall::of(&report, name, role, chat, Some(update_id)),
        Err(e) => ChatCall::unmade(name, role, chat, Some(update_id), format!("{e:#}")),
    };
    if call.outcome != chat_calls::ChatCallOutcome::Ok {
        let error = call.error.as_deref().unwrap_or_default();
        tracing::info!(
            shadow = name,
            chat,
            outcome = call.outcome.as_str(),
            "shadow handler did not answer cleanly: {error}"
        );
    }
    call
}

/// The message in `update` for a chat handler, without a handler's config;
/// `None` unless it is a text message from a user.
fn chat_message(update: &StoredUpdate) -> Option<Message> {
    Some(Message {
        chat_id: update.chat_id?,
        sender_id: i64::try_from(update.sender_id?).unwrap_or(i64::MAX),
        sender_name: update.sender_name.clone(),
        text: update.text.clone()?,
        sent_at: update.sent_at,
        config: Vec::new(),
    })
}

/// The short reply a user gets when the plugin failed.
fn apology(error: &CallError) -> String {
    let why = match error {
        CallError::Failed { .. } => "it ran into an error",
        CallError::Trapped { .. } => "it crashed",
        CallError::TimedOut { .. } => "it took too long",
        CallError::OutOfMemory { .. } => "it ran out of memory",
    };
    format!("Sorry, I could not answer that: {why}. Try again, or /reset.")
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
            press: Some(ButtonPress {
                callback_id: query.id.0.clone(),
                data: query.data.clone().unwrap_or_default(),
                message_id: query.message.as_ref().map(|m| m.id().0),
            }),
        };
    }
    let message = match &update.kind {
        UpdateKind::Message(message) => Some(message),
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
        text: message.and_then(|m| m.text()).map(str::to_owned),
        sent_at: message.map_or(0, |m| m.date.timestamp_millis()),
        reply: None,
        press: None,
    }
}
