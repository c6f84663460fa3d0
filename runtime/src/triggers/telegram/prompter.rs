//! Approval prompts in the chat: the tool, what it would do, and the
//! buttons **Allow once**, **Allow for this conversation** and **Deny**;
//! settled by editing the prompt to show the decision (the buttons go).

use std::sync::Arc;

use crate::approvals::{Choice, Prompt, Prompter};
use crate::config::units::HumanDuration;

use crate::capabilities::notify::telegram::TelegramSender;

/// Posts and settles approval prompts through the bot's client.
pub struct TelegramPrompter {
    sender: Arc<TelegramSender>,
}

impl TelegramPrompter {
    /// A prompter sending through `sender`.
    pub fn new(sender: Arc<TelegramSender>) -> TelegramPrompter {
        TelegramPrompter { sender }
    }
}

/// The prompt's text.
pub fn prompt_text(prompt: &Prompt) -> String {
    format!(
        "🔐 Claude ({}) wants to use {}:\n{}\n\nAllow it? No answer within {} is a deny.",
        prompt.plugin,
        prompt.tool,
        prompt.summary,
        HumanDuration(prompt.wait)
    )
}

#[async_trait::async_trait]
impl Prompter for TelegramPrompter {
    async fn post(&self, chat: i64, prompt: &Prompt) -> anyhow::Result<i32> {
        let mut allow = vec![("Allow once", Choice::Once.callback_data(prompt.id))];
        if prompt.conversation {
            allow.push((
                "Allow for this conversation",
                Choice::Conversation.callback_data(prompt.id),
            ));
        }
        let buttons = [allow, vec![("Deny", Choice::Deny.callback_data(prompt.id))]];
        Ok(self
            .sender
            .send_with_buttons(chat, &prompt_text(prompt), &buttons)
            .await?)
    }

    async fn settle(&self, chat: i64, message: i32, text: &str) {
        if let Err(e) = self.sender.edit(chat, message, text).await {
            tracing::warn!(chat, message, "could not edit the approval prompt: {e}");
        }
    }

    async fn tell(&self, chat: i64, text: &str) {
        // Failures are logged by the client.
        let _ = self.sender.send(chat, text, None).await;
    }
}
