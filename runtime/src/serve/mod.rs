//! Serving: the long-running parts of `mission up` — the scheduler, the
//! Telegram bot, [`hot_reload`] (fed by the file [`watcher`]) and the
//! [`control`] channel from CLI commands, and pruning old records
//! ([`retention`](crate::retention)) — started side by side around one
//! [`Host`](crate::host::Host), and stopped together.

pub mod control;
pub mod hot_reload;
mod pruning;
pub mod watcher;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::claude::Claude;
use crate::config::{Config, PluginName};
use crate::db::Database;
use crate::host::Host;
use crate::plugin::call::{AnswerRecord, CallReport, Message, Reply, WarmInstance};
use crate::plugin::loads::LoadOutcome;
use crate::plugin::Plugin;
use crate::runs::{self, Trigger};
use crate::schedule::clock::SystemClock;
use crate::schedule::scheduler::{ScheduleRunner, Scheduler};
use crate::schedule::Schedule;
use crate::telegram::bot::TelegramBot;
use crate::telegram::chat_host::ChatHost;
use crate::web::StatusSource;
use control::ControlChannel;
use hot_reload::{HotReload, Reloadable};

/// Serves `host` until `shutdown` completes: records runs a killed host left
/// behind as interrupted, then runs the scheduler, hot reload, the control
/// channel and (with `[telegram]` and its token) the bot side by side; on
/// shutdown stops them all, each with its grace, then Claude's processes.
pub async fn serve(host: Arc<Host>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let db = host.db().clone();
    let interrupted = runs::interrupt_running(&db).await?;
    if interrupted > 0 {
        tracing::warn!(
            count = interrupted,
            "runs left running by a stopped host recorded as interrupted"
        );
    }
    control::finish_abandoned_requests(&db).await?;
    let mut scheduler = scheduler(&host);
    let schedule_changes = scheduler.changes();
    let (reload, reload_requests) = HotReload::start(host.clone(), schedule_changes.clone())?;
    let control = ControlChannel::new(db.clone(), schedule_changes, reload_requests);
    let bot = telegram_bot(&host);

    let (stop, stopped) = watch::channel(());
    let until_stopped = |mut stopped: watch::Receiver<()>| async move {
        let _ = stopped.changed().await;
    };
    let grace = host.config().shutdown_grace;
    let mut parts = JoinSet::new();
    parts.spawn(scheduler.run(until_stopped(stopped.clone())));
    parts.spawn(reload.run(until_stopped(stopped.clone())));
    parts.spawn(control.run(until_stopped(stopped.clone())));
    parts.spawn(pruning::keep_pruned(host.clone(), until_stopped(stopped.clone())));
    parts.spawn(crate::web::start(host.clone(), until_stopped(stopped.clone())));
    if let Some(bot) = bot {
        parts.spawn(bot.run(grace, until_stopped(stopped.clone())));
    }
    // The first beat before saying so: once the host is up, `mission
    // trigger` and `mission reload` find it.
    let now = chrono::Utc::now();
    if let Err(e) = control::heartbeat(&db, std::process::id(), now, now).await {
        tracing::warn!("failed to write the first heartbeat: {e:#}");
    }
    tracing::info!(
        plugins = host.registry().list().len(),
        config = %host.config().file.display(),
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
    if let Err(e) = control::finish_abandoned_requests(&db).await {
        tracing::error!("failed to answer interrupted requests: {e:#}");
    }
    if let Err(e) = control::sign_off(&db, std::process::id()).await {
        tracing::warn!("failed to clear the heartbeat: {e:#}");
    }
    host.claude().shutdown().await;
    tracing::info!("shut down");
    Ok(())
}

/// A scheduler for `host`'s schedules, driven by the system clock.
pub fn scheduler(host: &Arc<Host>) -> Scheduler {
    Scheduler::new(
        host.schedules(),
        Arc::new(SystemClock),
        Arc::new(HostRunner(host.clone())),
        host.db().clone(),
        host.config().shutdown_grace,
    )
}

/// The Telegram bot, if `[telegram]` is configured and its token is in the
/// environment; a missing token is logged and the rest runs.
fn telegram_bot(host: &Arc<Host>) -> Option<TelegramBot> {
    let config = host.config().telegram.clone()?;
    let Some(sender) = host.services().telegram.clone() else {
        tracing::error!(
            "telegram.token_env: the environment variable `{}` is not set: the bot does not start",
            config.token_env
        );
        return None;
    };
    Some(TelegramBot::new(host.clone(), config, sender))
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

#[async_trait::async_trait]
impl Reloadable for Host {
    fn config(&self) -> Arc<Config> {
        Host::config(self)
    }

    async fn reload_plugin(&self, name: &str) -> anyhow::Result<LoadOutcome> {
        Host::reload_plugin(self, name).await
    }

    async fn apply_config(&self, config: Config) -> Vec<String> {
        Host::apply_config(self, config).await
    }
}

impl StatusSource for Host {
    fn db(&self) -> &Database {
        Host::db(self)
    }

    fn config(&self) -> Arc<Config> {
        Host::config(self)
    }

    fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.registry().list()
    }

    fn bot_connected(&self) -> bool {
        self.services().telegram.is_some()
    }
}

#[async_trait::async_trait]
impl ChatHost for Host {
    fn db(&self) -> &Database {
        Host::db(self)
    }

    fn claude(&self) -> &Claude {
        Host::claude(self)
    }

    fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.registry().get(name)
    }

    async fn chat(
        &self,
        name: &str,
        message: &Message,
        warm: Option<&mut Option<WarmInstance>>,
        record: Option<AnswerRecord>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        Host::chat(self, name, message, warm, record).await
    }

    async fn shadow_chat(&self, name: &str, message: &Message) -> anyhow::Result<CallReport<Option<Reply>>> {
        Host::shadow_chat(self, name, message).await
    }

    async fn forget(&self, plugin: &PluginName, conversation: &str) -> anyhow::Result<()> {
        Host::forget(self, plugin, conversation).await
    }
}
