//! `mission:plugin/claude`: asking Claude. Needs the `claude` grant. The
//! backends (CLI, persistent CLI, Messages API) and the cost ledger are not
//! built yet, so a granted call is answered with `unavailable`.

use super::Capabilities;
use crate::bindings::task::mission::plugin::claude::{Answer, Host, Options};
use crate::bindings::CapabilityError;
use crate::config::Grant;

impl Host for Capabilities {
    async fn ask(
        &mut self,
        _prompt: String,
        _options: Options,
    ) -> wasmtime::Result<Result<Answer, CapabilityError>> {
        Ok(self.check(Grant::Claude).and(Err(CapabilityError::Unavailable(
            "this host has no Claude backend yet".into(),
        ))))
    }
}
