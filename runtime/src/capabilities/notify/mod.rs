//! `mission:plugin/notify`: sending Telegram messages from any plugin, e.g.
//! a lead alert from a scheduled task. Needs the `notify` grant, and only
//! reaches the chats listed in `[plugins.NAME.notify] chats`. A shadow
//! handler's call sends nothing: its words never reach a chat. The Bot API
//! client it sends with, [`telegram`], is the Telegram trigger's too.
//! `post` adds buttons: the plugin's data stays in [`posts`], and a press
//! starts a run of the plugin (`triggers::presses`).

pub mod posts;
pub(crate) mod split;
pub mod telegram;
pub mod telegram_html;

use std::sync::Arc;

use super::Capabilities;
use crate::alerts::buttons::{ButtonData, ButtonKind};
use crate::config::{Grant, World};
use crate::wasm::bindings::task::mission::plugin::notify::{Button, Host, Message, TextFormat};
use crate::wasm::bindings::CapabilityError;
use posts::{PostButton, PostText};
use telegram::TelegramSender;

/// The longest text one `send` takes (it is split into Telegram messages).
const MAX_TEXT_BYTES: usize = 32 << 10;

/// The longest text one `post` or `edit` takes: one Telegram message.
const MAX_POST_CHARS: usize = 4096;

/// The most data one button keeps.
const MAX_BUTTON_DATA: usize = 1 << 10;

/// The most buttons under one message (Telegram's own limit is 100).
const MAX_BUTTONS: usize = 100;

impl Capabilities {
    /// The Bot API client, if the plugin may write to `chat_id` now: its
    /// grant, not a shadow's call, the chat listed, a bot configured.
    fn notify_to(&self, chat_id: i64) -> Result<Arc<TelegramSender>, CapabilityError> {
        self.check(Grant::Notify)?;
        if self.context.shadow {
            tracing::debug!(plugin = %self.config.name, chat_id, "notify denied: a shadow handler's call");
            return Err(CapabilityError::Denied(
                "a shadow handler sends no messages".into(),
            ));
        }
        if !self.config.notify_chats.contains(&chat_id) {
            self.output.caused(
                tracing::Level::WARN,
                "denied notify calls",
                format_args!("notify denied: chat {chat_id} not listed"),
            );
            return Err(CapabilityError::Denied(format!(
                "chat {chat_id} is not in plugins.{}.notify.chats",
                self.config.name
            )));
        }
        self.services.telegram.clone().ok_or_else(|| {
            CapabilityError::Unavailable(
                "no Telegram bot: [telegram] is not configured or its token variable is not set".into(),
            )
        })
    }

    /// `message` checked: its text as Telegram takes it (HTML for
    /// Markdown) and its buttons with their places.
    fn post_parts(
        &self,
        call: &str,
        message: Message,
    ) -> Result<(PostText, Vec<PostButton>), CapabilityError> {
        let failed = |why: String| Err(CapabilityError::Failed(format!("{call}: {why}")));
        if message.text.trim().is_empty() || message.text.chars().count() > MAX_POST_CHARS {
            return failed(format!(
                "a message must have 1 to {MAX_POST_CHARS} characters of text"
            ));
        }
        let buttons: Vec<PostButton> = message
            .buttons
            .into_iter()
            .enumerate()
            .flat_map(|(row, buttons)| {
                buttons
                    .into_iter()
                    .enumerate()
                    .map(move |(column, Button { label, data })| PostButton {
                        place: format!("{row}.{column}"),
                        label,
                        data,
                    })
            })
            .collect();
        if buttons.len() > MAX_BUTTONS {
            return failed(format!("at most {MAX_BUTTONS} buttons under one message"));
        }
        if let Some(button) = buttons
            .iter()
            .find(|b| b.label.trim().is_empty() || b.label.chars().count() > 64)
        {
            return failed(format!(
                "a button's label must have 1 to 64 characters, not `{}`",
                button.label
            ));
        }
        if buttons.iter().any(|b| b.data.len() > MAX_BUTTON_DATA) {
            return failed(format!("a button keeps at most {MAX_BUTTON_DATA} bytes of data"));
        }
        if !buttons.is_empty() && self.config.world != World::Task {
            return failed(format!(
                "a press starts a run of the plugin that posted the buttons, and `{}` is a {} plugin; \
                 only a task plugin's message may have buttons",
                self.config.name, self.config.world
            ));
        }
        let text = match message.format {
            TextFormat::Plain => PostText {
                text: message.text,
                html: false,
            },
            TextFormat::Markdown => PostText {
                text: telegram_html::render(&message.text),
                html: true,
            },
        };
        Ok((text, buttons))
    }

    /// The keyboard of post `post`: rows of `(label, callback data)`.
    fn keyboard(post: i64, buttons: &[PostButton]) -> Vec<Vec<(String, String)>> {
        let mut rows: Vec<Vec<(String, String)>> = Vec::new();
        for button in buttons {
            let row: usize = button
                .place
                .split('.')
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            while rows.len() <= row {
                rows.push(Vec::new());
            }
            rows[row].push((
                button.label.clone(),
                ButtonData::encode(ButtonKind::Post, post, &button.place),
            ));
        }
        rows.retain(|row| !row.is_empty());
        rows
    }

    fn expires_at(&self) -> i64 {
        let expiry = i64::try_from(self.config.button_expiry.as_millis()).unwrap_or(i64::MAX);
        chrono::Utc::now().timestamp_millis().saturating_add(expiry)
    }
}

impl Host for Capabilities {
    async fn post(
        &mut self,
        chat_id: i64,
        message: Message,
    ) -> wasmtime::Result<Result<i64, CapabilityError>> {
        let telegram = match self.notify_to(chat_id) {
            Ok(telegram) => telegram,
            Err(e) => return Ok(Err(e)),
        };
        let (text, buttons) = match self.post_parts("notify.post", message) {
            Ok(parts) => parts,
            Err(e) => return Ok(Err(e)),
        };
        let db = self.services.db.clone();
        let plugin = self.config.name.to_string();
        let post = match posts::open(&db, &plugin, chat_id, &text, self.expires_at(), buttons.clone()).await {
            Ok(post) => post,
            Err(e) => return Ok(Err(self.failed("notify.post", e))),
        };
        let keyboard = Self::keyboard(post, &buttons);
        let sent = telegram.post(chat_id, &text.text, text.html, &keyboard).await;
        let message = sent.as_ref().ok().map(|&id| i64::from(id));
        if let Err(e) = posts::sent(&db, post, message).await {
            return Ok(Err(self.failed("notify.post", e)));
        }
        Ok(match sent {
            Ok(id) => {
                self.output.caused(
                    tracing::Level::INFO,
                    "notifications sent",
                    format_args!(
                        "message {id} posted to chat {chat_id} with {} button(s)",
                        buttons.len()
                    ),
                );
                Ok(i64::from(id))
            }
            Err(e) => Err(CapabilityError::Failed(format!(
                "Telegram did not take the message: {e}"
            ))),
        })
    }

    async fn edit(
        &mut self,
        chat_id: i64,
        message_id: i64,
        message: Message,
    ) -> wasmtime::Result<Result<(), CapabilityError>> {
        let telegram = match self.notify_to(chat_id) {
            Ok(telegram) => telegram,
            Err(e) => return Ok(Err(e)),
        };
        let (text, buttons) = match self.post_parts("notify.edit", message) {
            Ok(parts) => parts,
            Err(e) => return Ok(Err(e)),
        };
        let db = self.services.db.clone();
        let plugin = self.config.name.to_string();
        let post = match posts::owned(&db, &plugin, chat_id, message_id).await {
            Ok(Some(post)) => post,
            Ok(None) => {
                return Ok(Err(CapabilityError::Denied(format!(
                    "notify.edit: message {message_id} in chat {chat_id} is not one plugin `{plugin}` posted"
                ))))
            }
            Err(e) => return Ok(Err(self.failed("notify.edit", e))),
        };
        if let Err(e) = posts::edited(&db, post, &text, self.expires_at(), buttons.clone()).await {
            return Ok(Err(self.failed("notify.edit", e)));
        }
        let keyboard = Self::keyboard(post, &buttons);
        let Ok(message) = i32::try_from(message_id) else {
            return Ok(Err(CapabilityError::Failed(format!(
                "notify.edit: no message {message_id}"
            ))));
        };
        Ok(telegram
            .edit_post(chat_id, message, &text.text, text.html, &keyboard)
            .await
            .map_err(|e| CapabilityError::Failed(format!("Telegram did not take the edit: {e}"))))
    }

    async fn send(&mut self, chat_id: i64, text: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        let telegram = match self.notify_to(chat_id) {
            Ok(telegram) => telegram,
            Err(e) => return Ok(Err(e)),
        };
        if text.trim().is_empty() || text.len() > MAX_TEXT_BYTES {
            return Ok(Err(CapabilityError::Failed(format!(
                "a notification must have 1 to {MAX_TEXT_BYTES} bytes of text"
            ))));
        }
        Ok(match telegram.send(chat_id, &text, None).await {
            Ok(()) => {
                self.output.caused(
                    tracing::Level::INFO,
                    "notifications sent",
                    format_args!("notification sent to chat {chat_id}"),
                );
                Ok(())
            }
            Err(e) => Err(CapabilityError::Failed(format!(
                "Telegram did not take the message: {e}"
            ))),
        })
    }
}
