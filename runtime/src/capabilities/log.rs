//! `mission:plugin/log`: a plugin's log lines, into `tracing` under the
//! `plugin` target with the plugin's name. Needs no grant.

use super::Capabilities;
use crate::wasm::bindings::task::mission::plugin::log::{Host, Level};

/// Longer messages are cut, so one call cannot write megabytes to the log.
const MAX_MESSAGE_BYTES: usize = 8192;

impl Host for Capabilities {
    async fn write(&mut self, level: Level, mut message: String) -> wasmtime::Result<()> {
        if message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push_str(" [truncated]");
        }
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
        Ok(())
    }
}
