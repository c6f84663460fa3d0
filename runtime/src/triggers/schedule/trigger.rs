//! The schedule trigger: the [`Scheduler`] over the schedule files, running
//! each due attempt through an [`Invoker`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::clock::SystemClock;
use super::scheduler::{Missed, ScheduleRunner, Scheduler};
use super::Schedule;
use crate::host::runs::StartedBy;
use crate::host::TaskRun;
use crate::os::zone::host_zone;
use crate::plugin::call::Invocation;
use crate::triggers::{Invoker, Stopped, Trigger};

/// A scheduler for the schedules in the config's schedules directory
/// (each invalid file logged and left out), driven by the system clock.
pub fn scheduler(invoker: &Invoker) -> Scheduler {
    let config = invoker.config();
    let (schedules, errors) = super::load_all(&config, host_zone());
    for error in errors {
        tracing::error!("schedule refused: {error}");
    }
    Scheduler::new(
        schedules,
        Arc::new(SystemClock),
        Arc::new(Runner(invoker.clone())),
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

/// Runs scheduled attempts through an invoker.
struct Runner(Invoker);

impl ScheduleRunner for Runner {
    fn run(
        &self,
        schedule: Arc<Schedule>,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: StartedBy,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let invoker = self.0.clone();
        Box::pin(async move {
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
                event: None,
                timeout: schedule.timeout,
            };
            match invoker.run(run).await {
                Ok(record) => {
                    // A fire ends with a success or its last attempt.
                    let attempts = schedule.retries + 1;
                    if record.succeeded() || attempt >= attempts {
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
