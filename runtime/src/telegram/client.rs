//! Sending text through the Bot API, for the bot's replies and for the
//! `notify` capability alike: split to Telegram's limit, 429 retried after
//! its `retry_after`, network and server errors retried with backoff, a
//! refused parse mode resent as plain text.

use std::time::Duration;

use anyhow::Context;
use teloxide::payloads::SendMessageSetters;
use teloxide::requests::Requester;
use teloxide::types::{ChatId, ParseMode};
use teloxide::{ApiError, Bot, RequestError};

use super::split::{split, MAX_MESSAGE};
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
            let mut backoff = Duration::from_millis(500);
            let mut attempt = 1;
            loop {
                let mut request = self.bot.send_message(ChatId(chat), piece.clone());
                if let Some(mode) = mode {
                    request = request.parse_mode(mode);
                }
                let error = match request.await {
                    Ok(_) => break,
                    Err(error) => error,
                };
                match error {
                    RequestError::RetryAfter(wait) => tokio::time::sleep(wait.duration()).await,
                    RequestError::Api(ref api) if mode.is_some() && !matches!(api, ApiError::Unknown(_)) => {
                        tracing::warn!(
                            chat,
                            "Telegram refused the formatted text ({api}): sending it as plain text"
                        );
                        mode = None;
                    }
                    ref e if attempt < SEND_ATTEMPTS && retryable(e) => {
                        tracing::warn!(chat, attempt, "sending failed, retrying: {e}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                    e => {
                        tracing::error!(chat, attempt, "message not delivered: {e}");
                        return Err(e);
                    }
                }
                attempt += 1;
            }
        }
        Ok(())
    }
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
