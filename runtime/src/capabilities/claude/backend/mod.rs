//! The three ways to Claude, behind one [`Backends::ask`] that takes one
//! admitted [`Call`]: the CLI ([`cli`]: a one-shot process per call, or a
//! long-lived one per session) and the Messages API ([`api`]). Beside them
//! what they share: the CLI's permission prompt ([`permission`]), the
//! sessions they continue ([`sessions`]), and what a call gives back.

pub(crate) mod api;
pub(crate) mod attached;
pub(crate) mod cli;
pub(crate) mod permission;
pub(crate) mod sessions;

use std::sync::Arc;

use tokio::time::Instant;

use super::request::Request;
use super::scope::CallScope;
use super::spend::admission::Place;
pub(crate) use super::spend::Spent;
use super::stop::Stop;
use super::tools::ToolBroker;
use crate::approvals::Approvals;
use crate::config::claude::{Backend, ClaudeConfig};
use crate::config::PluginName;
use crate::db::Database;
use crate::wasm::bindings::task::mission::plugin::claude::Usage;

/// Token counts as the Messages API reports them (the CLI's `result`
/// carries the same object).
#[derive(Debug, Default, Clone, Copy, PartialEq, serde::Deserialize)]
pub(crate) struct TokenCounts {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl TokenCounts {
    /// Adds `other`'s counts: the requests of one call, summed.
    fn add(&mut self, other: &TokenCounts) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }
}

impl From<TokenCounts> for Usage {
    fn from(counts: TokenCounts) -> Usage {
        Usage {
            input_tokens: counts.input_tokens,
            output_tokens: counts.output_tokens,
            cache_write_tokens: counts.cache_creation_input_tokens,
            cache_read_tokens: counts.cache_read_input_tokens,
        }
    }
}

/// A backend's answer.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub text: String,
    pub session_id: Option<String>,
    pub spent: Spent,
}

/// Why a backend gave no answer.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// The deadline passed; the process (if any) was killed.
    TimedOut,
    /// The call failed; what it spent before failing is still counted.
    Failed { reason: String, spent: Spent },
}

impl Failure {
    pub fn failed(reason: String) -> Failure {
        Failure::Failed {
            reason,
            spent: Spent::default(),
        }
    }
}

/// One admitted call, as every backend takes it.
pub(crate) struct Call<'a> {
    /// Who asks.
    pub scope: &'a CallScope<'a>,
    /// The `[claude]` config in force when the call began.
    pub config: &'a ClaudeConfig,
    /// What it asks, checked against the grant.
    pub request: &'a Request,
    /// Its place in line, given up while a person decides on a tool use.
    pub place: &'a Place,
    /// What the tightest budget has left, if any is set: the one-shot
    /// CLI's `--max-budget-usd`.
    pub budget_left: Option<f64>,
    /// Its `/stop`.
    pub stop: &'a Stop,
    /// When it must have ended.
    pub deadline: Instant,
    /// Where a person is asked about a tool use.
    pub approvals: &'a Approvals,
    /// The plugins' tools, once the tool-call gateway is up.
    pub tools: Option<&'a dyn ToolBroker>,
}

/// What the backends keep between calls: the persistent CLI's processes,
/// the API's HTTP client, and the sessions in the database.
pub(crate) struct Backends {
    db: Database,
    pool: Arc<cli::persistent::Pool>,
    http: reqwest::Client,
}

impl Backends {
    /// Backends with no process running yet, keeping sessions in `db`.
    pub fn new(db: Database) -> Backends {
        Backends {
            db,
            pool: Arc::default(),
            http: reqwest::Client::new(),
        }
    }

    /// Asks through the backend `call.request` names; the session it
    /// continues is read before and stored after.
    pub async fn ask(&self, call: &Call<'_>) -> Result<Completion, Failure> {
        match call.request.backend {
            Backend::Api => api::ask(self, call).await,
            Backend::Cli | Backend::Persistent => cli::ask(self, call).await,
        }
    }

    /// Stops the persistent process of `plugin`'s session `key`, if any.
    pub async fn stop_process(&self, plugin: &PluginName, key: &str) {
        self.pool.forget(plugin, key).await;
    }

    /// Forgets `plugin`'s stored session `key` and its transcript.
    pub async fn forget_session(&self, plugin: &PluginName, key: &str) -> anyhow::Result<()> {
        sessions::forget(&self.db, plugin, key).await
    }

    /// Stops every persistent process.
    pub async fn stop_all(&self) {
        self.pool.stop_all().await;
    }

    /// Process ids of the live persistent processes.
    pub async fn live_pids(&self) -> Vec<u32> {
        self.pool.live_pids().await
    }
}

/// What a failed session lookup gives the call, logged.
fn unreadable_session(plugin: &PluginName, e: anyhow::Error) -> Failure {
    tracing::error!(%plugin, "claude session lookup failed: {e:#}");
    Failure::failed("the host could not read its session store".into())
}

/// Logs a session that could not be stored: the answer still goes to the
/// plugin, the next call with the key starts a new session.
fn log_unstored(plugin: &PluginName, key: &str, stored: anyhow::Result<()>) {
    if let Err(e) = stored {
        tracing::error!(%plugin, session_key = key, "failed to store the claude session: {e:#}");
    }
}
