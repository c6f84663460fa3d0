//! The host: the data directory, the database, the plugin loader and the
//! registry, and the operations the CLI and the serving parts drive: load and
//! reload plugins, run a task, hand a message to a chat plugin. It knows
//! nothing of what drives it: triggers reach it through an
//! [`Invoker`](crate::triggers::Invoker), and [`crate::serve`] wires them,
//! hot reload and the control channel around it.

pub mod requests;
pub mod runs;
pub mod tool_calls;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use chrono::Utc;

use crate::alerts;
use crate::backup;
use crate::capabilities::attachments::Attachment;
use crate::capabilities::claude::Claude;
use crate::capabilities::http::records::Origin;
use crate::capabilities::notify::telegram::TelegramSender;
use crate::capabilities::MessageIo;
use crate::capabilities::{history, Event, Services};
use crate::capabilities::{CallContext, CallRun};
use crate::config::{Config, Grant, PluginConfig, PluginName, World};
use crate::db::{self, Database};
use crate::os::regular_file;
use crate::plugin::cache::CacheFiles;
use crate::plugin::call::{AnswerRecord, CallReport, HandlerRole, Invocation, Message, Reply, WarmInstance};
use crate::plugin::hash::ContentHash;
use crate::plugin::loader::PluginLoader;
use crate::plugin::loads::{self, LoadOutcome, NewLoad};
use crate::plugin::registry::PluginRegistry;
use crate::plugin::{LoadError, Plugin};
use runs::{FollowUp, RunOutcome, RunRecord, RunStart, StartedBy};

pub use crate::db::DATABASE_FILE;

/// One run of a task plugin, as a trigger asks for it.
pub struct TaskRun<'a> {
    /// The task plugin.
    pub plugin: &'a str,
    /// The schedule it runs for, if any.
    pub schedule: Option<&'a str>,
    /// What started it.
    pub trigger: StartedBy,
    /// What the plugin is given.
    pub invocation: Invocation,
    /// What started it, beyond the invocation: a webhook request.
    pub event: Option<Arc<Event>>,
    /// Its own deadline; the plugin's `timeout` without one.
    pub timeout: Option<Duration>,
    /// The schedules its end starts (queued with its outcome).
    pub follow_ups: &'a [FollowUp],
}

/// A running Mission Control host.
pub struct Host {
    config: RwLock<Arc<Config>>,
    loader: PluginLoader,
    services: Services,
    registry: Arc<PluginRegistry>,
    /// Whether the plugins are still being loaded at start (see
    /// [`Host::begin_loading`]).
    loading: tokio::sync::watch::Sender<bool>,
    /// The host's own tools (see [`tool_calls::HostTools`]).
    host_tools: std::sync::OnceLock<Arc<dyn tool_calls::HostTools>>,
}

impl Host {
    /// Opens the data directory and the database named by `config`. Loads no
    /// plugin yet.
    pub async fn open(config: Config) -> anyhow::Result<Host> {
        let db = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || backup::open_database(&config))
                .await
                .context("opening the database panicked")??
        };
        let loader = PluginLoader::open(&config)?;
        let alerts_chat = config.alerts.as_ref().map(|a| a.chat);
        let claude = Arc::new(Claude::new(config.claude.clone(), alerts_chat, db.clone()));
        // The token is read once, here; without it the bot and `notify` are off.
        let telegram = match &config.telegram {
            Some(telegram) => match std::env::var(&telegram.token_env) {
                Ok(token) => Some(Arc::new(TelegramSender::new(telegram, token)?)),
                Err(_) => None,
            },
            None => None,
        };
        Ok(Host {
            config: RwLock::new(Arc::new(config)),
            loader,
            services: Services {
                db,
                claude,
                telegram,
                log_rates: Default::default(),
                wakeups: Default::default(),
                presses: Default::default(),
            },
            registry: Arc::default(),
            loading: tokio::sync::watch::Sender::new(false),
            host_tools: std::sync::OnceLock::new(),
        })
    }

    /// Says the plugins are about to be loaded, before what takes requests
    /// in (the page, the webhook listener) starts, so that a run asked for
    /// meanwhile waits in [`Host::loaded`] until [`Host::load_all`] ends.
    pub fn begin_loading(&self) {
        self.loading.send_replace(true);
    }

    /// Whether the plugins are still being loaded at start.
    pub fn is_loading(&self) -> bool {
        *self.loading.borrow()
    }

    /// Returns once the plugins are loaded (at once on a host that is not
    /// loading them).
    pub async fn loaded(&self) {
        let mut loading = self.loading.subscribe();
        let _ = loading.wait_for(|loading| !loading).await;
    }

    /// The configuration the host runs with now.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.services.db
    }

    /// What plugin calls draw on: the database and the way to Claude.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The way to Claude.
    pub fn claude(&self) -> &Claude {
        &self.services.claude
    }

    /// The plugins loaded so far.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    /// Removes the compiled code that no loaded plugin uses and nobody has
    /// used for `unused_for`; returns what it removed.
    pub async fn sweep_compile_cache(&self, unused_for: Duration) -> anyhow::Result<CacheFiles> {
        let in_use: HashSet<ContentHash> = self.registry.list().iter().map(|p| p.hash.clone()).collect();
        let cache = self.loader.cache().clone();
        let swept =
            tokio::task::spawn_blocking(move || cache.sweep(&in_use, unused_for, SystemTime::now())).await?;
        Ok(swept?)
    }

    /// Loads every configured plugin. One that fails is logged and left out,
    /// so the others are still served; the failures are returned.
    pub async fn load_all(&self) -> Vec<LoadError> {
        let mut failures = Vec::new();
        for config in self.config().plugins.clone() {
            let name = config.name.to_string();
            let load = match self.load_checked(config).await {
                Ok(plugin) => {
                    log_loaded(&plugin);
                    let load = NewLoad {
                        new_hash: Some(plugin.hash.to_string()),
                        compile_time: Some(plugin.compile_time),
                        ..NewLoad::new(&name, LoadOutcome::Loaded)
                    };
                    self.registry.insert(plugin);
                    load
                }
                Err(e) => {
                    tracing::error!("{e}");
                    let load = NewLoad {
                        error: Some(e.to_string()),
                        ..NewLoad::new(&name, LoadOutcome::Refused)
                    };
                    failures.push(e);
                    load
                }
            };
            if let Err(e) = loads::record(self.db(), load).await {
                tracing::error!(plugin = name, "failed to record the load: {e:#}");
            }
        }
        self.loading.send_replace(false);
        failures
    }

    /// Loads the plugin `name` again from its file and current config and,
    /// if it compiles and implements its world, swaps it in for the next
    /// call; calls already running finish on the old version. A refused
    /// file leaves the old version serving. Recorded and logged either way.
    pub async fn reload_plugin(&self, name: &str) -> anyhow::Result<LoadOutcome> {
        let config = self.config();
        let plugin_config = config
            .plugin(name)
            .ok_or_else(|| anyhow!("no plugin named `{name}` in {}", config.file.display()))?
            .clone();
        let current = self.registry.get(name);
        let old_hash = current.as_ref().map(|p| p.hash.to_string());
        let file = plugin_config.wasm.clone();
        if !file.exists() && current.is_some() {
            tracing::warn!(plugin = name, file = %file.display(), "plugin file is gone: the last version keeps serving");
            let load = NewLoad {
                old_hash,
                ..NewLoad::new(name, LoadOutcome::Missing)
            };
            loads::record(self.db(), load).await?;
            return Ok(LoadOutcome::Missing);
        }
        let (outcome, load) = match self.load_checked(plugin_config).await {
            Ok(plugin) => {
                if let Some(current) = current.filter(|c| c.hash == plugin.hash && c.config == plugin.config)
                {
                    tracing::debug!(
                        plugin = name,
                        hash = current.hash.short(),
                        "unchanged: nothing to reload"
                    );
                    let hash = Some(current.hash.to_string());
                    let load = NewLoad {
                        old_hash: hash.clone(),
                        new_hash: hash,
                        ..NewLoad::new(name, LoadOutcome::Unchanged)
                    };
                    loads::record(self.db(), load).await?;
                    return Ok(LoadOutcome::Unchanged);
                }
                let load = NewLoad {
                    old_hash: old_hash.clone(),
                    new_hash: Some(plugin.hash.to_string()),
                    compile_time: Some(plugin.compile_time),
                    ..NewLoad::new(name, LoadOutcome::Reloaded)
                };
                let (new, compile_time) = (plugin.hash.short().to_owned(), plugin.compile_time);
                // In the registry before it says so: the next call is the new version's.
                self.registry.insert(plugin);
                tracing::info!(
                    plugin = name,
                    old = old_hash.as_deref().map_or("none", |h| &h[..12]),
                    new,
                    compile_time = ?compile_time,
                    "plugin reloaded"
                );
                (LoadOutcome::Reloaded, load)
            }
            Err(e) => {
                tracing::error!("reload refused, the previous version keeps serving: {e}");
                let new_hash = regular_file::read(&file, regular_file::MAX_COMPONENT)
                    .ok()
                    .map(|bytes| ContentHash::of(&bytes).to_string());
                self.tell_refused(name, new_hash.as_deref(), &e.to_string()).await;
                let load = NewLoad {
                    old_hash,
                    new_hash,
                    error: Some(e.to_string()),
                    ..NewLoad::new(name, LoadOutcome::Refused)
                };
                (LoadOutcome::Refused, load)
            }
        };
        loads::record(self.db(), load).await?;
        Ok(outcome)
    }

    /// Tells `[alerts] chat` that the new version (`hash`) of `plugin` was
    /// refused and the old one serves on — once per version, however often
    /// its file is touched.
    async fn tell_refused(&self, plugin: &str, hash: Option<&str>, error: &str) {
        let Some(config) = self.config().alerts.clone() else {
            return;
        };
        match loads::latest(self.db(), plugin).await {
            Ok((Some(last), _))
                if last.outcome == LoadOutcome::Refused && last.new_hash.as_deref() == hash =>
            {
                return
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(plugin, "failed to read the plugin's loads: {e:#}"),
        }
        let error: String = error.chars().take(600).collect();
        let alert = alerts::Alert {
            chat: config.chat,
            text: format!(
                "🧩 The new version of plugin {plugin} was refused; the old one keeps serving.\n{error}"
            ),
            schedule: None,
            urgent: false,
        };
        if let Err(e) = alerts::queue_now(self.db(), alert).await {
            tracing::error!(plugin, "failed to queue the refused-reload alert: {e:#}");
        }
    }

    /// Switches to `new` config: plugins whose config changed are reloaded
    /// with it, new ones loaded, removed ones dropped. Settings that need a
    /// restart are left as they were; the returned notes name them.
    pub async fn apply_config(&self, mut new: Config) -> Vec<String> {
        let old = self.config();
        let mut notes = Vec::new();
        if new.data_dir != old.data_dir {
            notes.push(format!(
                "data_dir changed to {}: restart to apply",
                new.data_dir.display()
            ));
            new.data_dir = old.data_dir.clone();
        }
        if new.schedules_dir != old.schedules_dir {
            notes.push(format!(
                "schedules_dir changed to {}: restart to apply",
                new.schedules_dir.display()
            ));
            new.schedules_dir = old.schedules_dir.clone();
        }
        if new.claude != old.claude {
            notes.push("[claude] changed: applied to the next call".to_owned());
            self.services
                .claude
                .set_config(new.claude.clone(), new.alerts.as_ref().map(|a| a.chat));
        }
        if new.shutdown_grace != old.shutdown_grace {
            notes.push("shutdown_grace changed: restart to apply".to_owned());
            new.shutdown_grace = old.shutdown_grace;
        }
        let changed: Vec<String> = new
            .plugins
            .iter()
            .filter(|p| old.plugin(p.name.as_str()) != Some(*p))
            .map(|p| p.name.to_string())
            .collect();
        let removed: Vec<String> = old
            .plugins
            .iter()
            .filter(|p| new.plugin(p.name.as_str()).is_none())
            .map(|p| p.name.to_string())
            .collect();
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        for name in removed {
            self.registry.remove(&name);
            notes.push(format!("plugin `{name}` removed"));
        }
        for name in changed {
            match self.reload_plugin(&name).await {
                Ok(outcome) => notes.push(format!("plugin `{name}`: {outcome:?}")),
                Err(e) => notes.push(format!("plugin `{name}`: {e:#}")),
            }
        }
        notes
    }

    /// Loads the plugin named `name`, and the tools plugins its Claude
    /// grant names in `tools_from`.
    pub async fn load(&self, name: &str) -> anyhow::Result<Arc<Plugin>> {
        let config = self.config();
        let plugin_config = config
            .plugin(name)
            .ok_or_else(|| anyhow!("no plugin named `{name}` in {}", config.file.display()))?;
        for tools in &plugin_config.claude.tools_from {
            if let Some(tools) = config.plugin(tools.as_str()) {
                let plugin = self.load_checked(tools.clone()).await?;
                self.registry.insert(plugin);
            }
        }
        let plugin = self.load_checked(plugin_config.clone()).await?;
        log_loaded(&plugin);
        self.registry.insert(plugin);
        Ok(self.registry.get(name).expect("just inserted"))
    }

    /// Loads the plugin `config` describes; a tools plugin's tool list is
    /// read and checked too, and one that cannot be refuses the version.
    async fn load_checked(&self, config: PluginConfig) -> Result<Plugin, LoadError> {
        let mut plugin = self.loader.load(config).await?;
        if plugin.config.world == World::Tools {
            plugin.tools = plugin
                .list_tools(&self.services)
                .await
                .map_err(|reason| LoadError::Tools {
                    plugin: plugin.config.name.clone(),
                    file: plugin.config.wasm.clone(),
                    reason,
                })?;
        }
        Ok(plugin)
    }

    fn plugin(&self, name: &str) -> anyhow::Result<Arc<Plugin>> {
        self.registry
            .get(name)
            .ok_or_else(|| anyhow!("plugin `{name}` is not loaded"))
    }

    /// Runs the task plugin `name` once, now, with its own config and
    /// deadline, and records the run.
    pub async fn run_task(&self, name: &str, trigger: StartedBy) -> anyhow::Result<RunRecord> {
        let plugin = self.plugin(name)?;
        let invocation = Invocation {
            name: name.to_owned(),
            scheduled_at: Utc::now().timestamp_millis(),
            attempt: 1,
            config: plugin.config.values.clone(),
        };
        self.run(TaskRun {
            plugin: name,
            schedule: None,
            trigger,
            invocation,
            event: None,
            timeout: None,
            follow_ups: &[],
        })
        .await
    }

    /// Runs a task plugin once, as `run` says, under its limits (the
    /// run's own deadline, if it has one), and records the run.
    pub async fn run(&self, run: TaskRun<'_>) -> anyhow::Result<RunRecord> {
        let TaskRun {
            plugin,
            schedule,
            trigger,
            invocation,
            event,
            timeout,
            follow_ups,
        } = run;
        let scheduled_at = db::datetime(invocation.scheduled_at);
        let start = RunStart {
            plugin,
            schedule,
            trigger,
            scheduled_at,
            attempt: invocation.attempt,
        };
        let id = runs::start(self.db(), start).await?;
        let Some(loaded) = self.registry.get(plugin) else {
            let error = format!("plugin `{plugin}` is not loaded (its load error is in the host's log)");
            tracing::error!(run = id, "{error}");
            return runs::abandon(self.db(), id, RunOutcome::NotLoaded, error, follow_ups).await;
        };
        let timeout = timeout.unwrap_or(loaded.config.limits.timeout);
        // A task's Claude tool use is asked about in the alerts chat; with
        // none, nobody can be asked (the wait is moot).
        let alerts = self.config().alerts.clone();
        let context = CallContext {
            chat: alerts.as_ref().map(|a| a.chat),
            run: Some(CallRun {
                id,
                approval_wait: alerts.map_or(Duration::ZERO, |a| a.approval_wait),
            }),
            event,
            ..CallContext::default()
        };
        let report = loaded
            .run_task(&self.services, &invocation, context, timeout, Origin::Run(id))
            .await?;
        let record = runs::finish(self.db(), id, &report, follow_ups).await?;
        match &report.result {
            Ok(_) => tracing::info!(plugin, schedule, run = id, duration = ?report.duration, "run succeeded"),
            Err(e) => {
                tracing::warn!(plugin, schedule, run = id, duration = ?report.duration, "run did not succeed: {e}")
            }
        }
        Ok(record)
    }

    /// Hands `message` to the chat plugin `name`. Once the plugin has
    /// answered, one transaction records the exchange in the conversation
    /// (keyed by the chat id) if the plugin has the `history` grant, and
    /// whatever `record` writes: both are there after a crash, or neither.
    /// `warm` is the chat's kept instance, for the `warm` instance mode.
    pub async fn chat(
        &self,
        name: &str,
        message: &Message,
        io: MessageIo,
        warm: Option<&mut Option<WarmInstance>>,
        record: Option<AnswerRecord>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        self.handle(name, message, io, HandlerRole::Live, warm, record)
            .await
    }

    /// Hands `message` to the chat plugin `name` as a shadow handler: like
    /// [`Host::chat`] (its own history, its own Claude sessions and budget),
    /// but its Claude calls wait in their own line and cannot ask anyone
    /// about a tool use. It reads the message's `attachments` as the live
    /// handler does, but shows no text while Claude writes and sends no
    /// files. Its reply is the caller's to record, never to send.
    pub async fn shadow_chat(
        &self,
        name: &str,
        message: &Message,
        attachments: Arc<Vec<Attachment>>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        let io = MessageIo {
            attachments,
            ..MessageIo::default()
        };
        self.handle(name, message, io, HandlerRole::Shadow, None, None)
            .await
    }

    async fn handle(
        &self,
        name: &str,
        message: &Message,
        io: MessageIo,
        role: HandlerRole,
        warm: Option<&mut Option<WarmInstance>>,
        record: Option<AnswerRecord>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        let plugin = self.plugin(name)?;
        let report = plugin
            .handle_message(&self.services, message, io, role, warm)
            .await?;
        let Ok(reply) = &report.result else {
            return Ok(report);
        };
        let with_history = plugin.config.grants.contains(&Grant::History);
        if !with_history && record.is_none() {
            return Ok(report);
        }
        let (plugin, reply) = (plugin.name().clone(), reply.clone());
        let (conversation, text) = (message.chat_id.to_string(), message.text.clone());
        self.db()
            .call(move |c| {
                let transaction = c.transaction()?;
                if with_history {
                    let answer = reply.as_ref().map(|r| r.text.as_str());
                    history::record_exchange(&transaction, &plugin, &conversation, &text, answer)?;
                }
                if let Some(record) = record {
                    record(&transaction, reply.as_ref())?;
                }
                transaction.commit()
            })
            .await
            .context("failed to record the plugin's answer")?;
        Ok(report)
    }

    /// Forgets `plugin`'s `conversation`: its history, and the Claude
    /// session (and persistent process) behind it.
    pub async fn forget(&self, plugin: &PluginName, conversation: &str) -> anyhow::Result<()> {
        history::forget(self.db(), plugin, conversation).await?;
        self.claude().forget(plugin, conversation).await
    }
}

fn log_loaded(plugin: &Plugin) {
    tracing::info!(
        plugin = %plugin.name(),
        world = %plugin.config.world,
        hash = plugin.hash.short(),
        cache = ?plugin.cache,
        compile_time = ?plugin.compile_time,
        "plugin loaded"
    );
}
