//! `mission:plugin/log`: a plugin's log lines, into `tracing` under the
//! `plugin` target with the plugin's name, through the call's output
//! capture: counted against the call's output limit and the plugin's log
//! rate like stdout. Needs no grant.

use super::Capabilities;
use crate::wasm::bindings::task::mission::plugin::log::{Host, Level};
use crate::wasm::output::cut;

/// Longer messages are cut, so one line cannot be megabytes.
const MAX_MESSAGE_BYTES: usize = 8192;

impl Host for Capabilities {
    async fn write(&mut self, level: Level, mut message: String) -> wasmtime::Result<()> {
        cut(&mut message, MAX_MESSAGE_BYTES);
        let level = match level {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        };
        self.output.log(level, &message);
        Ok(())
    }
}
