//! The Telegram trigger: the [`bot`] that hands allowed messages to the
//! chat plugin, with its durable queue of [`updates`], the [`commands`] the
//! host answers itself, the record of each handler call ([`chat_calls`])
//! and the [`prompter`] that asks about Claude's tool use, all reaching the
//! host through an [`Invoker`](crate::triggers::Invoker).

pub mod bot;
pub mod chat_calls;
pub mod commands;
pub mod files;
mod preview;
pub mod prompter;
pub mod status;
mod transcribe;
pub mod updates;

use crate::config::Config;
use crate::triggers::{Invoker, Stopped, Trigger};
use bot::TelegramBot;

/// The bot, if `[telegram]` is configured and its token is in the
/// environment; a missing token is logged and the rest runs.
pub fn trigger(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    let config = invoker.config().telegram.clone()?;
    let Some(sender) = invoker.telegram() else {
        tracing::error!(
            "telegram.token_env: the environment variable `{}` is not set: the bot does not start",
            config.token_env
        );
        return None;
    };
    Some(Box::new(TelegramBot::new(invoker.clone(), config, sender)))
}

#[async_trait::async_trait]
impl Trigger for TelegramBot {
    fn name(&self) -> &'static str {
        "telegram"
    }

    async fn run(self: Box<Self>, stopped: Stopped) {
        TelegramBot::run(*self, stopped).await;
    }
}

/// `[telegram]` is read once, at start: the bot keeps the token, the
/// allowlist and its handler.
pub fn keep_restart_settings(old: &Config, new: &mut Config) -> Option<String> {
    if new.telegram == old.telegram {
        return None;
    }
    new.telegram = old.telegram.clone();
    Some("[telegram] changed: restart to apply".to_owned())
}
