//! [`ChatHost`]: all the bot and its commands need of the host, so that
//! neither knows the host itself (`serve` implements it for `Host`).

use std::sync::Arc;

use crate::claude::Claude;
use crate::config::PluginName;
use crate::db::Database;
use crate::plugin::call::{AnswerRecord, CallReport, Message, Reply, WarmInstance};
use crate::plugin::Plugin;

/// What the bot needs of the host.
#[async_trait::async_trait]
pub trait ChatHost: Send + Sync + 'static {
    /// The database, where updates are queued.
    fn db(&self) -> &Database;
    /// The way to Claude, for `/status` and `/cost`.
    fn claude(&self) -> &Claude;
    /// The plugin `name` as it serves now.
    fn plugin(&self, name: &str) -> Option<Arc<Plugin>>;
    /// Hands `message` to the chat plugin `name`; once it has answered,
    /// `record` is committed with the exchange's history in one transaction.
    async fn chat(
        &self,
        name: &str,
        message: &Message,
        warm: Option<&mut Option<WarmInstance>>,
        record: Option<AnswerRecord>,
    ) -> anyhow::Result<CallReport<Option<Reply>>>;
    /// Hands `message` to the chat plugin `name` as a shadow handler.
    async fn shadow_chat(&self, name: &str, message: &Message) -> anyhow::Result<CallReport<Option<Reply>>>;
    /// Forgets `plugin`'s `conversation` (history and Claude session).
    async fn forget(&self, plugin: &PluginName, conversation: &str) -> anyhow::Result<()>;
}
