//! The Telegram bot: long-polls the Bot API (teloxide for the requests),
//! stores every update before confirming it, hands each allowed message to
//! the chat plugin — in order within a chat, chats in parallel — and sends
//! the reply back, split to Telegram's limit, with a typing indicator while
//! the plugin works. `/reset` (history and Claude session), `/status` and
//! `/cost` (Claude spend) are answered by the host.

mod sender;
mod split;
pub mod updates;

pub use sender::TelegramSender;

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

use crate::call::{CallError, Message, ParseMode, WarmInstance};
use crate::capabilities::history;
use crate::claude::ledger;
use crate::claude::report::{self, GroupBy};
use crate::config::{InstanceMode, TelegramConfig};
use crate::host::Host;
use crate::runs;
use updates::{StoredReply, StoredUpdate};

/// How often the typing indicator is re-sent (Telegram shows it ≤ 5 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// The longest wait between failed `getUpdates` calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The bot of one host.
pub struct TelegramBot {
    host: Arc<Host>,
    config: TelegramConfig,
    sender: Arc<TelegramSender>,
    started: Instant,
}

impl TelegramBot {
    /// A bot for `host` with `config`, talking to Telegram through `sender`.
    pub fn new(host: Arc<Host>, config: TelegramConfig, sender: Arc<TelegramSender>) -> TelegramBot {
        TelegramBot {
            host,
            config,
            sender,
            started: Instant::now(),
        }
    }

    /// Polls and answers until `shutdown` completes; then lets each chat
    /// finish the message it is on (up to `grace`). Updates stored but not
    /// handled are handled at the next start.
    pub async fn run(self, grace: Duration, shutdown: impl Future<Output = ()>) {
        let bot = Arc::new(self);
        let db = bot.host.db().clone();
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
        tokio::pin!(shutdown);
        tracing::info!(handler = %bot.config.handler, "telegram bot polling");
        loop {
            let wait = match updates::next_offset(&db).await {
                Err(e) => {
                    tracing::error!("failed to read the Telegram offset: {e:#}");
                    Some(backoff)
                }
                Ok(offset) => {
                    let poll = bot
                        .sender
                        .bot()
                        .get_updates()
                        .offset(i32::try_from(offset).unwrap_or(i32::MAX))
                        .timeout(bot.config.poll_timeout.as_secs() as u32)
                        .allowed_updates([AllowedUpdate::Message]);
                    let result = tokio::select! {
                        () = &mut shutdown => break,
                        result = async { poll.await } => result,
                    };
                    match result {
                        Ok(received) => {
                            backoff = Duration::from_secs(1);
                            bot.take(&db, received, &mut chats, &mut workers).await
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
        let finished =
            tokio::time::timeout(grace, async { while workers.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("messages still being handled at shutdown are handled again at the next start");
            workers.shutdown().await;
        }
    }

    /// Stores `received` (before the next poll confirms it to Telegram) and
    /// queues each update for its chat; returns how long to wait before
    /// polling again if storing failed.
    async fn take(
        self: &Arc<Self>,
        db: &crate::db::Database,
        received: Vec<Update>,
        chats: &mut HashMap<i64, mpsc::UnboundedSender<StoredUpdate>>,
        workers: &mut JoinSet<()>,
    ) -> Option<Duration> {
        let received: Vec<StoredUpdate> = received.iter().map(stored).collect();
        if received.is_empty() {
            return None;
        }
        if let Err(e) = updates::store(db, received.clone()).await {
            tracing::error!("failed to store Telegram updates, asking again: {e:#}");
            return Some(Duration::from_secs(1));
        }
        for update in received {
            self.dispatch(chats, workers, update);
        }
        None
    }

    /// Queues `update` behind the earlier ones of its chat.
    fn dispatch(
        self: &Arc<Self>,
        chats: &mut HashMap<i64, mpsc::UnboundedSender<StoredUpdate>>,
        workers: &mut JoinSet<()>,
        update: StoredUpdate,
    ) {
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
                    let slot = (bot.config.instance == InstanceMode::Warm).then_some(&mut warm);
                    let outcome = bot.handle(update, slot).await;
                    if let Err(e) = updates::mark_handled(bot.host.db(), id, outcome).await {
                        tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                    }
                }
            });
            sender
        });
        let _ = queue.send(update);
    }

    /// Handles one update; returns what came of it, for the record.
    async fn handle(&self, update: StoredUpdate, warm: Option<&mut Option<WarmInstance>>) -> &'static str {
        let (Some(chat), Some(sender)) = (update.chat_id, update.sender_id) else {
            return "ignored";
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
            return "refused";
        }
        if let Some(reply) = update.reply {
            tracing::info!(
                chat,
                update = update.update_id,
                "sending the reply given before a restart"
            );
            return self.deliver(chat, reply).await;
        }
        let Some(text) = update.text else {
            self.send(chat, "I can only read text messages.", None).await;
            return "ignored";
        };
        match text.trim() {
            "/reset" => {
                let conversation = chat.to_string();
                let handler = &self.config.handler;
                let forgotten = async {
                    history::forget(self.host.db(), handler, &conversation).await?;
                    self.host.claude().forget(handler, &conversation).await
                };
                let reply = match forgotten.await {
                    Ok(()) => "History cleared: I start afresh.",
                    Err(e) => {
                        tracing::error!(chat, "failed to clear history: {e:#}");
                        "Sorry, I could not clear the history."
                    }
                };
                self.send(chat, reply, None).await;
                "reset"
            }
            "/status" => {
                let status = self.status().await;
                self.send(chat, &status, None).await;
                "status"
            }
            "/cost" => {
                let cost = self.cost().await;
                self.send(chat, &cost, None).await;
                "cost"
            }
            _ => {
                let message = Message {
                    chat_id: chat,
                    sender_id: i64::try_from(sender).unwrap_or(i64::MAX),
                    sender_name: update.sender_name,
                    text,
                    sent_at: update.sent_at,
                    config: self
                        .host
                        .registry()
                        .get(self.config.handler.as_str())
                        .map(|p| p.config.values.clone())
                        .unwrap_or_default(),
                };
                let typing = self.start_typing(chat);
                let report = self.host.chat(self.config.handler.as_str(), &message, warm).await;
                typing.abort();
                match report.map(|r| r.result) {
                    Ok(Ok(Some(reply))) => {
                        let reply = StoredReply {
                            text: reply.text,
                            parse_mode: reply.parse_mode,
                        };
                        if let Err(e) =
                            updates::store_reply(self.host.db(), update.update_id, reply.clone()).await
                        {
                            tracing::error!(chat, "failed to store the reply before sending it: {e:#}");
                        }
                        self.deliver(chat, reply).await
                    }
                    Ok(Ok(None)) => "no_reply",
                    Ok(Err(e)) => {
                        tracing::warn!(chat, "chat plugin did not answer: {e}");
                        self.send(chat, &apology(&e), None).await;
                        "plugin_failed"
                    }
                    Err(e) => {
                        tracing::error!(chat, "chat plugin not available: {e:#}");
                        self.send(chat, "Sorry, I am not available right now.", None)
                            .await;
                        "plugin_failed"
                    }
                }
            }
        }
    }

    /// Sends the plugin's `reply` to `chat`; returns what came of it.
    async fn deliver(&self, chat: i64, reply: StoredReply) -> &'static str {
        let mode = reply.parse_mode.map(|m| match m {
            ParseMode::MarkdownV2 => TelegramParseMode::MarkdownV2,
            ParseMode::Html => TelegramParseMode::Html,
        });
        if self.send(chat, &reply.text, mode).await {
            "replied"
        } else {
            "reply_failed"
        }
    }

    /// Sends "typing…" to `chat` every few seconds until the handle is
    /// aborted; a failure is logged and never holds up the reply.
    fn start_typing(&self, chat: i64) -> tokio::task::JoinHandle<()> {
        let bot = self.sender.bot().clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = bot.send_chat_action(ChatId(chat), ChatAction::Typing).await {
                    tracing::debug!(chat, "typing indicator failed: {e}");
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

    /// This month's Claude spend against the budget, and the projection.
    async fn cost(&self) -> String {
        let (now, zone) = (chrono::Utc::now(), crate::schedule::host_zone());
        let since = ledger::month_start(now, zone);
        let budget = self
            .host
            .config()
            .claude
            .as_ref()
            .map(|c| c.budget)
            .unwrap_or_default();
        match report::cost_report(self.host.db(), since, GroupBy::Plugin, now, zone).await {
            Ok(report) => report.with_budget(budget).summary(),
            Err(e) => {
                tracing::error!("failed to read the cost ledger for /cost: {e:#}");
                "Sorry, I could not read the cost ledger.".to_owned()
            }
        }
    }

    async fn status(&self) -> String {
        let uptime = self.started.elapsed().as_secs();
        let mut lines = vec![format!(
            "Mission Control up {}h {:02}m.",
            uptime / 3600,
            (uptime % 3600) / 60
        )];
        if let Some(plugin) = self.host.registry().get(self.config.handler.as_str()) {
            lines.push(format!(
                "Chat plugin `{}`: version {} loaded {}.",
                plugin.name(),
                plugin.hash.short(),
                plugin.loaded_at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        let live = self.host.claude().live_processes().await.len();
        if live > 0 {
            lines.push(format!("Claude: {live} persistent session process(es) running."));
        }
        match runs::recent(self.host.db(), None, 5).await {
            Ok(recent) if !recent.is_empty() => {
                lines.push("Last runs:".to_owned());
                for run in recent {
                    lines.push(format!(
                        "- {} ({}): {} at {}",
                        run.schedule.as_deref().unwrap_or("manual"),
                        run.plugin,
                        run.outcome,
                        run.started_at.format("%Y-%m-%d %H:%M UTC")
                    ));
                }
            }
            Ok(_) => lines.push("No runs yet.".to_owned()),
            Err(e) => tracing::error!("failed to read runs for /status: {e:#}"),
        }
        lines.join("\n")
    }
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
    }
}
