//! The WebAssembly layer: the one [`engine`], the [`bindings`] of our
//! worlds, and what every store is given for one call: its [`limits`] and
//! the capture of its [`output`]. What a store holds, and the linker that
//! provides the imports, are assembled above, in `plugin`, from the
//! capabilities.

pub mod bindings;
pub mod engine;
pub mod limits;
pub mod output;
