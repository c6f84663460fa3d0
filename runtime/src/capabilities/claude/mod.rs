//! Asking Claude on a plugin's behalf. The capability, which plugins see:
//! the import ([`imports`]), the call's [`scope`], the request checked
//! against the grant ([`request`]), a message's files ([`attached`]), the
//! text shown while it is written ([`draft`]), plugins' [`tools`] and
//! `/stop` ([`stop`]). Behind it, the calls' [`spend`] (admission, ledger,
//! budgets, credit, report) and the three [`backend`]s, all reached
//! through one [`Backends::ask`]. A tool use that needs a person goes to
//! the [`crate::approvals`] desk.

use std::sync::{Arc, RwLock};
use std::time::Instant as StdInstant;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::approvals::Approvals;
use crate::capabilities::attachments::Attachment;
use crate::config::claude::{Backend, Budget, ClaudeConfig};
use crate::config::PluginName;
use crate::db::Database;
use crate::wasm::bindings::task::mission::plugin::claude::{Answer, Options};
use crate::wasm::bindings::CapabilityError;

pub(crate) mod backend;
pub mod draft;
mod imports;
mod request;
mod scope;
pub mod spend;
pub mod stop;
pub mod tools;

use backend::{Backends, Call, Completion, Failure, Spent};
use request::Request;
pub use scope::{CallScope, OnBehalfOf};
use spend::admission::{self, Admitted, Refusal};
use spend::ledger::{CallOutcome, LedgerEntry};
use spend::{credit, record, Unfinished};

/// The `[claude]` config in force and the lines calls wait in: shadow
/// handlers' calls have a line of their own, so they never take a place a
/// live call waits for.
struct Active {
    config: ClaudeConfig,
    /// Where budget and credit alerts go (`[alerts] chat`).
    alerts_chat: Option<i64>,
    permits: Arc<Semaphore>,
    shadow_permits: Arc<Semaphore>,
}

/// The host's way to Claude, shared by every plugin call.
pub struct Claude {
    active: RwLock<Option<Arc<Active>>>,
    db: Database,
    backends: Backends,
    approvals: Arc<Approvals>,
    stops: stop::Stops,
    tools: std::sync::OnceLock<Arc<dyn tools::ToolBroker>>,
}

impl Claude {
    /// The service for `config` (none: every call is `unavailable`), telling
    /// budgets and the credit running down in `alerts_chat`.
    pub fn new(config: Option<ClaudeConfig>, alerts_chat: Option<i64>, db: Database) -> Claude {
        let claude = Claude {
            active: RwLock::new(None),
            db: db.clone(),
            backends: Backends::new(db.clone()),
            approvals: Arc::new(Approvals::new(db.clone())),
            stops: stop::Stops::default(),
            tools: std::sync::OnceLock::new(),
        };
        claude.set_config(config, alerts_chat);
        claude
    }

    /// Puts a changed `[claude]` section in force for the next call. Calls
    /// under way finish as they started.
    pub fn set_config(&self, config: Option<ClaudeConfig>, alerts_chat: Option<i64>) {
        let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
        let unchanged = match (active.as_deref(), &config) {
            (Some(current), Some(new)) => current.config == *new && current.alerts_chat == alerts_chat,
            (None, None) => true,
            _ => false,
        };
        if unchanged {
            return;
        }
        *active = config.map(|config| {
            let (permits, shadow_permits) = match active.as_deref() {
                Some(current) if current.config.max_concurrent == config.max_concurrent => {
                    (current.permits.clone(), current.shadow_permits.clone())
                }
                _ => (
                    Arc::new(Semaphore::new(config.max_concurrent)),
                    Arc::new(Semaphore::new(config.max_concurrent)),
                ),
            };
            Arc::new(Active {
                config,
                alerts_chat,
                permits,
                shadow_permits,
            })
        });
    }

    /// Where CLI processes get the passes to plugins' tools (`tools_from`);
    /// set once, when the host's tool-call gateway is up.
    pub fn serve_tools(&self, broker: Arc<dyn tools::ToolBroker>) {
        if self.tools.set(broker).is_err() {
            tracing::warn!("the tool-call gateway was set up twice; the first one serves");
        }
    }

    fn active(&self) -> Option<Arc<Active>> {
        self.active.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The CLI's working directory (none without `[claude]`).
    pub fn workdir(&self) -> Option<std::path::PathBuf> {
        self.active().map(|a| a.config.workdir.clone())
    }

    /// The global budget in force (none without `[claude]`).
    pub fn budget(&self) -> Budget {
        self.active().map(|a| a.config.budget).unwrap_or_default()
    }

    /// Asks Claude `prompt` for `scope`: checks the grant and the budgets,
    /// waits for a place in line, asks through the backend, records the
    /// call in the ledger.
    pub async fn ask(
        &self,
        scope: CallScope<'_>,
        prompt: String,
        options: Options,
        attachments: Vec<Attachment>,
    ) -> Result<Answer, CapabilityError> {
        let Some(active) = self.active() else {
            return Err(CapabilityError::Unavailable(
                "no [claude] section in mission.toml".into(),
            ));
        };
        let config = &active.config;
        let mut request = Request::resolve(config, scope.grant, prompt, options)?;
        request.attachments = attachments;
        if !scope.grant.tools_from.is_empty() && request.backend != Backend::Api {
            request.plugin_tools = Some(self.tool_pass(&scope)?);
        }
        let deadline = Instant::now() + request.deadline;
        let mut entry = LedgerEntry {
            plugin: scope.plugin.clone(),
            backend: request.backend,
            session_key: request.session_key.clone(),
            spent: Spent {
                model: request.model.clone(),
                ..Spent::default()
            },
            duration_ms: 0,
            outcome: CallOutcome::Ok,
            error: None,
            credit: false,
            on_behalf_of: scope.on_behalf_of.map(|o| o.plugin.clone()),
        };
        if let Err(reason) = admission::when_credit_spent(&self.db, config, &scope, &mut request).await {
            entry.outcome = CallOutcome::OverBudget;
            entry.error = Some(reason.clone());
            record(&self.db, entry).await;
            return Err(CapabilityError::OverBudget(reason));
        }
        entry.backend = request.backend;
        // The persistent CLI and the API (with `[claude.api] stream`, when no
        // plugin tools are offered) stream their text.
        if matches!(request.backend, Backend::Persistent | Backend::Api) {
            request.draft = scope.draft.cloned();
        }
        // Written as cancelled if the plugin's own deadline drops the call,
        // whether it is still waiting for its place or already asking.
        let unfinished = Unfinished {
            db: self.db.clone(),
            entry: Some(entry.clone()),
            started: StdInstant::now(),
        };
        let line = match scope.shadow {
            true => &active.shadow_permits,
            false => &active.permits,
        };
        let admitted = admission::admit(&self.db, line, &scope, config.budget, deadline).await;
        let Admitted { place, budget_left } = match admitted {
            Ok(admitted) => admitted,
            Err(Refusal { outcome, error }) => {
                unfinished.finished();
                entry.outcome = outcome;
                entry.error = Some(match &error {
                    CapabilityError::OverBudget(reason) => reason.clone(),
                    CapabilityError::TimedOut => "timed out waiting for a place in line".into(),
                    other => return Err(other.clone()),
                });
                record(&self.db, entry).await;
                return Err(error);
            }
        };
        let started = StdInstant::now();
        // A person's /stop in the chat this call serves ends it.
        let registration = scope
            .chat
            .filter(|_| !scope.shadow)
            .map(|chat| self.stops.register(chat));
        let unstoppable = stop::Stop::default();
        let stop = registration.as_ref().map_or(&unstoppable, |r| r.stop());
        let call = Call {
            scope: &scope,
            config,
            request: &request,
            place: &place,
            budget_left,
            stop,
            deadline,
            approvals: &self.approvals,
            tools: self.tools.get().map(|broker| broker.as_ref()),
        };
        let result = self.backends.ask(&call).await;
        drop(registration);
        unfinished.finished();
        entry.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let answer = settle(&mut entry, result);
        entry.credit = credit::draws(config, entry.backend, entry.spent.api_key_source.as_deref());
        if let Err(CapabilityError::Failed(reason)) = &answer {
            tracing::warn!(plugin = %scope.plugin, backend = %request.backend, "claude call failed: {reason}");
        }
        tracing::info!(
            plugin = %scope.plugin,
            backend = %request.backend,
            model = entry.spent.model.as_deref().unwrap_or("default"),
            cost_usd = entry.spent.cost_usd,
            ms = entry.duration_ms,
            outcome = entry.outcome.as_str(),
            "claude call"
        );
        let drew = entry.credit;
        record(&self.db, entry).await;
        spend::tell_levels(&self.db, config, active.alerts_chat, &scope, drew).await;
        answer
    }

    /// The pass a CLI process for `scope` reaches its grant's tools with.
    fn tool_pass(&self, scope: &CallScope<'_>) -> Result<Arc<tools::ToolPass>, CapabilityError> {
        let broker = self.tools.get().ok_or_else(|| {
            CapabilityError::Unavailable("plugins' tools are not served by this command".into())
        })?;
        let caller = scope.tool_caller();
        broker.pass(&caller).map_err(|e| {
            tracing::error!(plugin = %scope.plugin, "the tools of tools_from cannot be given: {e}");
            CapabilityError::Unavailable(format!("the tools of tools_from cannot be given: {e}"))
        })
    }

    /// Forgets `plugin`'s session `key` (the bot's `/reset`): its stored
    /// session, its transcript and its live process.
    pub async fn forget(&self, plugin: &PluginName, key: &str) -> anyhow::Result<()> {
        self.backends.stop_process(plugin, key).await;
        self.approvals.forget(plugin, key).await?;
        self.backends.forget_session(plugin, key).await
    }

    /// Stops the Claude turns running for `chat` (the bot's `/stop`); how
    /// many there were.
    pub fn stop_chat(&self, chat: i64) -> usize {
        self.stops.stop_chat(chat)
    }

    /// Where tool uses are approved.
    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }

    /// Denies the tool uses still waiting for a person, then stops every
    /// persistent process (on shutdown).
    pub async fn shutdown(&self) {
        self.approvals.close("Mission Control is stopping").await;
        self.backends.stop_all().await;
        if let Some(tools) = self.tools.get() {
            tools.close();
        }
    }

    /// Process ids of the live persistent processes (the bot's `/status`).
    pub async fn live_processes(&self) -> Vec<u32> {
        self.backends.live_pids().await
    }
}

/// What the plugin gets for `result`, with the ledger `entry` completed.
fn settle(entry: &mut LedgerEntry, result: Result<Completion, Failure>) -> Result<Answer, CapabilityError> {
    match result {
        Ok(completion) => {
            entry.spent = completion.spent.clone().or_model(entry.spent.model.take());
            Ok(Answer {
                text: completion.text,
                session_id: completion.session_id,
                turns: completion.spent.turns,
                usage: completion.spent.usage,
                cost_usd: completion.spent.cost_usd,
                duration_ms: entry.duration_ms,
            })
        }
        Err(Failure::TimedOut) => {
            entry.outcome = CallOutcome::TimedOut;
            Err(CapabilityError::TimedOut)
        }
        Err(Failure::Failed { reason, spent }) => {
            entry.outcome = CallOutcome::Failed;
            entry.spent = spent.or_model(entry.spent.model.take());
            entry.error = Some(reason.clone());
            Err(CapabilityError::Failed(reason))
        }
    }
}
