//! `mission:plugin/notify`: sending Telegram messages from any plugin.
//! Needs the `notify` grant. Not yet wired to the Telegram bot (that needs a
//! per-plugin list of chats in the grant), so a granted call is answered
//! with `unavailable`.

use super::Capabilities;
use crate::bindings::task::mission::plugin::notify::Host;
use crate::bindings::CapabilityError;
use crate::config::Grant;

impl Host for Capabilities {
    async fn send(&mut self, _chat_id: i64, _text: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        Ok(self.check(Grant::Notify).and(Err(CapabilityError::Unavailable(
            "this host has no Telegram bot configured".into(),
        ))))
    }
}
