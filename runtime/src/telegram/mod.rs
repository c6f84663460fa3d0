//! Telegram: the Bot API [`client`] (sending text within Telegram's limits,
//! shared by the bot and `notify`), and the [`bot`] that hands allowed
//! messages to the chat plugin, with its durable queue of [`updates`] and the
//! [`commands`] the host answers itself, all reaching the host through
//! [`chat_host::ChatHost`].

pub mod bot;
pub mod chat_calls;
pub mod chat_host;
pub mod client;
pub mod commands;
pub mod prompter;
mod split;
pub mod updates;
