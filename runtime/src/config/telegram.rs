//! `[telegram]`: the bot's token variable, API, allowlist and handler.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use super::units::HumanDuration;
use super::{PluginConfig, PluginName, World};

/// The Telegram bot: `[telegram]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelegramConfig {
    /// The environment variable holding the bot token.
    pub token_env: String,
    /// The Bot API's base URL.
    pub api_url: String,
    /// Telegram user ids whose messages reach the handler.
    pub allowed_users: BTreeSet<u64>,
    /// The chat plugin that answers.
    pub handler: PluginName,
    /// What a user not on the allowlist is told; none says nothing.
    pub stranger_reply: Option<String>,
    /// How long one `getUpdates` long poll waits.
    pub poll_timeout: Duration,
    /// A fresh instance per message, or one kept per chat.
    pub instance: InstanceMode,
    /// How long a kept instance may sit idle before it is dropped.
    pub warm_idle: Duration,
}

/// How the chat plugin is instantiated for each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A fresh instance for every message (the default).
    #[default]
    Fresh,
    /// One instance per chat, kept between messages; dropped when idle, on
    /// reload and after a trap. History and state live in the host either
    /// way, so both modes answer the same.
    Warm,
}

/// `[telegram]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelegram {
    /// Example: `token_env = "TELEGRAM_BOT_TOKEN"`; the token itself never
    /// goes in the file.
    token_env: String,
    /// Example: `api_url = "http://127.0.0.1:8081"` (default Telegram's)
    api_url: Option<String>,
    /// Example: `allowed_users = [408258968]`
    allowed_users: Vec<u64>,
    /// Example: `handler = "echo"`
    handler: String,
    /// Example: `stranger_reply = "This is a private bot."`
    stranger_reply: Option<String>,
    /// Example: `poll_timeout = "10s"` (the default; teloxide gives up after 17s)
    poll_timeout: Option<HumanDuration>,
    /// Example: `instance = "warm"` (default `"fresh"`)
    #[serde(default)]
    instance: InstanceMode,
    /// Example: `warm_idle = "15m"` (the default)
    warm_idle: Option<HumanDuration>,
}

impl RawTelegram {
    /// `[telegram]` validated: its handler must be one of `plugins`, of the
    /// chat world.
    pub(super) fn validate(self, plugins: &[PluginConfig]) -> Result<TelegramConfig, String> {
        let handler = plugins
            .iter()
            .find(|p| p.name.as_str() == self.handler)
            .ok_or_else(|| format!("telegram.handler: no plugin named `{}`", self.handler))?;
        if handler.world != World::Chat {
            return Err(format!(
                "telegram.handler: `{}` is a {} plugin; the bot needs a chat plugin",
                handler.name, handler.world
            ));
        }
        Ok(TelegramConfig {
            token_env: self.token_env,
            api_url: self
                .api_url
                .unwrap_or_else(|| "https://api.telegram.org".to_owned()),
            allowed_users: self.allowed_users.into_iter().collect(),
            handler: handler.name.clone(),
            stranger_reply: self.stranger_reply,
            poll_timeout: self.poll_timeout.map_or(Duration::from_secs(10), |t| t.0),
            instance: self.instance,
            warm_idle: self.warm_idle.map_or(Duration::from_secs(15 * 60), |t| t.0),
        })
    }
}
