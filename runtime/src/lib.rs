//! Mission Control: a host that runs a person's always-on automations as
//! sandboxed WebAssembly components.
//!
//! # Layout
//!
//! From the bottom up; a module uses only those above it or beside it.
//!
//! - [`os`]: files read only if regular and within a cap, programs ended
//!   with all they started, the host's time zone. [`untrusted`]: text the
//!   host did not write, made safe for each place it goes (the log, a
//!   terminal, a prompt, a line protocol). [`display`]: times, durations
//!   and errors as a person is shown them.
//! - [`config`]: `mission.toml`, raw and validated, with its units and
//!   sections. [`db`]: the SQLite file, its migrations and the pruning of
//!   what is past keeping. [`alerts`]: what the host tells a person unasked,
//!   queued in the outbox beside what decided it, sent from there.
//!   [`approvals`]: the desk where a person allows a tool use Claude wants.
//!   [`backup`]: everything in one archive, and back. [`metrics`]: the
//!   host's counters for Prometheus.
//! - [`wasm`]: the wasmtime engine, the bindings of `wit/`, the linker, and
//!   what one store holds under its limits.
//! - [`capabilities`]: one axis of the house — what a plugin may reach, one
//!   module or folder per `mission:plugin` interface (`claude` with its
//!   backends and spend; `notify` with the Bot API
//!   client), and outbound HTTP (`wasi:http`, decided per request).
//! - [`plugin`]: a compiled, world-checked, pre-instantiated component, its
//!   cache, loader, calls, registry and load records.
//! - [`host`]: the core — load, reload and call plugins, record runs —
//!   knowing nothing of what drives it.
//! - [`triggers`]: the other axis — what starts plugins (schedules, the
//!   Telegram bot, webhooks, watches), each reaching the host through a narrow
//!   [`triggers::Invoker`].
//! - [`serve`]: `mission up`: the triggers, hot reload, the control channel,
//!   pruning, backups and the status page (with `/metrics`) wired around one
//!   host.
//! - [`cli`]: the `mission` commands, with the tooling only they use
//!   (service install, launchd import, plugin builds and scaffolds).

pub mod alerts;
pub mod approvals;
pub mod backup;
pub mod capabilities;
pub mod cli;
pub mod config;
pub mod db;
pub mod display;
pub mod host;
pub mod metrics;
pub mod os;
pub mod plugin;
pub mod serve;
pub mod triggers;
pub mod untrusted;
pub mod wasm;
