//! Reminders: a message to a chat at a time, kept as a wake-up of the
//! host's own (its plugin is `mission`, the host's tools): stored in
//! SQLite, so it survives a restart, shown by `mission later` and the page,
//! claimed and sent once by the wake-ups trigger. The host's tools create,
//! list and cancel them.

use serde::{Deserialize, Serialize};

/// What a reminder sends, and where: its wake-up's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The chat it is sent to.
    pub chat: i64,
    /// Its text.
    pub text: String,
}

impl Reminder {
    /// The wake-up's payload.
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read back from a wake-up's payload; none if it is not a reminder.
    pub fn read(payload: &[u8]) -> Option<Reminder> {
        serde_json::from_slice(payload).ok()
    }

    /// The message it sends.
    pub fn message(&self) -> String {
        format!("⏰ Reminder: {}", self.text)
    }
}
