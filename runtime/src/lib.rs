//! Mission Control: a host that runs a person's always-on automations as
//! sandboxed WebAssembly components.
//!
//! # Layout
//!
//! - [`config`]: `mission.toml`, raw and validated; [`units`] for its
//!   durations and sizes.
//! - [`engine`]: the one wasmtime engine and its epoch clock.
//! - [`bindings`]: one `bindgen!` per world of `wit/`, and the linker.
//! - [`plugin`]: a compiled, world-checked, pre-instantiated component;
//!   [`cache`] keeps compiled code on disk; [`loader`] does the loading.
//! - [`call`]: one call of a plugin in a fresh store under its limits
//!   ([`limits`], [`output`]), and what came of it.
//! - [`host_state`]: what a store holds; [`capabilities`]: the
//!   `mission:plugin` imports, one file per interface; [`claude`]: asking
//!   Claude through the CLI or the API, with the cost ledger and budgets.
//! - [`registry`]: the plugins being served, by name; [`hot_reload`] swaps
//!   in what [`watcher`] sees change; [`plugin_loads`] records each load.
//! - [`schedule`]: schedule files and cron expressions; [`scheduler`]: fires
//!   them on time by the [`clock`], with their policies;
//!   [`schedule_state`]: what it remembers per schedule.
//! - [`telegram`]: the bot that hands chat messages to the chat plugin, and
//!   the client that also carries `notify`.
//! - [`db`]: the SQLite file; [`runs`]: run records in it; [`control`]: how
//!   CLI commands reach a running host through it.
//! - [`host`]: ties the above together; [`cli`]: the `mission` commands.

pub mod bindings;
pub mod cache;
pub mod call;
pub mod capabilities;
pub mod claude;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod db;
pub mod engine;
pub mod host;
pub mod host_state;
pub mod hot_reload;
pub mod limits;
pub mod loader;
pub mod output;
pub mod plugin;
pub mod plugin_loads;
pub mod registry;
pub mod runs;
pub mod schedule;
pub mod schedule_state;
pub mod scheduler;
pub mod telegram;
pub mod units;
pub mod watcher;
