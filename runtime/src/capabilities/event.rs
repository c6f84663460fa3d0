//! `mission:plugin/event`: what started the run. Needs no grant: a run
//! sees only the event it was started for, set by its trigger.

use super::Capabilities;
use crate::wasm::bindings::task::mission::plugin::event::{Host, WebhookRequest};

impl Host for Capabilities {
    async fn webhook(&mut self) -> wasmtime::Result<Option<WebhookRequest>> {
        Ok(self.context.event.as_deref().map(|event| match event {
            Event::Webhook(request) => request.clone(),
        }))
    }
}

/// What started a run, beyond its invocation.
#[derive(Debug, Clone)]
pub enum Event {
    /// A webhook request, as stored.
    Webhook(WebhookRequest),
}
