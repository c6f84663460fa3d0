//! Write a Mission Control task plugin in Rust.
//!
//! Implement [`Guest`] and export it; the host calls `run` on each
//! scheduled (or manual) run, in a fresh instance.
//!
//! ```ignore
//! use mission_task_sdk::{export_task, Guest, Invocation, Outcome};
//!
//! struct Hello;
//! impl Guest for Hello {
//!     fn run(invocation: Invocation) -> Result<Outcome, String> {
//!         Ok(Outcome { summary: format!("hello from {}", invocation.name) })
//!     }
//! }
//! export_task!(Hello);
//! ```
//!
//! The capabilities are under [`mission::plugin`]; the WIT (in `wit/`,
//! shipped with this crate) documents each. A failed capability call is a
//! [`CapabilityError`] that prints as a sentence, and `?` turns it into the
//! `String` error `Guest` returns. `claude::Options::new()` starts with
//! every field unset.

/// The generated bindings of the `task` world.
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "task",
        pub_export_macro: true,
        export_macro_name: "export_task",
        default_bindings_module: "mission_task_sdk::bindings",
        with: { "mission:plugin/common@0.1.6": mission_plugin_common },
        generate_all,
    });
}

pub use bindings::*;

pub use mission_plugin_common::{config_value, http, CapabilityError};

mission_plugin_common::claude_options_builder!(
    mission::plugin::claude::Options,
    mission::plugin::claude::Backend
);

/// Writes an info line to the host's log, tagged with this plugin's name.
pub fn log_info(message: &str) {
    mission::plugin::log::write(mission::plugin::log::Level::Info, message);
}
