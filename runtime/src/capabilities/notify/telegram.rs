//! Sending text through the Bot API, for the bot's replies and for the
//! `notify` capability alike: split to Telegram's limit, 429 retried after
//! its `retry_after`, network and server errors retried with backoff, a
//! refused parse mode resent as plain text.

use std::time::Duration;

use anyhow::Context;
use teloxide::payloads::{AnswerCallbackQuerySetters, EditMessageTextSetters, SendMessageSetters};
use teloxide::requests::{JsonRequest, Payload, Request, Requester};
use teloxide::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
    True,
};
use teloxide::{ApiError, Bot, RequestError};

use super::split::{split, MAX_MESSAGE};
use super::telegram_html;
use crate::alerts::outbox::Courier;
use crate::capabilities::reply_files::OutgoingFile;
use crate::config::TelegramConfig;

/// How many times sending one piece of a message is tried.
const SEND_ATTEMPTS: u32 = 8;
/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The host's Bot API client.
pub struct TelegramSender {
    bot: Bot,
}

impl TelegramSender {
    /// A client for `config`'s API, authenticating with `token`.
    pub fn new(config: &TelegramConfig, token: String) -> anyhow::Result<TelegramSender> {
        let url = url::Url::parse(&config.api_url)
            .with_context(|| format!("telegram.api_url: `{}` is not a URL", config.api_url))?;
        Ok(TelegramSender {
            bot: Bot::new(token).set_api_url(url),
        })
    }

    /// The teloxide client, for other requests.
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// Sends `text` to `chat` (in pieces if long), with `mode` if Telegram
    /// accepts it; the error is the one that made it give up.
    pub async fn send(&self, chat: i64, text: &str, mut mode: Option<ParseMode>) -> Result<(), RequestError> {
        for piece in split(text, MAX_MESSAGE) {
            loop {
                let sent = retrying(chat, || {
                    let request = self.bot.send_message(ChatId(chat), piece.clone());
                    match mode {
                        Some(mode) => request.parse_mode(mode),
                        None => request,
                    }
                })
                .await;
                match sent {
                    Ok(_) => break,
                    Err(RequestError::Api(ref api))
                        if mode.is_some() && !matches!(api, ApiError::Unknown(_)) =>
                    {
                        tracing::warn!(
                            chat,
                            "Telegram refused the formatted text ({api}): sending it as plain text"
                        );
                        mode = None;
                    }
                    Err(e) => {
                        tracing::error!(chat, "message not delivered: {e}");
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends `markdown` to `chat` as Telegram HTML, in pieces if long; a
    /// piece whose entities Telegram refuses goes again as its plain text.
    pub async fn send_markdown(&self, chat: i64, markdown: &str) -> Result<(), RequestError> {
        let html = telegram_html::render(markdown);
        for piece in telegram_html::split(&html, MAX_MESSAGE) {
            let sent = retrying(chat, || {
                self.bot
                    .send_message(ChatId(chat), piece.clone())
                    .parse_mode(ParseMode::Html)
            })
            .await;
            match sent {
                Ok(_) => {}
                Err(RequestError::Api(ref api)) if !matches!(api, ApiError::Unknown(_)) => {
                    tracing::warn!(
                        chat,
                        "Telegram refused the formatted text ({api}): sending it as plain text"
                    );
                    let plain = telegram_html::plain(&piece);
                    retrying(chat, || self.bot.send_message(ChatId(chat), plain.clone())).await?;
                }
                Err(e) => {
                    tracing::error!(chat, "message not delivered: {e}");
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Sends `text` to `chat` with rows of inline buttons, each a label and
    /// its callback data; returns the message's id.
    pub async fn send_with_buttons(
        &self,
        chat: i64,
        text: &str,
        buttons: &[Vec<(&str, String)>],
    ) -> Result<i32, RequestError> {
        let keyboard = InlineKeyboardMarkup::new(buttons.iter().map(|row| {
            row.iter()
                .map(|(label, data)| InlineKeyboardButton::callback(*label, data.clone()))
                .collect::<Vec<_>>()
        }));
        let text: String = text.chars().take(MAX_MESSAGE).collect();
        retrying(chat, || {
            self.bot
                .send_message(ChatId(chat), text.clone())
                .reply_markup(keyboard.clone())
        })
        .await
        .map(|message| message.id.0)
    }

    /// Posts `text` (Telegram HTML if `html`) to `chat` with rows of
    /// buttons, each a label and its callback data; a text whose entities
    /// Telegram refuses goes again as its plain text. Returns the message's
    /// id.
    pub async fn post(
        &self,
        chat: i64,
        text: &str,
        html: bool,
        buttons: &[Vec<(String, String)>],
    ) -> Result<i32, RequestError> {
        let keyboard = keyboard(buttons);
        let text: String = text.chars().take(MAX_MESSAGE).collect();
        let sent = retrying(chat, || {
            let request = self
                .bot
                .send_message(ChatId(chat), text.clone())
                .reply_markup(keyboard.clone());
            match html {
                true => request.parse_mode(ParseMode::Html),
                false => request,
            }
        })
        .await;
        match sent {
            Err(RequestError::Api(ref api)) if html && !matches!(api, ApiError::Unknown(_)) => {
                tracing::warn!(
                    chat,
                    "Telegram refused the formatted text ({api}): posting it as plain text"
                );
                Box::pin(self.post(chat, &telegram_html::plain(&text), false, buttons)).await
            }
            sent => sent.map(|message| message.id.0),
        }
    }

    /// Replaces the text (Telegram HTML if `html`) and the buttons of
    /// `message` in `chat`.
    pub async fn edit_post(
        &self,
        chat: i64,
        message: i32,
        text: &str,
        html: bool,
        buttons: &[Vec<(String, String)>],
    ) -> Result<(), RequestError> {
        let keyboard = keyboard(buttons);
        let text: String = text.chars().take(MAX_MESSAGE).collect();
        retrying(chat, || {
            let request = self
                .bot
                .edit_message_text(ChatId(chat), MessageId(message), text.clone())
                .reply_markup(keyboard.clone());
            match html {
                true => request.parse_mode(ParseMode::Html),
                false => request,
            }
        })
        .await
        .map(drop)
    }

    /// Replaces the text of `message` in `chat` (its buttons go).
    pub async fn edit(&self, chat: i64, message: i32, text: &str) -> Result<(), RequestError> {
        let text: String = text.chars().take(MAX_MESSAGE).collect();
        retrying(chat, || {
            self.bot
                .edit_message_text(ChatId(chat), MessageId(message), text.clone())
        })
        .await
        .map(drop)
    }

    /// Shows `text` as the draft `draft_id` in the private `chat`, once
    /// (`sendMessageDraft`, which teloxide has no request for): a preview
    /// that vanishes unless a message follows.
    pub async fn show_draft(
        &self,
        chat: i64,
        draft_id: i64,
        text: &str,
        mode: Option<ParseMode>,
    ) -> Result<(), RequestError> {
        let payload = SendMessageDraft {
            chat_id: chat,
            draft_id,
            text: text.to_owned(),
            parse_mode: mode,
        };
        JsonRequest::new(self.bot.clone(), payload).send().await.map(drop)
    }

    /// Sends `text` (at most one message's worth) to `chat`, once; returns
    /// the message's id.
    pub async fn post_once(
        &self,
        chat: i64,
        text: &str,
        mode: Option<ParseMode>,
    ) -> Result<i32, RequestError> {
        let request = self.bot.send_message(ChatId(chat), text);
        let request = match mode {
            Some(mode) => request.parse_mode(mode),
            None => request,
        };
        request.send().await.map(|message| message.id.0)
    }

    /// Replaces the text of `message` in `chat`, once.
    pub async fn edit_once(
        &self,
        chat: i64,
        message: i32,
        text: &str,
        mode: Option<ParseMode>,
    ) -> Result<(), RequestError> {
        let request = self.bot.edit_message_text(ChatId(chat), MessageId(message), text);
        let request = match mode {
            Some(mode) => request.parse_mode(mode),
            None => request,
        };
        request.send().await.map(drop)
    }

    /// Deletes `message` in `chat`.
    pub async fn delete(&self, chat: i64, message: i32) -> Result<(), RequestError> {
        retrying(chat, || self.bot.delete_message(ChatId(chat), MessageId(message)))
            .await
            .map(drop)
    }

    /// Uploads `file` to `chat`: a photo, or else a document.
    pub async fn send_file(&self, chat: i64, file: &OutgoingFile) -> Result<(), RequestError> {
        let input = || InputFile::file(file.path.clone()).file_name(file.name.clone());
        let sent = match file.is_photo() {
            true => retrying(chat, || self.bot.send_photo(ChatId(chat), input())).await,
            false => retrying(chat, || self.bot.send_document(ChatId(chat), input())).await,
        };
        if let Err(e) = &sent {
            tracing::error!(chat, file = %file.name, "file not delivered: {e}");
        }
        sent.map(drop)
    }

    /// Answers a button press with a short notice (`alert`: one the user
    /// must dismiss).
    pub async fn answer_press(&self, callback_id: &str, text: &str, alert: bool) -> Result<(), RequestError> {
        let id = CallbackQueryId(callback_id.to_owned());
        retrying(0, || {
            self.bot
                .answer_callback_query(id.clone())
                .text(text)
                .show_alert(alert)
        })
        .await
        .map(drop)
    }
}

/// The Bot API's `sendMessageDraft`.
#[derive(serde::Serialize)]
struct SendMessageDraft {
    chat_id: i64,
    draft_id: i64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_mode: Option<ParseMode>,
}

impl Payload for SendMessageDraft {
    type Output = True;
    const NAME: &'static str = "sendMessageDraft";
}

#[async_trait::async_trait]
impl Courier for TelegramSender {
    async fn send(&self, chat: i64, text: &str, buttons: &[Vec<(&str, String)>]) -> anyhow::Result<()> {
        match buttons.is_empty() {
            true => TelegramSender::send(self, chat, text, None).await?,
            false => drop(self.send_with_buttons(chat, text, buttons).await?),
        }
        Ok(())
    }
}

/// Sends the request `make` builds until it succeeds, waiting as Telegram
/// asks (429, however often) or with backoff (network and server errors,
/// up to [`SEND_ATTEMPTS`] tries); other errors give up at once.
async fn retrying<R>(chat: i64, make: impl Fn() -> R) -> Result<teloxide::requests::Output<R>, RequestError>
where
    R: teloxide::requests::Request<Err = RequestError>,
{
    let mut backoff = Duration::from_millis(500);
    for attempt in 1.. {
        match make().send().await {
            Ok(output) => return Ok(output),
            Err(RequestError::RetryAfter(wait)) => tokio::time::sleep(wait.duration()).await,
            Err(ref e) if attempt < SEND_ATTEMPTS && retryable(e) => {
                tracing::warn!(chat, attempt, "Telegram request failed, retrying: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// Whether a failed request may succeed if tried again.
pub(crate) fn retryable(error: &RequestError) -> bool {
    matches!(
        error,
        RequestError::Network(_)
            | RequestError::Io(_)
            | RequestError::InvalidJson { .. }
            | RequestError::Api(ApiError::Unknown(_))
    )
}

/// Rows of `(label, callback data)` as an inline keyboard.
fn keyboard(buttons: &[Vec<(String, String)>]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(buttons.iter().map(|row| {
        row.iter()
            .map(|(label, data)| InlineKeyboardButton::callback(label.clone(), data.clone()))
            .collect::<Vec<_>>()
    }))
}
