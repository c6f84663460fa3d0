//! One live message: the allowlist and the host's commands, the plugin's
//! answer committed with its history, the reply sent with a typing
//! indicator meanwhile, and the call measured.

use std::sync::Arc;
use std::time::Duration;

use teloxide::requests::Requester;
use teloxide::types::{ChatAction, ChatId, ParseMode as TelegramParseMode};

use super::TelegramBot;
use crate::capabilities::attachments::Attachment;
use crate::capabilities::claude::draft::Draft;
use crate::capabilities::reply_files::{self, ReplyFiles};
use crate::capabilities::MessageIo;
use crate::plugin::call::{AnswerRecord, CallError, HandlerRole, Message, ParseMode, WarmInstance};
use crate::triggers::telegram::chat_calls::{self, ChatCall};
use crate::triggers::telegram::commands::Command;
use crate::triggers::telegram::preview::{Preview, Target};
use crate::triggers::telegram::updates::{self, StoredReply, StoredUpdate, UpdateOutcome};
use crate::triggers::telegram::{files, transcribe};

/// How often the typing indicator is re-sent (Telegram shows it ≤ 5 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// How long the plugin may work before "typing…" is shown: a quicker reply
/// needs none, and saves a Bot API call.
const TYPING_AFTER: Duration = Duration::from_millis(250);

/// What came of one update, for the record, and the files the handler was
/// given (the shadow handlers get them too).
pub(super) struct Handled {
    pub outcome: UpdateOutcome,
    pub attachments: Arc<Vec<Attachment>>,
}

impl From<UpdateOutcome> for Handled {
    fn from(outcome: UpdateOutcome) -> Handled {
        Handled {
            outcome,
            attachments: Arc::default(),
        }
    }
}

impl TelegramBot {
    /// Handles one update.
    pub(super) async fn handle(
        &self,
        update: StoredUpdate,
        warm: Option<&mut Option<WarmInstance>>,
    ) -> Handled {
        let (Some(chat), Some(sender)) = (update.chat_id, update.sender_id) else {
            return UpdateOutcome::Ignored.into();
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
            return UpdateOutcome::Refused.into();
        }
        if let Some(preview) = update.preview_message {
            // A preview a crash left behind: the answer replaces it.
            self.remove_preview(chat, update.update_id, preview).await;
        }
        if let Some(reply) = update.reply {
            tracing::info!(
                chat,
                update = update.update_id,
                "sending the reply given before a restart"
            );
            return self.deliver(chat, reply).await.into();
        }
        let Some(mut message) = chat_message(&update) else {
            self.send(
                chat,
                "I can read text, photos, documents, voice notes, audio and video, but not this kind of message.",
                None,
            )
            .await;
            return UpdateOutcome::Ignored.into();
        };
        if let Some(command) = Command::parse(&message.text) {
            let outcome = command.outcome();
            let reply = self.command(command, chat).await;
            self.send(chat, &reply, None).await;
            return outcome.into();
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
        let data_dir = &self.host.config().data_dir;
        let reply_files = ReplyFiles::new(data_dir.join("outbox").join(update_id.to_string()));
        let attached = reply_files.clone();
        let record: AnswerRecord =
            Box::new(
                move |transaction, reply| match StoredReply::of(reply, attached.files()) {
                    Some(reply) => updates::store_reply(transaction, update_id, &reply),
                    None => updates::mark_handled_in(transaction, update_id, UpdateOutcome::NoReply, shadows),
                },
            );
        let typing = self.start_typing(chat);
        let handler = self.config.handler.as_str();
        let dir = data_dir.join("attachments");
        let (mut attachments, mut refusals) =
            files::download(&self.sender, &dir, update_id, &update.files).await;
        if let Some(transcriber) = &self.config.transcribe {
            refusals.extend(transcribe::all(transcriber, self.host.db(), &mut attachments).await);
        }
        for refusal in &refusals {
            self.send(chat, refusal, None).await;
        }
        if message.text.trim().is_empty() && attachments.is_empty() {
            return UpdateOutcome::Ignored.into();
        }
        let (draft, view) = Draft::new();
        let preview = self.config.stream_every.map(|every| {
            let target = Target {
                chat,
                update_id,
                every,
                markdown: self.config.markdown,
            };
            Preview::start(self.sender.clone(), self.host.db().clone(), target, view)
        });
        let attachments = Arc::new(attachments);
        let io = MessageIo {
            attachments: attachments.clone(),
            draft: preview.is_some().then_some(draft),
            reply_files: Some(reply_files.clone()),
        };
        let report = self.host.chat(handler, &message, io, warm, Some(record)).await;
        typing.abort();
        if let Some(preview) = preview {
            if let Some(placeholder) = preview.finish().await {
                self.remove_preview(chat, update_id, placeholder).await;
            }
        }
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
        let files = reply_files.files();
        let outcome = match report.map(|r| r.result) {
            Ok(Ok(reply)) => match StoredReply::of(reply.as_ref(), files) {
                Some(reply) => self.deliver(chat, reply).await,
                None => UpdateOutcome::NoReply,
            },
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
        crate::metrics::get().chat_message(handler, outcome == UpdateOutcome::Replied);
        if !matches!(outcome, UpdateOutcome::Replied | UpdateOutcome::ReplyFailed) {
            // Files of a call that failed are never sent.
            reply_files::discard(&reply_files.files());
        }
        Handled { outcome, attachments }
    }

    /// Deletes the message that showed Claude's text for update
    /// `update_id` in `chat`, and forgets it.
    async fn remove_preview(&self, chat: i64, update_id: i64, message: i32) {
        if let Err(e) = self.sender.delete(chat, message).await {
            tracing::warn!(chat, message, "removing the preview message failed: {e}");
        }
        if let Err(e) = updates::set_preview(self.host.db(), update_id, None).await {
            tracing::error!(update = update_id, "forgetting the preview message failed: {e:#}");
        }
    }

    /// Sends the plugin's `reply` to `chat`, its text and then its files
    /// (removed once sent); returns what came of it.
    pub(super) async fn deliver(&self, chat: i64, reply: StoredReply) -> UpdateOutcome {
        let mode = reply.parse_mode.map(|m| match m {
            ParseMode::MarkdownV2 => TelegramParseMode::MarkdownV2,
            ParseMode::Html => TelegramParseMode::Html,
        });
        let mut sent = match (reply.text.is_empty(), mode, self.config.markdown) {
            (true, _, _) => true,
            (false, None, true) => self.sender.send_markdown(chat, &reply.text).await.is_ok(),
            (false, _, _) => self.send(chat, &reply.text, mode).await,
        };
        for file in &reply.files {
            if let Err(e) = self.sender.send_file(chat, file).await {
                sent = false;
                let notice = format!("I could not send you {}: {e}", file.name);
                self.send(chat, &notice, None).await;
            }
        }
        reply_files::discard(&reply.files);
        if sent {
            UpdateOutcome::Replied
        } else {
            UpdateOutcome::ReplyFailed
        }
    }

    /// Sends "typing…" to `chat` from [`TYPING_AFTER`] on, every few seconds,
    /// until the handle is aborted — but not while a tool-use prompt there
    /// waits for the user; a failure is logged and never holds up the reply.
    pub(super) fn start_typing(&self, chat: i64) -> tokio::task::JoinHandle<()> {
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
    pub(super) async fn send(&self, chat: i64, text: &str, mode: Option<TelegramParseMode>) -> bool {
        self.sender.send(chat, text, mode).await.is_ok()
    }
}

/// The message in `update` for a chat handler, without a handler's config;
/// `None` unless it is a user's message with text or files (whose caption,
/// if any, is its text).
pub(super) fn chat_message(update: &StoredUpdate) -> Option<Message> {
    let text = match (&update.text, update.files.is_empty()) {
        (Some(text), _) => text.clone(),
        (None, false) => String::new(),
        (None, true) => return None,
    };
    Some(Message {
        chat_id: update.chat_id?,
        sender_id: i64::try_from(update.sender_id?).unwrap_or(i64::MAX),
        sender_name: update.sender_name.clone(),
        text,
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
