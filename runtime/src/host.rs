//! The host: the data directory, the database, the plugin loader and the
//! registry, and the operations the CLI, the scheduler and the bot drive:
//! load and reload plugins, run a task, hand a message to a chat plugin,
//! serve until shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::call::{CallReport, Invocation, Message, Reply, WarmInstance};
use crate::capabilities::{history, Services};
use crate::claude::Claude;
use crate::clock::SystemClock;
use crate::config::{Config, Grant};
use crate::control;
use crate::db::Database;
use crate::hot_reload::HotReload;
use crate::loader::PluginLoader;
use crate::plugin::{ContentHash, LoadError, Plugin};
use crate::plugin_loads::{self, LoadOutcome, NewLoad};
use crate::registry::PluginRegistry;
use crate::runs::{self, RunRecord, RunStart, Trigger};
use crate::schedule::{self, Schedule};
use crate::scheduler::{ScheduleRunner, Scheduler};
use crate::telegram::{TelegramBot, TelegramSender};

/// The name of the SQLite file in the data directory.
pub const DATABASE_FILE: &str = "mission.db";

/// A running Mission Control host.
pub struct Host {
    config: RwLock<Arc<Config>>,
    loader: PluginLoader,
    services: Services,
    registry: Arc<PluginRegistry>,
}

impl Host {
    /// Opens the data directory and the database named by `config`. Loads no
    /// plugin yet.
    pub async fn open(config: Config) -> anyhow::Result<Host> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "failed to create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let db = Database::open(&config.data_dir.join(DATABASE_FILE))?;
        let loader = PluginLoader::open(&config)?;
        let claude = Arc::new(Claude::new(config.claude.clone(), db.clone()));
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
            services: Services { db, claude, telegram },
            registry: Arc::default(),
        })
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

    /// Loads every configured plugin. One that fails is logged and left out,
    /// so the others are still served; the failures are returned.
    pub async fn load_all(&self) -> Vec<LoadError> {
        let mut failures = Vec::new();
        for config in self.config().plugins.clone() {
            let name = config.name.to_string();
            let load = match self.loader.load(config).await {
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
            if let Err(e) = plugin_loads::record(self.db(), load).await {
                tracing::error!(plugin = name, "failed to record the load: {e:#}");
            }
        }
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
            plugin_loads::record(self.db(), load).await?;
            return Ok(LoadOutcome::Missing);
        }
        let (outcome, load) = match self.loader.load(plugin_config).await {
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
                    plugin_loads::record(self.db(), load).await?;
                    return Ok(LoadOutcome::Unchanged);
                }
                tracing::info!(
                    plugin = name,
                    old = old_hash.as_deref().map_or("none", |h| &h[..12]),
                    new = plugin.hash.short(),
                    compile_time = ?plugin.compile_time,
                    "plugin reloaded"
                );
                let load = NewLoad {
                    old_hash,
                    new_hash: Some(plugin.hash.to_string()),
                    compile_time: Some(plugin.compile_time),
                    ..NewLoad::new(name, LoadOutcome::Reloaded)
                };
                self.registry.insert(plugin);
                (LoadOutcome::Reloaded, load)
            }
            Err(e) => {
                tracing::error!("reload refused, the previous version keeps serving: {e}");
                let new_hash = std::fs::read(&file)
                    .ok()
                    .map(|bytes| ContentHash::of(&bytes).to_string());
                let load = NewLoad {
                    old_hash,
                    new_hash,
                    error: Some(e.to_string()),
                    ..NewLoad::new(name, LoadOutcome::Refused)
                };
                (LoadOutcome::Refused, load)
            }
        };
        plugin_loads::record(self.db(), load).await?;
        Ok(outcome)
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
        if new.telegram != old.telegram {
            notes.push("[telegram] changed: restart to apply".to_owned());
            new.telegram = old.telegram.clone();
        }
        if new.claude != old.claude {
            notes.push("[claude] changed: applied to the next call".to_owned());
            self.services.claude.set_config(new.claude.clone());
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

    /// Loads the one plugin named `name`.
    pub async fn load(&self, name: &str) -> anyhow::Result<Arc<Plugin>> {
        let config = self.config();
        let plugin_config = config
            .plugin(name)
            .ok_or_else(|| anyhow!("no plugin named `{name}` in {}", config.file.display()))?;
        let plugin = self.loader.load(plugin_config.clone()).await?;
        log_loaded(&plugin);
        self.registry.insert(plugin);
        Ok(self.registry.get(name).expect("just inserted"))
    }

    fn plugin(&self, name: &str) -> anyhow::Result<Arc<Plugin>> {
        self.registry
            .get(name)
            .ok_or_else(|| anyhow!("plugin `{name}` is not loaded"))
    }

    /// Runs the task plugin `name` once, now, with its own config and
    /// deadline, and records the run.
    pub async fn run_task(&self, name: &str, trigger: Trigger) -> anyhow::Result<RunRecord> {
        let plugin = self.plugin(name)?;
        let invocation = Invocation {
            name: name.to_owned(),
            scheduled_at: Utc::now().timestamp_millis(),
            attempt: 1,
            config: plugin.config.values.clone(),
        };
        self.run_recorded(name, None, trigger, invocation, None).await
    }

    /// Runs attempt `attempt` of `schedule` for its due time `due`, and
    /// records it.
    pub async fn run_scheduled(
        &self,
        schedule: &Schedule,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: Trigger,
    ) -> anyhow::Result<RunRecord> {
        let invocation = Invocation {
            name: schedule.name.clone(),
            scheduled_at: due.timestamp_millis(),
            attempt,
            config: schedule.values.clone(),
        };
        self.run_recorded(
            &schedule.plugin,
            Some(&schedule.name),
            trigger,
            invocation,
            schedule.timeout,
        )
        .await
    }

    async fn run_recorded(
        &self,
        plugin: &str,
        schedule: Option<&str>,
        trigger: Trigger,
        invocation: Invocation,
        timeout: Option<Duration>,
    ) -> anyhow::Result<RunRecord> {
        let scheduled_at = DateTime::from_timestamp_millis(invocation.scheduled_at).unwrap_or_default();
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
            return runs::abandon(self.db(), id, "not_loaded", error).await;
        };
        let timeout = timeout.unwrap_or(loaded.config.limits.timeout);
        let report = loaded.run_task(&self.services, &invocation, timeout).await?;
        let record = runs::finish(self.db(), id, &report).await?;
        match &report.result {
            Ok(_) => tracing::info!(plugin, schedule, run = id, duration = ?report.duration, "run succeeded"),
            Err(e) => {
                tracing::warn!(plugin, schedule, run = id, duration = ?report.duration, "run did not succeed: {e}")
            }
        }
        Ok(record)
    }

    /// Hands `message` to the chat plugin `name`. With the `history` grant,
    /// once the plugin has answered, the message and the reply are recorded
    /// in the conversation (keyed by the chat id), so the plugin need not do
    /// it and a message handled twice (after a crash) is recorded once.
    /// `warm` is the chat's kept instance, for the `warm` instance mode.
    pub async fn chat(
        &self,
        name: &str,
        message: &Message,
        warm: Option<&mut Option<WarmInstance>>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        let plugin = self.plugin(name)?;
        let report = plugin.handle_message(&self.services, message, warm).await?;
        if let (true, Ok(reply)) = (plugin.config.grants.contains(&Grant::History), &report.result) {
            let conversation = message.chat_id.to_string();
            history::record(
                self.db(),
                plugin.name(),
                &conversation,
                history::Role::User,
                &message.text,
            )
            .await?;
            if let Some(reply) = reply {
                history::record(
                    self.db(),
                    plugin.name(),
                    &conversation,
                    history::Role::Assistant,
                    &reply.text,
                )
                .await?;
            }
        }
        Ok(report)
    }

    /// The schedules in the schedules directory; each invalid file is logged
    /// and left out, so the others still run.
    pub fn schedules(&self) -> Vec<Schedule> {
        let (schedules, errors) = schedule::load_all(&self.config(), schedule::host_zone());
        for error in errors {
            tracing::error!("schedule refused: {error}");
        }
        schedules
    }

    /// A scheduler for this host's schedules, driven by the system clock.
    pub fn scheduler(self: &Arc<Self>) -> Scheduler {
        Scheduler::new(
            self.schedules(),
            Arc::new(SystemClock),
            Arc::new(HostRunner(self.clone())),
            self.db().clone(),
            self.config().shutdown_grace,
        )
    }

    /// Serves until `shutdown` completes: records runs a killed host left
    /// behind as interrupted, then runs the scheduler and hot reload.
    pub async fn serve(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let interrupted = runs::interrupt_running(self.db()).await?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "runs left running by a stopped host recorded as interrupted"
            );
        }
        control::finish_abandoned_requests(self.db()).await?;
        let mut scheduler = self.scheduler();
        let schedule_changes = scheduler.changes();
        let reload = HotReload::start(self.clone(), schedule_changes)?;
        let bot = self.telegram_bot();
        let (stop, stopped) = watch::channel(());
        let until_stopped = |mut stopped: watch::Receiver<()>| async move {
            let _ = stopped.changed().await;
        };
        let mut parts = JoinSet::new();
        parts.spawn(scheduler.run(until_stopped(stopped.clone())));
        parts.spawn(reload.run(until_stopped(stopped.clone())));
        if let Some(bot) = bot {
            parts.spawn(bot.run(self.config().shutdown_grace, until_stopped(stopped.clone())));
        }
        tracing::info!(
            plugins = self.registry.list().len(),
            config = %self.config().file.display(),
            "mission control is up"
        );
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(());
        while let Some(part) = parts.join_next().await {
            if let Err(e) = part {
                tracing::error!("a part of the host panicked: {e}");
            }
        }
        self.services.claude.shutdown().await;
        tracing::info!("shut down");
        Ok(())
    }

    /// The Telegram bot, if `[telegram]` is configured and its token is in
    /// the environment; a missing token is logged and the rest runs.
    fn telegram_bot(self: &Arc<Self>) -> Option<TelegramBot> {
        let config = self.config().telegram.clone()?;
        let Some(sender) = self.services.telegram.clone() else {
            tracing::error!(
                "telegram.token_env: the environment variable `{}` is not set: the bot does not start",
                config.token_env
            );
            return None;
        };
        Some(TelegramBot::new(self.clone(), config, sender))
    }
}

/// Runs scheduled attempts on a host.
struct HostRunner(Arc<Host>);

impl ScheduleRunner for HostRunner {
    fn run(
        &self,
        schedule: Arc<Schedule>,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: Trigger,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let host = self.0.clone();
        Box::pin(async move {
            match host.run_scheduled(&schedule, due, attempt, trigger).await {
                Ok(record) => record.succeeded(),
                Err(e) => {
                    tracing::error!(schedule = %schedule.name, "failed to run: {e:#}");
                    false
                }
            }
        })
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
