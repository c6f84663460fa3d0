//! [`Invoker`]: the narrow handle a trigger gets on the host — run a task
//! plugin under its limits and record the run, hand a message to a chat
//! plugin, and read what those need — never the host itself.

use std::sync::Arc;

use crate::capabilities::attachments::Attachment;
use crate::capabilities::claude::Claude;
use crate::capabilities::notify::telegram::TelegramSender;
use crate::capabilities::MessageIo;
use crate::config::{Config, PluginName};
use crate::db::Database;
use crate::host::runs::RunRecord;
use crate::host::{Host, TaskRun};
use crate::plugin::call::{AnswerRecord, CallReport, Message, Reply, WarmInstance};
use crate::plugin::Plugin;

/// What a trigger may ask of the host. Cheap to clone.
#[derive(Clone)]
pub struct Invoker {
    host: Arc<Host>,
}

impl Invoker {
    /// A handle on `host`.
    pub fn new(host: Arc<Host>) -> Invoker {
        Invoker { host }
    }

    /// The database, where triggers keep their own records.
    pub fn db(&self) -> &Database {
        self.host.db()
    }

    /// The configuration of the moment (hot reload replaces it).
    pub fn config(&self) -> Arc<Config> {
        self.host.config()
    }

    /// The way to Claude: its tool-use desk, spend and processes.
    pub fn claude(&self) -> &Claude {
        self.host.claude()
    }

    /// The Telegram client, if `[telegram]` is set and its token is in the
    /// environment.
    pub fn telegram(&self) -> Option<Arc<TelegramSender>> {
        self.host.services().telegram.clone()
    }

    /// Told when `later` adds a wake-up.
    pub fn wakeups_added(&self) -> Arc<tokio::sync::Notify> {
        self.host.services().wakeups.clone()
    }

    /// Told when the bot stores a press on a plugin's button.
    pub fn presses_stored(&self) -> Arc<tokio::sync::Notify> {
        self.host.services().presses.clone()
    }

    /// The plugin `name` as it serves now.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.host.registry().get(name)
    }

    /// Returns once the host's plugins are loaded: a trigger that takes
    /// requests in while they load (the webhook listener) waits here before
    /// it reads a plugin or runs one.
    pub async fn loaded(&self) {
        self.host.loaded().await;
    }

    /// Runs a task plugin once, under its limits, and records the run
    /// (once the plugins are loaded, if the host is loading them).
    pub async fn run(&self, run: TaskRun<'_>) -> anyhow::Result<RunRecord> {
        self.host.loaded().await;
        self.host.run(run).await
    }

    /// Hands `message` to the chat plugin `name`; once it has answered,
    /// `record` is committed with the exchange's history in one transaction.
    pub async fn chat(
        &self,
        name: &str,
        message: &Message,
        io: MessageIo,
        warm: Option<&mut Option<WarmInstance>>,
        record: Option<AnswerRecord>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        self.host.chat(name, message, io, warm, record).await
    }

    /// Hands `message` and its `attachments` to the chat plugin `name` as
    /// a shadow handler.
    pub async fn shadow_chat(
        &self,
        name: &str,
        message: &Message,
        attachments: Arc<Vec<Attachment>>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        self.host.shadow_chat(name, message, attachments).await
    }

    /// Forgets `plugin`'s `conversation` (history and Claude session).
    pub async fn forget(&self, plugin: &PluginName, conversation: &str) -> anyhow::Result<()> {
        self.host.forget(plugin, conversation).await
    }
}
