//! What starts plugins. Each trigger is one folder that owns its config's
//! meaning, its records and their pruning, and reaches the host only
//! through an [`Invoker`]; `mission up` runs them from the one list in
//! [`configured`].
//!
//! - [`schedule`]: the schedule files, fired by cron or interval, or after
//!   another schedule's run (`after`).
//! - [`telegram`]: the bot, handing allowed messages to the chat plugin.
//! - [`webhooks`]: verified `POST`s, stored before acknowledged, each run
//!   once.
//! - [`watch`]: directories whose changes start a run.
//! - [`wakeups`]: the runs plugins asked for with `later`, each once.
//! - [`presses`]: a press on a plugin's button, stored by the bot, runs it
//!   once.
//!
//! Adding one: a folder with a type that implements [`Trigger`], made from
//! an [`Invoker`] (`None` when its section is not configured), and a line
//! in [`configured`]; a setting a hot reload cannot apply goes in
//! [`keep_restart_settings`].

mod invoker;
pub mod presses;
pub mod schedule;
pub mod telegram;
pub mod wakeups;
pub mod watch;
pub mod webhooks;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

pub use invoker::Invoker;
use schedule::scheduler::ScheduleChange;

use crate::config::Config;

/// Completes when the host stops.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Completes once `stop` says so: how a trigger's lanes learn of a stop
/// between runs.
pub(crate) async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Something that starts plugins while the host serves.
#[async_trait::async_trait]
pub trait Trigger: Send {
    /// What it is, for the log.
    fn name(&self) -> &'static str;

    /// Runs until `stopped` completes, then finishes what it started
    /// within the host's `shutdown_grace`.
    async fn run(self: Box<Self>, stopped: Stopped);
}

/// Waits up to `grace` for `running` to end; past it, logs `unfinished`
/// (what becomes of those runs) and aborts them.
pub async fn drain(running: &mut tokio::task::JoinSet<()>, grace: std::time::Duration, unfinished: &str) {
    let finished = tokio::time::timeout(grace, async { while running.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!("{unfinished}");
        running.shutdown().await;
    }
}

/// The triggers the config asks for, and the way to tell the scheduler of
/// changed schedule files and `mission trigger` requests.
pub struct Triggers {
    /// The triggers that only take in and store what arrives (the webhook
    /// listener): started before the plugins are loaded, their runs wait.
    pub listening: Vec<Box<dyn Trigger>>,
    /// Every other configured trigger, started once the plugins are loaded.
    pub all: Vec<Box<dyn Trigger>>,
    /// Changes for the scheduler.
    pub schedule_changes: mpsc::UnboundedSender<ScheduleChange>,
}

/// Every trigger the host's config asks for: the one list.
pub fn configured(invoker: &Invoker) -> Triggers {
    let mut scheduler = schedule::scheduler(invoker, schedule::FollowUpsRun::Here);
    let schedule_changes = scheduler.changes();
    let mut all: Vec<Box<dyn Trigger>> = vec![Box::new(scheduler)];
    all.extend(schedule::follow_ups(invoker));
    all.extend(telegram::trigger(invoker));
    all.extend(watch::trigger(invoker));
    all.extend(wakeups::trigger(invoker));
    all.extend(presses::trigger(invoker));
    Triggers {
        listening: webhooks::trigger(invoker).into_iter().collect(),
        all,
        schedule_changes,
    }
}

/// Puts back in `new` the trigger settings that only a restart applies;
/// a note for each trigger whose settings changed, saying what applies when.
pub fn keep_restart_settings(old: &Config, new: &mut Config) -> Vec<String> {
    let mut notes = Vec::new();
    notes.extend(telegram::keep_restart_settings(old, new));
    notes.extend(webhooks::keep_restart_settings(old, new));
    notes.extend(watch::keep_restart_settings(old, new));
    notes
}
