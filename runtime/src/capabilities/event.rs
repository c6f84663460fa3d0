//! `mission:plugin/event`: what started the run — a webhook request, a
//! watch's file changes, a wake-up, the run whose end started it, a press on
//! one of its buttons. Needs no grant: a run sees only the event it was
//! started for, set by its trigger.

use super::Capabilities;
use crate::wasm::bindings::task::mission::plugin::event::{
    ButtonPress, Host, ParentRun, WakeUp, WatchEvent, WebhookRequest,
};

impl Host for Capabilities {
    async fn webhook(&mut self) -> wasmtime::Result<Option<WebhookRequest>> {
        Ok(match self.context.event.as_deref() {
            Some(Event::Webhook(request)) => Some(request.clone()),
            _ => None,
        })
    }

    async fn watch(&mut self) -> wasmtime::Result<Option<WatchEvent>> {
        Ok(match self.context.event.as_deref() {
            Some(Event::Watch(changes)) => Some(changes.clone()),
            _ => None,
        })
    }

    async fn wake(&mut self) -> wasmtime::Result<Option<WakeUp>> {
        Ok(match self.context.event.as_deref() {
            Some(Event::WakeUp(wake_up)) => Some(wake_up.clone()),
            _ => None,
        })
    }

    async fn parent(&mut self) -> wasmtime::Result<Option<ParentRun>> {
        Ok(match self.context.event.as_deref() {
            Some(Event::Parent(parent)) => Some(parent.clone()),
            _ => None,
        })
    }

    async fn press(&mut self) -> wasmtime::Result<Option<ButtonPress>> {
        Ok(match self.context.event.as_deref() {
            Some(Event::Press(press)) => Some(press.clone()),
            _ => None,
        })
    }
}

/// What started a run, beyond its invocation.
#[derive(Debug, Clone)]
pub enum Event {
    /// A webhook request, as stored.
    Webhook(WebhookRequest),
    /// A watch's file changes.
    Watch(WatchEvent),
    /// A wake-up the plugin asked for with `later`.
    WakeUp(WakeUp),
    /// The run whose end started it.
    Parent(ParentRun),
    /// A press on a button of a message it posted.
    Press(ButtonPress),
}
