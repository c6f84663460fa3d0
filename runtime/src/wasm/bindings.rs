//! Rust bindings for the worlds of `wit/`, one `bindgen!` per world.
//!
//! The chat world reuses the task world's capability interfaces (`with`), so
//! each capability has exactly one host trait, implemented in
//! [`crate::capabilities`].

/// The `task` world: a plugin that exports `run`.
pub mod task {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
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
            "mission:plugin/common": super::task::mission::plugin::common,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "mission:plugin/log": super::task::mission::plugin::log,
            "mission:plugin/state": super::task::mission::plugin::state,
            "mission:plugin/history": super::task::mission::plugin::history,
            "mission:plugin/claude": super::task::mission::plugin::claude,
            "mission:plugin/notify": super::task::mission::plugin::notify,
            "mission:plugin/process": super::task::mission::plugin::process,
        },
    });
}

pub use task::mission::plugin::common::CapabilityError;
