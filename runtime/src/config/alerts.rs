//! `[alerts]`: where a failing job is told, and after how many failures.
//!
//! ```toml
//! [alerts]
//! chat = 123456789        # an allowed user's chat (telegram.allowed_users)
//! after_failures = 1      # consecutive failed runs (after retries) before an alert
//! ```
//!
//! A schedule file may say `alert = false`, or its own `after_failures`.

use serde::Deserialize;

use super::telegram::TelegramConfig;

/// The validated `[alerts]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertsConfig {
    /// The Telegram chat alerts go to.
    pub chat: i64,
    /// Consecutive failed runs of a schedule before it is told.
    pub after_failures: u32,
}

/// `[alerts]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    /// Example: `chat = 123456789`
    chat: i64,
    /// Example: `after_failures = 3` (default 1)
    after_failures: Option<u32>,
}

impl RawAlerts {
    /// `[alerts]` validated: its chat is an allowed user's, so only the
    /// people who may use the bot read what broke.
    pub(super) fn validate(self, telegram: Option<&TelegramConfig>) -> Result<AlertsConfig, String> {
        let telegram = telegram.ok_or("alerts: alerts are sent by the bot; configure [telegram]")?;
        let allowed = u64::try_from(self.chat).is_ok_and(|user| telegram.allowed_users.contains(&user));
        if !allowed {
            return Err(format!(
                "alerts.chat: `{}` is not the chat of an allowed user (telegram.allowed_users)",
                self.chat
            ));
        }
        let after_failures = self.after_failures.unwrap_or(1);
        if after_failures == 0 {
            return Err("alerts.after_failures: must be at least 1".into());
        }
        Ok(AlertsConfig {
            chat: self.chat,
            after_failures,
        })
    }
}
