//! The host: the data directory, the database, the plugin loader and the
//! registry, and the operations the CLI, the scheduler and (later) the bot
//! drive: load plugins, run a task, hand a message to a chat plugin, serve
//! until shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};

use crate::call::{CallReport, Invocation, Message, Reply};
use crate::capabilities::history;
use crate::clock::SystemClock;
use crate::config::{Config, Grant};
use crate::db::Database;
use crate::loader::PluginLoader;
use crate::plugin::{LoadError, Plugin};
use crate::registry::PluginRegistry;
use crate::runs::{self, RunRecord, RunStart, Trigger};
use crate::schedule::{self, Schedule};
use crate::scheduler::{ScheduleRunner, Scheduler};

/// The name of the SQLite file in the data directory.
pub const DATABASE_FILE: &str = "mission.db";

/// A running Mission Control host.
pub struct Host {
    config: Config,
    loader: PluginLoader,
    db: Database,
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
        Ok(Host {
            config,
            loader,
            db,
            registry: Arc::default(),
        })
    }

    /// The configuration the host runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The plugins loaded so far.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    /// Loads every configured plugin. One that fails is logged and left out,
    /// so the others are still served; the failures are returned.
    pub async fn load_all(&self) -> Vec<LoadError> {
        let mut failures = Vec::new();
        for config in self.config.plugins.clone() {
            match self.loader.load(config).await {
                Ok(plugin) => {
                    log_loaded(&plugin);
                    self.registry.insert(plugin);
                }
                Err(e) => {
                    tracing::error!("{e}");
                    failures.push(e);
                }
            }
        }
        failures
    }

    /// Loads the one plugin named `name`.
    pub async fn load(&self, name: &str) -> anyhow::Result<Arc<Plugin>> {
        let config = self
            .config
            .plugin(name)
            .ok_or_else(|| anyhow!("no plugin named `{name}` in {}", self.config.file.display()))?;
        let plugin = self.loader.load(config.clone()).await?;
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
        let id = runs::start(&self.db, start).await?;
        let Some(loaded) = self.registry.get(plugin) else {
            let error = format!("plugin `{plugin}` is not loaded (its load error is in the host's log)");
            tracing::error!(run = id, "{error}");
            return runs::abandon(&self.db, id, "not_loaded", error).await;
        };
        let timeout = timeout.unwrap_or(loaded.config.limits.timeout);
        let report = loaded.run_task(&self.db, &invocation, timeout).await?;
        let record = runs::finish(&self.db, id, &report).await?;
        match &report.result {
            Ok(_) => tracing::info!(plugin, schedule, run = id, duration = ?report.duration, "run succeeded"),
            Err(e) => {
                tracing::warn!(plugin, schedule, run = id, duration = ?report.duration, "run did not succeed: {e}")
            }
        }
        Ok(record)
    }

    /// Hands `message` to the chat plugin `name`. With the `history` grant,
    /// the message and the reply are recorded in the conversation
    /// (keyed by the chat id) so the plugin need not do it.
    pub async fn chat(&self, name: &str, message: &Message) -> anyhow::Result<CallReport<Option<Reply>>> {
        let plugin = self.plugin(name)?;
        let conversation = message.chat_id.to_string();
        let keeps_history = plugin.config.grants.contains(&Grant::History);
        if keeps_history {
            history::record(
                &self.db,
                plugin.name(),
                &conversation,
                history::Role::User,
                &message.text,
            )
            .await?;
        }
        let report = plugin.handle_message(&self.db, message).await?;
        if let (true, Ok(Some(reply))) = (keeps_history, &report.result) {
            history::record(
                &self.db,
                plugin.name(),
                &conversation,
                history::Role::Assistant,
                &reply.text,
            )
            .await?;
        }
        Ok(report)
    }

    /// The schedules in the schedules directory; each invalid file is logged
    /// and left out, so the others still run.
    pub fn schedules(&self) -> Vec<Schedule> {
        let (schedules, errors) = schedule::load_all(&self.config, schedule::host_zone());
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
            self.db.clone(),
            self.config.shutdown_grace,
        )
    }

    /// Serves until `shutdown` completes: records runs a killed host left
    /// behind as interrupted, then runs the scheduler.
    pub async fn serve(self: Arc<Self>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let interrupted = runs::interrupt_running(&self.db).await?;
        if interrupted > 0 {
            tracing::warn!(
                count = interrupted,
                "runs left running by a stopped host recorded as interrupted"
            );
        }
        let scheduler = self.scheduler();
        tracing::info!(
            plugins = self.registry.list().len(),
            config = %self.config.file.display(),
            "mission control is up"
        );
        scheduler.run(shutdown).await;
        tracing::info!("shut down");
        Ok(())
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
