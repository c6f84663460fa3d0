//! Write a Mission Control tools plugin in Rust: tools that Claude may call
//! for the plugins whose Claude grant names this one in `tools_from`.
//!
//! Implement [`Guest`] and export it: `tools` lists what the plugin offers
//! (asked once per loaded version), `call` runs one call, in a fresh
//! instance, under this plugin's own grants. An `Err` is a tool error that
//! Claude is told; its turn goes on.
//!
//! ```ignore
//! use mission_tools_sdk::{export_tools, Guest, Tool, ToolCall, ToolOutput};
//!
//! struct Clock;
//! impl Guest for Clock {
//!     fn tools() -> Vec<Tool> {
//!         vec![Tool {
//!             name: "echo".into(),
//!             description: "Says the text back".into(),
//!             input_schema: r#"{"type": "object", "properties": {"text": {"type": "string"}}}"#.into(),
//!         }]
//!     }
//!     fn call(call: ToolCall) -> Result<ToolOutput, String> {
//!         Ok(ToolOutput::Json(call.input))
//!     }
//! }
//! export_tools!(Clock);
//! ```
//!
//! The capabilities are under [`mission::plugin`]; the WIT (in `wit/`,
//! shipped with this crate) documents each.

/// The generated bindings of the `tools` world.
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "tools",
        pub_export_macro: true,
        export_macro_name: "export_tools",
        default_bindings_module: "mission_tools_sdk::bindings",
        with: { "mission:plugin/common@0.1.6": mission_plugin_common },
        generate_all,
    });
}

pub use bindings::mission::plugin::tool_types::{Tool, ToolCall, ToolOutput};
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
