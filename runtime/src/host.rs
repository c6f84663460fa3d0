//! The host: the data directory, the database, the plugin loader and the
//! registry, and the operations the CLI and (later) the scheduler and the
//! bot drive: load plugins, run a task, hand a message to a chat plugin,
//! serve until shutdown.

use std::future::Future;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use chrono::Utc;

use crate::call::{CallReport, Invocation, Message, Reply};
use crate::capabilities::history;
use crate::config::{Config, Grant};
use crate::db::Database;
use crate::loader::PluginLoader;
use crate::plugin::{LoadError, Plugin};
use crate::registry::PluginRegistry;
use crate::runs::{self, RunRecord, Trigger};

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

    /// Runs the task plugin `name` once, now, and records the run.
    pub async fn run_task(&self, name: &str, trigger: Trigger) -> anyhow::Result<RunRecord> {
        let plugin = self.plugin(name)?;
        let scheduled_at = Utc::now();
        let invocation = Invocation {
            name: name.to_owned(),
            scheduled_at: scheduled_at.timestamp_millis(),
            attempt: 1,
            config: plugin.config.values.clone(),
        };
        let id = runs::start(&self.db, plugin.name(), trigger, scheduled_at, 1).await?;
        let report = plugin.run_task(&self.db, &invocation).await?;
        let record = runs::finish(&self.db, id, &report).await?;
        match &report.result {
            Ok(_) => tracing::info!(plugin = name, run = id, duration = ?report.duration, "run succeeded"),
            Err(e) => {
                tracing::warn!(plugin = name, run = id, duration = ?report.duration, "run did not succeed: {e}")
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

    /// Serves until `shutdown` completes. The scheduler, the bot and the
    /// file watcher will run here; today the host only holds its plugins.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tracing::info!(
            plugins = self.registry.list().len(),
            config = %self.config.file.display(),
            "mission control is up"
        );
        shutdown.await;
        tracing::info!("shutting down");
        Ok(())
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
