//! Telegram: the Bot API [`client`] (sending text within Telegram's limits,
//! shared by the bot and `notify`), and the [`bot`] that hands allowed
//! messages to the chat plugin, with its durable queue of [`updates`] and the
//! [`commands`] the host answers itself.

pub mod bot;
pub mod client;
pub mod commands;
pub mod prompter;
mod split;
pub mod updates;
