//! The schedule trigger: the [`Scheduler`] over the schedule files, running
//! each due attempt through an [`Invoker`]; and the follow-ups a run's end
//! starts (`after`, see [`chains`]), run with their own retries, resumed at
//! start by the [`follow_ups`] trigger.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::chains;
use super::clock::SystemClock;
use super::scheduler::{Missed, ScheduleRunner, Scheduler};
use super::Schedule;
use crate::capabilities::Event;
use crate::config::World;
use crate::host::runs::{self, Follower, RunOutcome, StartedBy};
use crate::host::TaskRun;
use crate::os::zone::host_zone;
use crate::plugin::call::Invocation;
use crate::triggers::{Invoker, Stopped, Trigger};
use crate::wasm::bindings::task::mission::plugin::event::ParentRun;

/// Where the follow-ups a run's end queues are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpsRun {
    /// Here, as soon as they are queued: the host.
    Here,
    /// By the host, when it runs: a command that ends after its one run.
    ByTheHost,
}

/// A scheduler for the schedules in the config's schedules directory
/// (each invalid file logged and left out), driven by the system clock.
pub fn scheduler(invoker: &Invoker, follow_ups: FollowUpsRun) -> Scheduler {
    let config = invoker.config();
    let (schedules, errors) = super::load_all(&config, host_zone());
    for unknown in chains::unknown_parents(&config, &schedules, &errors) {
        tracing::error!("{unknown}");
    }
    for error in errors {
        tracing::error!("schedule refused: {error}");
    }
    Scheduler::new(
        schedules,
        Arc::new(SystemClock),
        Arc::new(Runner(invoker.clone(), follow_ups)),
        invoker.db().clone(),
        config.shutdown_grace,
    )
}

#[async_trait::async_trait]
impl Trigger for Scheduler {
    fn name(&self) -> &'static str {
        "schedules"
    }

    async fn run(self: Box<Self>, stopped: Stopped) {
        Scheduler::run(*self, stopped).await;
    }
}

/// Runs scheduled attempts through an invoker, and their follow-ups where
/// it says.
struct Runner(Invoker, FollowUpsRun);

impl ScheduleRunner for Runner {
    fn run(
        &self,
        schedule: Arc<Schedule>,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: StartedBy,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let (invoker, here) = (self.0.clone(), self.1 == FollowUpsRun::Here);
        Box::pin(async move {
            let attempts = schedule.retries + 1;
            // The schedules that follow it, as their files say now.
            let (schedules, _) = super::load_all(&invoker.config(), host_zone());
            let follow_ups =
                chains::follow_ups(&schedules, &invoker.config(), &schedule.name, attempt >= attempts);
            let event = match trigger {
                StartedBy::After(parent) => parent_event(&invoker, parent).await,
                _ => None,
            };
            let run = TaskRun {
                plugin: &schedule.plugin,
                schedule: Some(&schedule.name),
                trigger,
                invocation: Invocation {
                    name: schedule.name.clone(),
                    scheduled_at: due.timestamp_millis(),
                    attempt,
                    config: schedule.values.clone(),
                },
                event,
                timeout: schedule.timeout,
                follow_ups: &follow_ups,
            };
            match invoker.run(run).await {
                Ok(record) => {
                    // A fire ends with a success or its last attempt.
                    if record.succeeded() || attempt >= attempts {
                        if let StartedBy::After(parent) = trigger {
                            let follower = Follower::Schedule(schedule.name.clone());
                            finish_follow_up(&invoker, parent, &follower, Some(record.outcome)).await;
                        }
                        if !follow_ups.is_empty() && here {
                            start_follow_ups(&invoker, Some(record.id)).await;
                        }
                        let config = invoker.config();
                        let alerts = config.alerts.as_ref();
                        if let Err(e) =
                            super::alerts::after_fire(invoker.db(), &schedule, alerts, &record, attempt).await
                        {
                            tracing::error!(schedule = %schedule.name, "failed to note the run for alerts: {e:#}");
                        }
                    }
                    record.succeeded()
                }
                Err(e) => {
                    tracing::error!(schedule = %schedule.name, "failed to run: {e:#}");
                    false
                }
            }
        })
    }

    fn missed(&self, schedule: Arc<Schedule>, missed: Missed) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let invoker = self.0.clone();
        Box::pin(async move {
            let config = invoker.config();
            if let Err(e) =
                super::alerts::missed(invoker.db(), &schedule, config.alerts.as_ref(), missed).await
            {
                tracing::error!(schedule = %schedule.name, "failed to note the missed runs for alerts: {e:#}");
            }
        })
    }
}

/// What a follow-up's run is told of the run whose end started it.
async fn parent_event(invoker: &Invoker, parent: i64) -> Option<Arc<Event>> {
    match runs::get(invoker.db(), parent).await {
        Ok(Some(record)) => Some(Arc::new(Event::Parent(ParentRun {
            schedule: record.schedule.clone().unwrap_or_else(|| record.plugin.clone()),
            run_id: parent as u64,
            outcome: record.outcome.to_string(),
            summary: record.summary.or(record.error).unwrap_or_default(),
        }))),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(run = parent, "failed to read the parent run: {e:#}");
            None
        }
    }
}

/// Starts the follow-ups waiting — of run `parent`, or all — each claimed
/// first, then run on a task of its own: a schedule with its retries, a
/// plugin once.
async fn start_follow_ups(invoker: &Invoker, parent: Option<i64>) {
    let db = invoker.db();
    let waiting = match chains::waiting(db, parent).await {
        Ok(waiting) => waiting,
        Err(e) => return tracing::error!("failed to read the follow-ups: {e:#}"),
    };
    if waiting.is_empty() {
        return;
    }
    let (schedules, _) = super::load_all(&invoker.config(), host_zone());
    for queued in waiting {
        match chains::claim(db, queued.id).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(follow_up = queued.id, "failed to claim the follow-up: {e:#}");
                continue;
            }
        }
        let parent = queued.parent_run;
        match &queued.follower {
            Follower::Schedule(name) => {
                let Some(child) = schedules.iter().find(|s| &s.name == name) else {
                    tracing::warn!(
                        schedule = name,
                        parent_run = parent,
                        "a follow-up's schedule is gone (or refused): it does not run"
                    );
                    finish_follow_up(invoker, parent, &queued.follower, None).await;
                    continue;
                };
                let (child, runner) = (
                    Arc::new(child.clone()),
                    Runner(invoker.clone(), FollowUpsRun::Here),
                );
                tokio::spawn(async move {
                    let trigger = StartedBy::After(parent);
                    for attempt in 1..=child.retries + 1 {
                        if runner.run(child.clone(), Utc::now(), attempt, trigger).await {
                            break;
                        }
                        if attempt <= child.retries {
                            tokio::time::sleep(child.backoff(attempt)).await;
                        }
                    }
                });
            }
            Follower::Plugin(name) => {
                tokio::spawn(run_plugin_follow_up(invoker.clone(), parent, name.clone()));
            }
        }
    }
}

/// Runs task plugin `name` once after run `parent`, with its own config
/// values, and marks its follow-up done.
async fn run_plugin_follow_up(invoker: Invoker, parent: i64, name: String) {
    let follower = Follower::Plugin(name.clone());
    let config = invoker.config();
    let Some(plugin) = config.plugin(&name).filter(|p| p.world == World::Task) else {
        tracing::warn!(
            plugin = name,
            parent_run = parent,
            "a follow-up's plugin is gone (or no longer a task plugin): it does not run"
        );
        return finish_follow_up(&invoker, parent, &follower, None).await;
    };
    let run = TaskRun {
        plugin: &name,
        schedule: None,
        trigger: StartedBy::After(parent),
        invocation: Invocation {
            name: name.clone(),
            scheduled_at: Utc::now().timestamp_millis(),
            attempt: 1,
            config: plugin.values.clone(),
        },
        event: parent_event(&invoker, parent).await,
        timeout: None,
        follow_ups: &[],
    };
    match invoker.run(run).await {
        Ok(record) => finish_follow_up(&invoker, parent, &follower, Some(record.outcome)).await,
        // Not recorded: it stays claimed, and the next start runs it.
        Err(e) => tracing::error!(plugin = name, "failed to run: {e:#}"),
    }
}

/// Marks the follow-up of run `parent` by `follower` done (logged if it
/// cannot be: the next start finds its run and marks it then).
async fn finish_follow_up(invoker: &Invoker, parent: i64, follower: &Follower, outcome: Option<RunOutcome>) {
    if let Err(e) = chains::finish(invoker.db(), parent, follower, outcome).await {
        tracing::error!(follower = %follower, "failed to mark the follow-up done: {e:#}");
    }
}

/// The follow-ups trigger: at start, runs the follow-ups a stop or a crash
/// left waiting or cut short (those whose run had finished are marked done,
/// not run again).
pub fn follow_ups(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    Some(Box::new(FollowUps(invoker.clone())))
}

struct FollowUps(Invoker);

#[async_trait::async_trait]
impl Trigger for FollowUps {
    fn name(&self) -> &'static str {
        "follow-ups"
    }

    async fn run(self: Box<Self>, stopped: Stopped) {
        match chains::reopen(self.0.db()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} follow-up(s) cut short by the last stop run again"),
            Err(e) => tracing::error!("failed to reopen the follow-ups cut short: {e:#}"),
        }
        start_follow_ups(&self.0, None).await;
        stopped.await;
    }
}
