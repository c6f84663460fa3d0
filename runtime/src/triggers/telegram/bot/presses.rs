//! A button press under a tool-approval prompt: only an allowed user, in
//! the prompt's chat, decides; the press is answered either way.

use super::TelegramBot;
use crate::capabilities::claude::approvals::{Choice, Press};
use crate::triggers::telegram::updates::{ButtonPress, StoredUpdate, UpdateOutcome};

impl TelegramBot {
    /// Handles a button press: only an allowlisted user may decide, and only
    /// in the chat the prompt was posted in; the press is answered either way.
    pub(super) async fn press(&self, update: &StoredUpdate, press: &ButtonPress) -> UpdateOutcome {
        let (chat, sender) = (
            update.chat_id.unwrap_or_default(),
            update.sender_id.unwrap_or_default(),
        );
        let answer = |text: String, alert: bool| self.answer_press(chat, press, text, alert);
        let Some((id, choice)) = Choice::parse(&press.data) else {
            answer("This button is not one of mine.".into(), false).await;
            return UpdateOutcome::Ignored;
        };
        if !self.config.allowed_users.contains(&sender) {
            tracing::warn!(
                chat,
                sender,
                approval = id,
                "button press from a user not on the allowlist: refused"
            );
            answer("You are not allowed to decide this.".into(), true).await;
            return UpdateOutcome::Refused;
        }
        let approvals = self.host.claude().approvals().clone();
        let pressed = approvals.press(id, chat, press.message_id, choice, sender, &update.sender_name);
        match pressed.await {
            Press::Decided(text) => {
                answer(text, false).await;
                UpdateOutcome::Decided
            }
            Press::NotWaiting => {
                answer("This request is no longer waiting for an answer.".into(), false).await;
                UpdateOutcome::Stale
            }
            Press::Elsewhere => {
                tracing::warn!(
                    chat,
                    sender,
                    approval = id,
                    "button press from another chat or message than the prompt's: refused"
                );
                answer("You are not allowed to decide this.".into(), true).await;
                UpdateOutcome::Refused
            }
        }
    }

    /// Answers `press` with `text` (`alert`: a notice the user must dismiss);
    /// a failure is logged, the press is handled either way.
    pub(super) async fn answer_press(&self, chat: i64, press: &ButtonPress, text: String, alert: bool) {
        if let Err(e) = self.sender.answer_press(&press.callback_id, &text, alert).await {
            tracing::debug!(chat, "answering a button press failed: {e}");
        }
    }
}
