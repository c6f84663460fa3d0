//! The linker that provides WASI's imports, `wasi:http` (decided per
//! request by the store's `OutboundHttp`) and every `mission:plugin`
//! capability to every plugin, of both worlds.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context;
use wasmtime::Engine;

use super::bindings::task;
use super::state::HostState;

/// A linker with WASI p2 and every `mission:plugin` capability, shared by
/// all plugins of both worlds.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("failed to add WASI to the linker")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .context("failed to add WASI HTTP to the linker")?;
    add_capabilities(&mut linker).context("failed to add the capabilities to the linker")?;
    Ok(linker)
}

/// Each `mission:plugin` interface, served by the store's `Capabilities`
/// (the worlds' own `add_to_linker` would add `wasi:http` again).
fn add_capabilities(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use task::mission::plugin::{claude, common, event, history, log, notify, process, state, task_types};
    fn capabilities(state: &mut HostState) -> &mut crate::capabilities::Capabilities {
        &mut state.capabilities
    }
    common::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    task_types::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    super::bindings::chat::mission::plugin::chat_types::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    event::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    log::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    state::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    history::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    claude::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    notify::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    process::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    Ok(())
}
