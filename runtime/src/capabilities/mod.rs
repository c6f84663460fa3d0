//! The `mission:plugin` imports: one axis of the house. Each capability is
//! a module or folder of its own, named for its WIT interface: it checks
//! the plugin's grant first and answers a denied or failed call with a
//! [`CapabilityError`] the plugin can handle (only a broken host traps).
//! [`add_to_linker`] is the one list that links them all; a grant's table
//! in `[plugins.NAME]` is checked against the grant in one place
//! (`config::plugin`).
//!
//! Adding one: its `.wit` in `wit/` (imported by the worlds that get it,
//! a compatible change: see docs/plugins.md), a module here implementing
//! its generated `Host` trait on [`Capabilities`], and a line in
//! [`add_to_linker`]; a grant of its own is a [`Grant`] variant, and its
//! table a field of `[plugins.NAME]`.

use std::sync::Arc;

use crate::capabilities::claude::Claude;
use crate::capabilities::notify::telegram::TelegramSender;
use crate::config::{Grant, PluginConfig, PluginName};
use crate::db::Database;
use crate::wasm::bindings::{chat, task, CapabilityError};
use crate::wasm::output::{LogRates, OutputCapture};
pub use event::Event;
use wasmtime::component::{HasSelf, Linker};

pub mod attachments;
pub mod claude;
mod event;
pub mod files;
pub mod history;
pub mod http;
pub mod later;
mod log;
pub mod notify;
pub(crate) mod process;
pub mod reply_files;
mod state;

/// What the capabilities of every call draw on: the database, the way to
/// Claude, the Telegram client and each plugin's log rate. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The SQLite file.
    pub db: Database,
    /// Asking Claude.
    pub claude: Arc<Claude>,
    /// Sending Telegram messages, if `[telegram]` is set and its token is
    /// in the environment.
    pub telegram: Option<Arc<TelegramSender>>,
    /// How much each plugin may still log, across its calls.
    pub log_rates: Arc<LogRates>,
    /// Told when a wake-up is added, so the trigger that runs them sees one
    /// due sooner than it sleeps for.
    pub wakeups: Arc<tokio::sync::Notify>,
    /// Told when a button press is stored, so the trigger that runs them
    /// takes it at once.
    pub presses: Arc<tokio::sync::Notify>,
}

/// The task run a call belongs to, as its Claude tool use sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRun {
    /// The run's id.
    pub id: i64,
    /// How long a tool use waits for a person's press (`[alerts]
    /// approval_wait`), not the chat's approval timeout.
    pub approval_wait: std::time::Duration,
}

/// What one call is for, set as it starts.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The chat it serves, if any, or where a task's Claude tool use is
    /// asked about (`[alerts] chat`).
    pub chat: Option<i64>,
    /// A task's run, whose Claude tool use waits for a person.
    pub run: Option<CallRun>,
    /// Whether it is a shadow handler's call, whose replies are never sent.
    pub shadow: bool,
    /// What started it, for `event`.
    pub event: Option<Arc<Event>>,
    /// What a chat call has beside its message.
    pub io: MessageIo,
    /// For a tool call: the plugin whose Claude called it, whose budgets
    /// count what the tool spends on Claude.
    pub on_behalf_of: Option<claude::OnBehalfOf>,
}

/// What a chat call has beside its message, from whoever hands it over:
/// the message's files (for `attachments`), where Claude's text is shown
/// while it is written (for `claude.ask-streamed`), and where the files
/// sent with the reply go (for `attachments.attach`). The default has no
/// files, shows nothing and takes no files back.
#[derive(Debug, Clone, Default)]
pub struct MessageIo {
    /// The message's files.
    pub attachments: Arc<Vec<attachments::Attachment>>,
    /// Where Claude's text is shown, if it is.
    pub draft: Option<claude::draft::Draft>,
    /// Where the reply's files go, if it may carry any.
    pub reply_files: Option<reply_files::ReplyFiles>,
}

/// What one call drew on through its capabilities, for the record of chat
/// handler calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallStats {
    /// Claude calls answered.
    pub claude_calls: u32,
    /// Claude calls refused over a budget.
    pub claude_over_budget: u32,
    /// Claude calls that ran out of time.
    pub claude_timeouts: u32,
    /// Claude calls that failed otherwise.
    pub claude_failures: u32,
    /// Input tokens at the full rate, over the answered calls.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// All the context sent: input, cache reads and cache writes.
    pub context_tokens: u64,
    /// What the answered calls cost, in US dollars.
    pub cost_usd: f64,
    /// History entries the plugin read.
    pub history_given: u64,
    /// Bytes written to the directories of its `files` grant.
    pub files_written: u64,
}

/// What one call of one plugin may reach: its name scopes every row it
/// reads or writes, and its grants — with their tables, read from the
/// plugin's config as it was loaded — decide which calls are allowed.
/// Made per call from what the plugin and the host already hold (two
/// handles), so a capability's grant costs a call nothing until it is used.
pub struct Capabilities {
    config: Arc<PluginConfig>,
    services: Services,
    output: OutputCapture,
    context: CallContext,
    stats: CallStats,
}

impl Capabilities {
    /// Capabilities for a call of the plugin configured as `config`, whose
    /// log lines go to `output` with its stdout.
    pub fn new(config: Arc<PluginConfig>, services: &Services, output: OutputCapture) -> Self {
        Self {
            config,
            services: services.clone(),
            output,
            context: CallContext::default(),
            stats: CallStats::default(),
        }
    }

    /// Starts a call for `context`, with its stats at zero.
    pub fn begin(&mut self, context: CallContext) {
        self.context = context;
        self.stats = CallStats::default();
    }

    /// The plugin whose call this is.
    pub fn plugin(&self) -> &PluginName {
        &self.config.name
    }

    /// What the call so far drew on.
    pub fn stats(&self) -> &CallStats {
        &self.stats
    }

    /// `Ok` if the plugin holds `grant`, else the `denied` error it gets.
    fn check(&self, grant: Grant) -> Result<(), CapabilityError> {
        if self.config.grants.contains(&grant) {
            Ok(())
        } else {
            self.output.caused(
                tracing::Level::WARN,
                "denied capability calls",
                format_args!("capability call denied: no `{grant}` grant"),
            );
            Err(CapabilityError::Denied(format!(
                "plugin `{}` has no `{grant}` grant in its config",
                self.config.name
            )))
        }
    }

    /// The `failed` error for a host-side failure, logged in full here since
    /// the plugin only gets a short reason.
    fn failed(&self, what: &str, error: anyhow::Error) -> CapabilityError {
        tracing::error!(plugin = %self.config.name, "{what} failed: {error:#}");
        CapabilityError::Failed(format!("{what} failed"))
    }
}

#[cfg(test)]
/// Capabilities of `plugin` with `grants`, for tests of one capability.
fn for_test(db: &Database, plugin: &str, grants: &[Grant]) -> Capabilities {
    let name = PluginName::parse(plugin).unwrap();
    let config = PluginConfig {
        grants: grants.iter().copied().collect(),
        ..PluginConfig::for_test(name.clone())
    };
    let services = Services {
        db: db.clone(),
        claude: Arc::new(Claude::new(None, None, db.clone())),
        telegram: None,
        log_rates: Arc::default(),
        wakeups: Arc::default(),
        presses: Arc::default(),
    };
    Capabilities::new(
        Arc::new(config),
        &services,
        OutputCapture::new(name, 64 << 10, Arc::default()),
    )
}

/// Links every `mission:plugin` interface to the [`Capabilities`] that
/// `capabilities` finds in a store's data: the one list. (The worlds' own
/// `add_to_linker` would add `wasi:http` again, which the linker has.)
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    capabilities: fn(&mut T) -> &mut Capabilities,
) -> wasmtime::Result<()> {
    use task::mission::plugin::{
        claude, common, event, history, later, log, notify, process, state, task_types,
    };
    common::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    task_types::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    chat::mission::plugin::chat_types::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    chat::mission::plugin::attachments::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    event::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    later::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    log::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    state::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    history::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    claude::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    notify::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    process::add_to_linker::<_, HasSelf<_>>(linker, capabilities)?;
    Ok(())
}

impl task::mission::plugin::common::Host for Capabilities {}
impl task::mission::plugin::task_types::Host for Capabilities {}
impl chat::mission::plugin::chat_types::Host for Capabilities {}
