//! The WebAssembly layer: the one [`engine`], the [`bindings`] of our
//! worlds, the [`linker`] that provides their imports, and what a store
//! holds for one call ([`state`]) with its [`limits`] and [`output`].

pub mod bindings;
pub mod engine;
pub mod limits;
pub mod linker;
pub mod output;
pub mod state;
