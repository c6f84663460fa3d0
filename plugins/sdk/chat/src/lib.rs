//! Write a Mission Control chat plugin in Rust.
//!
//! Implement [`Guest`] and export it; the host calls `handle` for each
//! message from an allowed user. With the `history` grant the host records
//! every message and reply once answered, so `history::read` gives the
//! conversation so far.
//!
//! ```ignore
//! use mission_chat_sdk::{export_chat, Guest, Message, Reply};
//!
//! struct Echo;
//! impl Guest for Echo {
//!     fn handle(message: Message) -> Result<Option<Reply>, String> {
//!         Ok(Some(Reply { text: message.text, parse_mode: None }))
//!     }
//! }
//! export_chat!(Echo);
//! ```
//!
//! The capabilities are under [`mission::plugin`]; the WIT (in `wit/`,
//! shipped with this crate) documents each. A failed capability call is a
//! [`CapabilityError`] that prints as a sentence, and `?` turns it into the
//! `String` error `Guest` returns. `claude::Options::new()` starts with
//! every field unset.

/// The generated bindings of the `chat` world.
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "chat",
        pub_export_macro: true,
        export_macro_name: "export_chat",
        default_bindings_module: "mission_chat_sdk::bindings",
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

/// The history key of a chat: its id in decimal.
pub fn conversation(message: &Message) -> String {
    message.chat_id.to_string()
}
