//! `mission rerun RUN`: the same plugin with the same config and input — a
//! schedule's values, a webhook's stored request, a wake-up's payload — as
//! a new run that names the one it repeats.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};

use super::call::report_run;
use crate::capabilities::later::wakeups;
use crate::capabilities::Event;
use crate::config::Config;
use crate::host::runs::{self, StartedBy};
use crate::host::TaskRun;
use crate::os::zone::host_zone;
use crate::plugin::call::Invocation;
use crate::triggers::schedule;
use crate::triggers::webhooks::{deliveries, dispatch};
use crate::wasm::bindings::task::mission::plugin::event::WakeUp;

/// `mission rerun`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RerunArgs {
    /// The run's id (`mission runs`).
    pub id: i64,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn rerun(config: Config, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let host = super::open_host(config).await?;
    let first = runs::get(host.db(), id)
        .await?
        .ok_or_else(|| anyhow!("no run {id} (see mission runs)"))?;
    let plugin = host
        .load(&first.plugin)
        .await
        .with_context(|| format!("run {id}'s plugin"))?;
    // A schedule's values over the plugin's, as the schedule file says now.
    let values = match &first.schedule {
        Some(name) => {
            let (schedules, _) = schedule::load_all(&host.config(), host_zone());
            schedules
                .into_iter()
                .find(|s| &s.name == name)
                .map(|s| s.values)
                .ok_or_else(|| anyhow!("run {id} was of schedule `{name}`, which is no longer there"))?
        }
        None => plugin.config.values.clone(),
    };
    let event = match first.delivery {
        Some(delivery) => {
            let arrival = deliveries::arrival(host.db(), delivery).await?.ok_or_else(|| {
                anyhow!("run {id} answered webhook delivery {delivery}, whose body is no longer kept")
            })?;
            Some(Arc::new(Event::Webhook(dispatch::request(&arrival))))
        }
        None => match first.wakeup {
            Some(wakeup) => {
                let stored = wakeups::stored(host.db(), wakeup).await?.ok_or_else(|| {
                    anyhow!("run {id} was woken by wake-up {wakeup}, which is no longer kept")
                })?;
                Some(Arc::new(Event::WakeUp(WakeUp {
                    id: wakeup as u64,
                    payload: stored.payload,
                    due_at: stored.due_at,
                    late_ms: 0,
                })))
            }
            None => None,
        },
    };
    if first.trigger == "watch" {
        eprintln!("note: a watch's changes are not kept; run {id} is repeated without them");
    }
    let name = first.schedule.clone().unwrap_or_else(|| first.plugin.clone());
    let record = host
        .run(TaskRun {
            plugin: &first.plugin,
            schedule: first.schedule.as_deref(),
            trigger: StartedBy::Rerun(id),
            invocation: Invocation {
                name,
                scheduled_at: first.scheduled_at.timestamp_millis(),
                attempt: 1,
                config: values,
            },
            event,
            timeout: None,
            follow_ups: &[],
        })
        .await?;
    host.claude().shutdown().await;
    report_run(&record, json)
}
