//! The port the desk asks through: where prompts are posted and settled
//! (the Telegram bot implements it).

use std::time::Duration;

/// One prompt as posted in a chat.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The approval's id (its buttons carry it).
    pub id: i64,
    /// The plugin asking.
    pub plugin: String,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// How long it waits for a press.
    pub wait: Duration,
    /// Whether "Allow for this conversation" is offered (not for a change
    /// the host's own tools make: each is pressed for).
    pub conversation: bool,
}

/// Where prompts are posted and settled: the Telegram bot.
#[async_trait::async_trait]
pub trait Prompter: Send + Sync + 'static {
    /// Posts `prompt` with its buttons in `chat`; returns the message id.
    async fn post(&self, chat: i64, prompt: &Prompt) -> anyhow::Result<i32>;
    /// Replaces the prompt `message` in `chat` with `text`, buttons gone.
    async fn settle(&self, chat: i64, message: i32, text: &str);
    /// Sends `text` to `chat` as a new message.
    async fn tell(&self, chat: i64, text: &str);
}
