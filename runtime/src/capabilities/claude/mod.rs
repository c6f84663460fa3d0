//! Asking Claude on a plugin's behalf: the request checked against the
//! plugin's grant ([`request`]), budgets checked before anything is spent
//! ([`ledger`]), a place in line under the global concurrency limit, then
//! one of three backends — a one-shot CLI process ([`oneshot`]), a
//! long-lived CLI process per session ([`persistent`]) or the Messages API
//! ([`api`]) — and every call, refused or made, written to the ledger. A
//! tool use that needs a person goes to the [`approvals`] desk.

use std::sync::{Arc, RwLock};
use std::time::Instant as StdInstant;

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::alerts;
use crate::capabilities::attachments::Attachment;
use crate::capabilities::CallRun;
use crate::config::credit::WhenSpent;
use crate::config::{HistoryPolicy, PluginName};
use crate::db::Database;
use crate::os::zone::host_zone;
use crate::wasm::bindings::task::mission::plugin::claude::{Answer, Options, Usage};
use crate::wasm::bindings::CapabilityError;
use approvals::{Approvals, Asking};

pub mod api;
pub mod approvals;
mod attached;
mod cli_result;
pub mod credit;
pub mod draft;
mod imports;
pub mod ledger;
mod oneshot;
mod permission;
mod persistent;
mod process;
pub mod report;
mod request;
pub(crate) mod sessions;
pub mod stop;
pub mod tools;

use crate::config::claude::{Backend, Budget, ClaudeConfig, ClaudeGrant};
use ledger::{CallOutcome, LedgerEntry};
use request::Request;

/// What the CLI prints when `--resume` names a session it does not have.
const SESSION_NOT_FOUND: &str = "No conversation found with session ID";

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

/// What a call used, whatever came of it.
#[derive(Debug, Clone)]
pub(crate) struct Spent {
    pub usage: Usage,
    pub cost_usd: f64,
    pub turns: u32,
    /// The model that answered, as the backend named it.
    pub model: Option<String>,
    /// Where the CLI's credentials came from, if it said.
    pub api_key_source: Option<String>,
}

impl Spent {
    /// This, with `model` (the one asked for) when the backend named none.
    fn or_model(self, model: Option<String>) -> Spent {
        Spent {
            model: self.model.or(model),
            ..self
        }
    }
}

impl Default for Spent {
    fn default() -> Self {
        Spent {
            usage: Usage {
                input_tokens: 0,
                output_tokens: 0,
                cache_write_tokens: 0,
                cache_read_tokens: 0,
            },
            cost_usd: 0.0,
            turns: 0,
            model: None,
            api_key_source: None,
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
    fn failed(reason: String) -> Failure {
        Failure::Failed {
            reason,
            spent: Spent::default(),
        }
    }
}

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
    pool: Arc<persistent::Pool>,
    http: reqwest::Client,
    approvals: Arc<Approvals>,
    stops: stop::Stops,
    tools: std::sync::OnceLock<Arc<dyn tools::ToolBroker>>,
}

/// A call's place in line (a permit of `max_concurrent`), given up while
/// the call waits for a person to allow a tool use, so a person away does
/// not hold up other chats' calls, and taken again before it goes on.
pub(crate) struct Place {
    line: Arc<Semaphore>,
    permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl Place {
    /// Gives the place up (until [`Place::retake`]).
    pub fn give_up(&self) {
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Waits for a place again, until `deadline`; whether it got one.
    pub async fn retake(&self, deadline: Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.line.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                *self.permit.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
                true
            }
            _ => false,
        }
    }
}

/// The plugin a tools plugin's Claude call is made for: the one whose
/// Claude called the tool. Its budgets count what the call spends, and a
/// spent one refuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct OnBehalfOf {
    /// The calling plugin.
    pub plugin: PluginName,
    /// Its `[plugins.NAME.claude]` budget.
    pub budget: Budget,
}

/// Who is asking: the plugin and what its config allows it.
pub struct Asker<'a> {
    /// The plugin.
    pub plugin: &'a PluginName,
    /// Its `[plugins.NAME.claude]` grant.
    pub grant: &'a ClaudeGrant,
    /// How much of a session the API backend sends again.
    pub history: HistoryPolicy,
    /// The chat the call serves, where a tool use is asked about.
    pub chat: Option<i64>,
    /// A task's run, and how long its tool use waits for a person.
    pub run: Option<CallRun>,
    /// Whether the call is a shadow handler's: it waits in its own line
    /// and can ask nobody.
    pub shadow: bool,
    /// Where Claude's text is shown while it is being written, for a call
    /// that streams (`ask-streamed` in a chat that shows it).
    pub draft: Option<&'a draft::Draft>,
    /// The plugin the call is made for, if a tool of the asker's makes it.
    pub on_behalf_of: Option<&'a OnBehalfOf>,
}

impl<'a> Asker<'a> {
    /// Who the gate asks for, in the session `key`.
    fn asking(&self, key: Option<&'a str>) -> Asking<'a> {
        Asking {
            plugin: self.plugin,
            session_key: key,
            chat: self.chat,
            run: self.run,
            shadow: self.shadow,
        }
    }

    /// Who the plugins' tools are called for.
    fn tool_caller(&self) -> tools::ToolCaller {
        tools::ToolCaller {
            plugin: self.plugin.clone(),
            tools_from: self.grant.tools_from.clone(),
            chat: self.chat,
            run: self.run.map(|run| run.id),
        }
    }
}

impl Claude {
    /// The service for `config` (none: every call is `unavailable`), telling
    /// budgets and the credit running down in `alerts_chat`.
    pub fn new(config: Option<ClaudeConfig>, alerts_chat: Option<i64>, db: Database) -> Claude {
        let claude = Claude {
            active: RwLock::new(None),
            db: db.clone(),
            pool: Arc::default(),
            http: reqwest::Client::new(),
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

    /// Asks Claude `prompt` for `asker`: checks the grant and the budgets,
    /// waits for a place in line, asks through the backend, records the
    /// call in the ledger.
    pub async fn ask(
        &self,
        asker: Asker<'_>,
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
        let mut request = Request::resolve(config, asker.grant, prompt, options)?;
        request.attachments = attachments;
        if !asker.grant.tools_from.is_empty() && request.backend != Backend::Api {
            request.plugin_tools = Some(self.tool_pass(&asker)?);
        }
        let deadline = Instant::now() + request.deadline;
        let mut entry = LedgerEntry {
            plugin: asker.plugin.clone(),
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
            on_behalf_of: asker.on_behalf_of.map(|o| o.plugin.clone()),
        };
        if let Err(reason) = self.when_credit_spent(&active, &asker, &mut request).await {
            entry.outcome = CallOutcome::OverBudget;
            entry.error = Some(reason.clone());
            record(&self.db, entry).await;
            return Err(CapabilityError::OverBudget(reason));
        }
        entry.backend = request.backend;
        // The persistent CLI and the API (with `[claude.api] stream`, when no
        // plugin tools are offered) stream their text.
        if matches!(request.backend, Backend::Persistent | Backend::Api) {
            request.draft = asker.draft.cloned();
        }
        // Written as cancelled if the plugin's own deadline drops the call,
        // whether it is still waiting for its place or already asking.
        let unfinished = Unfinished {
            db: self.db.clone(),
            entry: Some(entry.clone()),
            started: StdInstant::now(),
        };
        let (place, budget_left) = match self.admit(&active, &asker, deadline).await {
            Ok(admitted) => admitted,
            Err((outcome, error)) => {
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
        let registration = asker
            .chat
            .filter(|_| !asker.shadow)
            .map(|chat| self.stops.register(chat));
        let unstoppable = stop::Stop::default();
        let stop = registration.as_ref().map_or(&unstoppable, |r| r.stop());
        let result = self
            .dispatch(config, &asker, &request, (&place, budget_left), stop, deadline)
            .await;
        drop(registration);
        unfinished.finished();
        entry.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let answer = settle(&mut entry, result);
        entry.credit = credit::draws(config, entry.backend, entry.spent.api_key_source.as_deref());
        if let Err(CapabilityError::Failed(reason)) = &answer {
            tracing::warn!(plugin = %asker.plugin, backend = %request.backend, "claude call failed: {reason}");
        }
        tracing::info!(
            plugin = %asker.plugin,
            backend = %request.backend,
            model = entry.spent.model.as_deref().unwrap_or("default"),
            cost_usd = entry.spent.cost_usd,
            ms = entry.duration_ms,
            outcome = entry.outcome.as_str(),
            "claude call"
        );
        let drew = entry.credit;
        record(&self.db, entry).await;
        self.tell_levels(&active, &asker, drew).await;
        answer
    }

    /// The pass a CLI process for `asker` reaches its grant's tools with.
    fn tool_pass(&self, asker: &Asker<'_>) -> Result<Arc<tools::ToolPass>, CapabilityError> {
        let broker = self.tools.get().ok_or_else(|| {
            CapabilityError::Unavailable("plugins' tools are not served by this command".into())
        })?;
        let caller = asker.tool_caller();
        broker.pass(&caller).map_err(|e| {
            tracing::error!(plugin = %asker.plugin, "the tools of tools_from cannot be given: {e}");
            CapabilityError::Unavailable(format!("the tools of tools_from cannot be given: {e}"))
        })
    }

    /// What `[claude.credit] then` says, for a call that would draw from a
    /// credit that is spent: `Err` with the reason it is refused (`stop`,
    /// or `api` for a plugin that may not use the API backend or asks for
    /// tools), else the call goes on, rerouted to the API for `api`.
    async fn when_credit_spent(
        &self,
        active: &Active,
        asker: &Asker<'_>,
        request: &mut Request,
    ) -> Result<(), String> {
        let config = &active.config;
        let Some(settings) = config
            .credit
            .filter(|_| credit::draws(config, request.backend, None))
        else {
            return Ok(());
        };
        let (now, zone) = (Utc::now(), host_zone());
        let status = match credit::status(&self.db, &settings, now, zone).await {
            Ok(status) if status.spent() => status,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::error!(plugin = %asker.plugin, "reading the Agent SDK credit failed: {e:#}");
                return Ok(());
            }
        };
        let spent = format!(
            "the Agent SDK credit of ${:.2} is spent until {}",
            settings.monthly_usd,
            status.period.1.with_timezone(&zone).format("%b %-d")
        );
        match settings.then {
            WhenSpent::Stop => Err(format!(
                "{spent}: calls through the claude CLI stop until then (claude.credit.then = \"stop\")"
            )),
            WhenSpent::Api if !asker.grant.allowed_backends(config).contains(&Backend::Api) => Err(format!(
                "{spent}, and plugin `{}`'s grant does not allow the api backend to take over \
                 (claude.credit.then = \"api\")",
                asker.plugin
            )),
            WhenSpent::Api if !request.tools.is_empty() || !request.ask_tools.is_empty() => Err(format!(
                "{spent}, and the api backend that would take over runs no tools (claude.credit.then = \"api\")"
            )),
            WhenSpent::Api => {
                tracing::info!(plugin = %asker.plugin, "{spent}: this call goes to the API backend");
                request.backend = Backend::Api;
                Ok(())
            }
            WhenSpent::Continue => {
                tracing::warn!(plugin = %asker.plugin, "{spent}: the call goes on as extra usage at API rates");
                Ok(())
            }
        }
    }

    /// Tells `[alerts] chat`, once per period, of a budget reaching 80 % and
    /// 100 %, and of the credit (if the call `drew` from it) reaching 50 %,
    /// 80 % and 100 %: each alert names its threshold, and a call that
    /// crosses several of one budget's or the credit's tells the highest.
    async fn tell_levels(&self, active: &Active, asker: &Asker<'_>, drew: bool) {
        let Some(chat) = active.alerts_chat else {
            return;
        };
        let (now, zone) = (Utc::now(), host_zone());
        // Per budget or credit period, the thresholds crossed and what each says.
        let mut crossed: Vec<(String, Vec<(u32, String)>)> = Vec::new();
        match self.budget_levels(active, asker, now, zone).await {
            Ok(levels) => {
                for level in levels {
                    let percent = level.spent / level.limit.max(f64::MIN_POSITIVE) * 100.0;
                    let marks = [80, 100].into_iter().filter(|m| percent >= f64::from(*m));
                    let texts = marks.map(|mark| (mark, level.alert(mark))).collect();
                    crossed.push((format!("budget:{}:{}", level.name, level.period_start), texts));
                }
            }
            Err(e) => tracing::error!(plugin = %asker.plugin, "reading the budgets failed: {e:#}"),
        }
        if let (true, Some(settings)) = (drew, active.config.credit) {
            match credit::status(&self.db, &settings, now, zone).await {
                Ok(status) => {
                    let marks = [50, 80, 100]
                        .into_iter()
                        .filter(|m| status.percent_used() >= f64::from(*m));
                    let texts = marks
                        .map(|mark| (mark, status.alert(settings.then, mark, now, zone)))
                        .collect();
                    crossed.push((credit::period_key(&status), texts));
                }
                Err(e) => tracing::error!("reading the Agent SDK credit failed: {e:#}"),
            }
        }
        for (key, texts) in crossed.into_iter().filter(|(_, texts)| !texts.is_empty()) {
            let alerts = texts
                .into_iter()
                .map(|(mark, text)| {
                    let alert = alerts::Alert {
                        chat,
                        text,
                        schedule: None,
                        urgent: mark == 100,
                    };
                    (mark, alert)
                })
                .collect();
            if let Err(e) = alerts::highest_once(&self.db, key, alerts).await {
                tracing::error!("failed to queue a Claude spending alert: {e:#}");
            }
        }
    }

    /// The budgets that count `asker`'s call: its own, the global ones, and
    /// those of the plugin it is made for, if any.
    async fn budget_levels(
        &self,
        active: &Active,
        asker: &Asker<'_>,
        now: chrono::DateTime<Utc>,
        zone: chrono_tz::Tz,
    ) -> anyhow::Result<Vec<ledger::BudgetLevel>> {
        let mut levels = ledger::budget_levels(
            &self.db,
            asker.plugin,
            asker.grant.budget,
            active.config.budget,
            now,
            zone,
        )
        .await?;
        if let Some(caller) = asker.on_behalf_of {
            let global = Budget::default();
            levels.extend(
                ledger::budget_levels(&self.db, &caller.plugin, caller.budget, global, now, zone).await?,
            );
        }
        Ok(levels)
    }

    /// Waits for a place in line (until `deadline`), then checks the
    /// budgets — in that order, so a call that waited sees what the calls
    /// before it spent. Returns the place and how much the tightest budget
    /// has left, or the ledger outcome and the error of a refusal.
    async fn admit(
        &self,
        active: &Active,
        asker: &Asker<'_>,
        deadline: Instant,
    ) -> Result<(Place, Option<f64>), (CallOutcome, CapabilityError)> {
        let line = if asker.shadow {
            &active.shadow_permits
        } else {
            &active.permits
        };
        let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, line.clone().acquire_owned()).await else {
            return Err((CallOutcome::TimedOut, CapabilityError::TimedOut));
        };
        let budget = self
            .budget_levels(active, asker, Utc::now(), host_zone())
            .await
            .map(ledger::BudgetStatus::of);
        match budget {
            Err(e) => {
                tracing::error!(plugin = %asker.plugin, "checking the budgets failed: {e:#}");
                let error = CapabilityError::Failed("checking the budgets failed".into());
                Err((CallOutcome::Failed, error))
            }
            Ok(ledger::BudgetStatus {
                spent: Some(reason), ..
            }) => Err((CallOutcome::OverBudget, CapabilityError::OverBudget(reason))),
            Ok(status) => Ok((
                Place {
                    line: line.clone(),
                    permit: std::sync::Mutex::new(Some(permit)),
                },
                status.left,
            )),
        }
    }

    async fn dispatch(
        &self,
        config: &ClaudeConfig,
        asker: &Asker<'_>,
        request: &Request,
        (place, budget_left): (&Place, Option<f64>),
        stop: &stop::Stop,
        deadline: Instant,
    ) -> Result<Completion, Failure> {
        let key = request.session_key.as_deref();
        let db_failure = |e: anyhow::Error| {
            tracing::error!(plugin = %asker.plugin, "claude session lookup failed: {e:#}");
            Failure::failed("the host could not read its session store".into())
        };
        match request.backend {
            Backend::Api => {
                let transcript = match key {
                    Some(key) => sessions::transcript(&self.db, asker.plugin, key, asker.history)
                        .await
                        .map_err(db_failure)?,
                    None => Vec::new(),
                };
                let caller = asker.tool_caller();
                let broker = self.tools.get().filter(|_| !caller.tools_from.is_empty());
                let offered = match broker {
                    Some(broker) => broker.offer(&caller).map_err(|e| {
                        Failure::failed(format!("the tools of tools_from cannot be given: {e}"))
                    })?,
                    None => Vec::new(),
                };
                let (mut outright, mut asked_about) = (Vec::new(), Vec::new());
                for tool in &offered {
                    let names = &tool.names;
                    match request.ask_plugin_tools.contains(&names.grant_name) {
                        true => asked_about.push(names.cli_name.clone()),
                        false => outright.push(names.cli_name.clone()),
                    }
                }
                let gate = permission::Gate {
                    approvals: &self.approvals,
                    asking: asker.asking(key),
                    outright: &outright,
                    ask: &asked_about,
                    place,
                    stop,
                };
                let api_tools = broker.map(|broker| api::ApiTools {
                    offered,
                    caller,
                    broker: broker.as_ref(),
                    gate: &gate,
                    max_turns: request.max_turns.unwrap_or(api::DEFAULT_TOOL_TURNS),
                });
                let asked = api::ask(
                    &self.http,
                    config,
                    request,
                    &transcript,
                    api_tools.as_ref(),
                    deadline,
                );
                let completion = tokio::select! {
                    completion = asked => completion?,
                    () = stop.requested() => return Err(Failure::failed(stop::STOPPED.into())),
                };
                if let Some(key) = key {
                    let exchange = (request.prompt.as_str(), completion.text.as_str());
                    let stored =
                        sessions::append_exchange(&self.db, asker.plugin, key, exchange, asker.history).await;
                    log_unstored(asker.plugin, key, stored);
                }
                Ok(completion)
            }
            Backend::Cli | Backend::Persistent => {
                let resume = match key {
                    Some(key) => sessions::session_id(&self.db, asker.plugin, key)
                        .await
                        .map_err(db_failure)?,
                    None => None,
                };
                let (outright, asked_about) = request.cli_tools();
                let (outright, asked_about) = (&outright, &asked_about);
                let ask = |resume: Option<String>| async move {
                    if request.backend == Backend::Cli {
                        // Dropping the call kills the CLI's process group.
                        let asked = oneshot::ask(config, request, resume.as_deref(), budget_left, deadline);
                        tokio::select! {
                            completion = asked => completion,
                            () = stop.requested() => Err(Failure::failed(stop::STOPPED.into())),
                        }
                    } else {
                        let gate = permission::Gate {
                            approvals: &self.approvals,
                            asking: asker.asking(key),
                            outright,
                            ask: asked_about,
                            place,
                            stop,
                        };
                        self.pool
                            .ask(config, asker.plugin, request, resume, &gate, deadline)
                            .await
                    }
                };
                let completion = match ask(resume.clone()).await {
                    // The CLI's own session store lost it (a wiped home, another
                    // machine): start the conversation afresh rather than fail forever.
                    Err(Failure::Failed { reason, .. })
                        if resume.is_some() && reason.contains(SESSION_NOT_FOUND) =>
                    {
                        tracing::warn!(plugin = %asker.plugin, session_key = key, "claude no longer has the session: starting a new one");
                        ask(None).await?
                    }
                    result => result?,
                };
                if let (Some(key), Some(id)) = (key, completion.session_id.as_deref()) {
                    let stored = sessions::remember(&self.db, asker.plugin, key, id).await;
                    log_unstored(asker.plugin, key, stored);
                }
                Ok(completion)
            }
        }
    }

    /// Forgets `plugin`'s session `key` (the bot's `/reset`): its stored
    /// session, its transcript and its live process.
    pub async fn forget(&self, plugin: &PluginName, key: &str) -> anyhow::Result<()> {
        self.pool.forget(plugin, key).await;
        self.approvals.forget(plugin, key).await?;
        sessions::forget(&self.db, plugin, key).await
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
        self.pool.stop_all().await;
        if let Some(tools) = self.tools.get() {
            tools.close();
        }
    }

    /// Process ids of the live persistent processes (the bot's `/status`).
    pub async fn live_processes(&self) -> Vec<u32> {
        self.pool.live_pids().await
    }
}

/// Writes `entry` to the ledger; a failure is logged (the call's answer
/// still goes to the plugin).
async fn record(db: &Database, entry: LedgerEntry) {
    let plugin = entry.plugin.clone();
    if let Err(e) = ledger::record(db, entry).await {
        tracing::error!(%plugin, "failed to write the cost ledger: {e:#}");
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

/// Logs a session that could not be stored: the answer still goes to the
/// plugin, the next call with the key starts a new session.
fn log_unstored(plugin: &PluginName, key: &str, stored: anyhow::Result<()>) {
    if let Err(e) = stored {
        tracing::error!(%plugin, session_key = key, "failed to store the claude session: {e:#}");
    }
}

/// A call under way; if it is dropped before it finishes (the plugin's own
/// deadline cancelled it), it is recorded as `cancelled`, so the ledger
/// shows every call that was made.
struct Unfinished {
    db: Database,
    entry: Option<LedgerEntry>,
    started: StdInstant,
}

impl Unfinished {
    fn finished(mut self) {
        self.entry = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(mut entry) = self.entry.take() else {
            return;
        };
        entry.outcome = CallOutcome::Cancelled;
        entry.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        entry.error = Some("the plugin's call ended before the answer".into());
        tracing::warn!(plugin = %entry.plugin, backend = %entry.backend, "claude call cancelled by the plugin's deadline");
        let db = self.db.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { record(&db, entry).await });
        }
    }
}
