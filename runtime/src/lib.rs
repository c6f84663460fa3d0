//! Mission Control: a host that runs a person's always-on automations as
//! sandboxed WebAssembly components.
//!
//! # Layout
//!
//! From the bottom up; a module uses only those above it or beside it.
//!
//! - [`os`]: files read only if regular and within a cap, programs ended
//!   with all they started.
//! - [`config`]: `mission.toml`, raw and validated, with its units and the
//!   `[claude]` sections. [`db`]: the SQLite file.
//! - [`wasm`]: the wasmtime engine, the bindings of `wit/`, the linker, and
//!   what one store holds under its limits.
//! - [`capabilities`]: the `mission:plugin` imports, one file per interface,
//!   and outbound HTTP (`wasi:http`, decided per request by the host);
//!   [`claude`]: asking Claude through the CLI or the API, with the cost
//!   ledger, budgets, and the desk where a person allows a tool use;
//!   [`telegram`]: the Bot API client (used by `notify`) and the bot, with
//!   its chat handler calls measured and the shadow report.
//! - [`plugin`]: a compiled, world-checked, pre-instantiated component, its
//!   cache, loader, calls, registry and load records.
//! - [`runs`]: run records. [`retention`]: pruning what is past keeping.
//!   [`host`]: the core — load, reload and call plugins — knowing nothing
//!   of what drives it.
//! - [`schedule`]: schedule files, cron, the scheduler and its clock, which
//!   reach the host through [`schedule::scheduler::ScheduleRunner`].
//! - [`serve`]: `mission up`: the scheduler, the bot, hot reload, the
//!   control channel and pruning wired around one host; [`web`]: its status
//!   page.
//! - Beside the host, for the commands: [`tooling`] — `service` (`mission
//!   up` as a LaunchAgent or a systemd user unit), `import` (LaunchAgents
//!   read as jobs for `run-command`), `build` (plugins built from source in
//!   any of the three languages), `scaffold` (new plugins from templates).
//! - [`cli`]: the `mission` commands.

pub mod capabilities;
pub mod claude;
pub mod cli;
pub mod config;
pub mod db;
pub mod host;
pub mod os;
pub mod plugin;
pub mod retention;
pub mod runs;
pub mod schedule;
pub mod serve;
pub mod telegram;
pub mod tooling;
pub mod wasm;
pub mod web;
