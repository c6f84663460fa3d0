//! Rust bindings for the worlds of `wit/`, one `bindgen!` per world, and the
//! linker that provides their imports (and WASI's) to every plugin.
//!
//! The chat world reuses the task world's capability interfaces (`with`), so
//! each capability has exactly one host trait, implemented in
//! [`crate::capabilities`].

use wasmtime::component::{HasSelf, Linker};
use wasmtime::error::Context;
use wasmtime::Engine;

use crate::host_state::HostState;

/// The `task` world: a plugin that exports `run`.
pub mod task {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

/// The `chat` world: a plugin that exports `handle`.
pub mod chat {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "chat",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "mission:plugin/types": super::task::mission::plugin::types,
            "mission:plugin/log": super::task::mission::plugin::log,
            "mission:plugin/state": super::task::mission::plugin::state,
            "mission:plugin/history": super::task::mission::plugin::history,
            "mission:plugin/claude": super::task::mission::plugin::claude,
            "mission:plugin/notify": super::task::mission::plugin::notify,
        },
    });
}

pub use task::mission::plugin::types::CapabilityError;

/// A linker with WASI p2 and every `mission:plugin` capability, shared by
/// all plugins of both worlds.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("failed to add WASI to the linker")?;
    task::Task::add_to_linker::<_, HasSelf<_>>(&mut linker, |state: &mut HostState| &mut state.capabilities)
        .context("failed to add the capabilities to the linker")?;
    Ok(linker)
}
