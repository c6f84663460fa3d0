//! `mission:plugin/claude`: asking Claude. Needs the `claude` grant; the
//! rest (the plugin's `[plugins.NAME.claude]` limits, budgets, backends) is
//! [`crate::claude`]'s.

use super::Capabilities;
use crate::claude::Asker;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::claude::{Answer, Host, Options};
use crate::wasm::bindings::CapabilityError;

impl Host for Capabilities {
    async fn ask(
        &mut self,
        prompt: String,
        options: Options,
    ) -> wasmtime::Result<Result<Answer, CapabilityError>> {
        if let Err(denied) = self.check(Grant::Claude) {
            return Ok(Err(denied));
        }
        let asker = Asker {
            plugin: &self.plugin,
            grant: &self.claude_grant,
            history: self.history,
        };
        Ok(self.claude.ask(asker, prompt, options).await)
    }
}
