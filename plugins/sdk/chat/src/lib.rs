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
//! The capabilities are under [`mission::plugin`]; the WIT in `wit/`
//! documents each.

/// The generated bindings of the `chat` world.
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "chat",
        pub_export_macro: true,
        export_macro_name: "export_chat",
        default_bindings_module: "mission_chat_sdk::bindings",
    });
}

pub use bindings::*;

pub use mission::plugin::types::CapabilityError;

/// The value of config key `key`, if set.
pub fn config_value<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Writes an info line to the host's log, tagged with this plugin's name.
pub fn log_info(message: &str) {
    mission::plugin::log::write(mission::plugin::log::Level::Info, message);
}

/// The history key of a chat: its id in decimal.
pub fn conversation(message: &Message) -> String {
    message.chat_id.to_string()
}
