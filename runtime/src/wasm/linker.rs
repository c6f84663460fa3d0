//! The linker that provides WASI's imports and every `mission:plugin`
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
    task::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut HostState| &mut state.capabilities)
        .context("failed to add the capabilities to the linker")?;
    Ok(linker)
}
