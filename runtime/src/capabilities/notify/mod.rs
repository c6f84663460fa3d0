//! `mission:plugin/notify`: sending Telegram messages from any plugin, e.g.
//! a lead alert from a scheduled task. Needs the `notify` grant, and only
//! reaches the chats listed in `[plugins.NAME.notify] chats`. A shadow
//! handler's call sends nothing: its words never reach a chat. The Bot API
//! client it sends with, [`telegram`], is the Telegram trigger's too.

pub(crate) mod split;
pub mod telegram;
pub mod telegram_html;

use super::Capabilities;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::notify::Host;
use crate::wasm::bindings::CapabilityError;

/// The longest text one `send` takes (it is split into Telegram messages).
const MAX_TEXT_BYTES: usize = 32 << 10;

impl Host for Capabilities {
    async fn send(&mut self, chat_id: i64, text: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::Notify) {
            return Ok(Err(denied));
        }
        if self.context.shadow {
            tracing::debug!(plugin = %self.config.name, chat_id, "notify denied: a shadow handler's call");
            return Ok(Err(CapabilityError::Denied(
                "a shadow handler sends no messages".into(),
            )));
        }
        if !self.config.notify_chats.contains(&chat_id) {
            self.output.caused(
                tracing::Level::WARN,
                "denied notify calls",
                format_args!("notify denied: chat {chat_id} not listed"),
            );
            return Ok(Err(CapabilityError::Denied(format!(
                "chat {chat_id} is not in plugins.{}.notify.chats",
                self.config.name
            ))));
        }
        let Some(telegram) = &self.services.telegram else {
            return Ok(Err(CapabilityError::Unavailable(
                "no Telegram bot: [telegram] is not configured or its token variable is not set".into(),
            )));
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
