//! Serving: the long-running parts of `mission up` — every configured
//! [trigger](crate::triggers), [`hot_reload`] (fed by the file
//! [`watcher`]), the [`control`] channel from CLI commands, pruning old
//! records ([`retention`](crate::db::retention)), [`backups`], the status page
//! ([`web`]), the outbox of alerts, the daily digest and the heartbeat
//! ping — started side by side around one
//! [`Host`](crate::host::Host), and stopped together. The
//! [`tool_gateway`], through which the `claude` CLI calls plugins' tools,
//! is set up wherever a host is opened (`mission chat` and `mission run`
//! need it too).

pub mod backups;
pub mod control;
mod digest;
pub mod hot_reload;
pub mod mission_tools;
mod ping;
pub mod pruning;
pub mod tool_gateway;
pub mod watcher;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::alerts::outbox;
use crate::config::Config;
use crate::db::Database;
use crate::host::runs;
use crate::host::Host;
use crate::plugin::loads::LoadOutcome;
use crate::plugin::Plugin;
use crate::triggers::{self, Invoker};
use control::ControlChannel;
use hot_reload::{HotReload, Reloadable};
use web::StatusSource;

/// Serves `host` until `shutdown` completes: records runs a killed host left
/// behind as interrupted, opens the page and the webhook listener, loads
/// every plugin, then runs the other triggers, hot reload, the control
/// channel and pruning beside them; on shutdown stops them all, each with
/// its grace, then Claude's processes.
pub async fn serve(host: Arc<Host>, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    crate::os::fd_limit::raise();
    let db = host.db().clone();
    let interrupted = runs::interrupt_running(&db).await?;
    if interrupted > 0 {
        tracing::warn!(
            count = interrupted,
            "runs left running by a stopped host recorded as interrupted"
        );
    }
    control::finish_abandoned_requests(&db).await?;
    let triggers = triggers::configured(&Invoker::new(host.clone()));

    let (stop, stopped) = watch::channel(());
    let until_stopped = |mut stopped: watch::Receiver<()>| async move {
        let _ = stopped.changed().await;
    };
    let mut parts = JoinSet::new();
    // Compiling every plugin can take half a minute on a fresh data
    // directory: the page (saying what is still loading) and the webhook
    // listener (storing what arrives; its runs wait) answer meanwhile.
    host.begin_loading();
    parts.spawn(web::start(host.clone(), until_stopped(stopped.clone())));
    for trigger in triggers.listening {
        tracing::debug!(trigger = trigger.name(), "starting");
        parts.spawn(trigger.run(Box::pin(until_stopped(stopped.clone()))));
    }
    host.load_all().await;
    let (reload, reload_requests) = HotReload::start(host.clone(), triggers.schedule_changes.clone())?;
    let control = ControlChannel::new(db.clone(), triggers.schedule_changes, reload_requests);
    for trigger in triggers.all {
        tracing::debug!(trigger = trigger.name(), "starting");
        parts.spawn(trigger.run(Box::pin(until_stopped(stopped.clone()))));
    }
    parts.spawn(reload.run(until_stopped(stopped.clone())));
    parts.spawn(control.run(until_stopped(stopped.clone())));
    parts.spawn(pruning::keep_pruned(host.clone(), until_stopped(stopped.clone())));
    parts.spawn(backups::keep_backing_up(
        host.clone(),
        until_stopped(stopped.clone()),
    ));
    parts.spawn(ping::keep_pinging(host.clone(), until_stopped(stopped.clone())));
    parts.spawn(digest::keep_digesting(
        host.clone(),
        until_stopped(stopped.clone()),
    ));
    if let Some(sender) = host.services().telegram.clone() {
        let config = host.clone();
        let quiet = move || {
            let alerts = config.config().alerts.clone()?;
            Some((alerts.quiet?, alerts.zone))
        };
        parts.spawn(outbox::deliver(
            db.clone(),
            sender,
            quiet,
            until_stopped(stopped.clone()),
        ));
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

#[async_trait::async_trait]
impl Reloadable for Host {
    fn config(&self) -> Arc<Config> {
        Host::config(self)
    }

    async fn reload_plugin(&self, name: &str) -> anyhow::Result<LoadOutcome> {
        Host::reload_plugin(self, name).await
    }

    async fn apply_config(&self, mut config: Config) -> Vec<String> {
        let mut notes = triggers::keep_restart_settings(&Host::config(self), &mut config);
        notes.extend(Host::apply_config(self, config).await);
        notes
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

    fn loading(&self) -> bool {
        self.is_loading()
    }
}
