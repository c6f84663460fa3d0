//! Wake-ups: the runs task plugins asked for with `later`, each at its
//! time and once. The trigger keeps the first due time in mind and reads
//! the wall clock every second (a machine that slept runs what fell due
//! meanwhile on wake); it re-reads the table when `later` adds a wake-up,
//! and every half minute for those added by another process (`mission
//! run`). The wake-ups due are claimed (`running`) together, in one
//! transaction, and their runs wait for one of the lanes; each is done
//! when its run ends. One a stop or a crash cut short, waiting or running,
//! runs again at the next start, and one whose run finished is never run
//! twice (see [`wakeups::claim_due`]). One due while the host was down runs
//! at start and says how late it is.

pub mod status;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Invoker, Stopped, Trigger};
use crate::capabilities::later::reminders::Reminder;
use crate::capabilities::later::wakeups::{self, Claimed};
use crate::capabilities::Event;
use crate::config::claude::HOST_TOOLS;
use crate::host::runs::{RunOutcome, StartedBy};
use crate::host::TaskRun;
use crate::plugin::call::Invocation;
use crate::wasm::bindings::task::mission::plugin::event::WakeUp;

/// How often the wall clock is read while something waits.
const CLOCK_CHECK: Duration = Duration::from_secs(1);

/// How often the table is read again though nothing said so.
const TABLE_CHECK: Duration = Duration::from_secs(30);

/// Runs of wake-ups at once; the rest wait their turn.
const LANES: usize = 32;

/// Wake-ups claimed at once, running or waiting for a lane; a burst past
/// it is claimed as runs end.
const CLAIMED: usize = 10_000;

/// The wake-ups trigger; always on (it only reads the table while none
/// waits).
pub fn trigger(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    Some(Box::new(WakeUps {
        invoker: invoker.clone(),
    }))
}

struct WakeUps {
    invoker: Invoker,
}

#[async_trait::async_trait]
impl Trigger for WakeUps {
    fn name(&self) -> &'static str {
        "wake-ups"
    }

    async fn run(self: Box<Self>, mut stopped: Stopped) {
        let db = self.invoker.db().clone();
        match wakeups::reopen(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} wake-up(s) cut short by the last stop run again"),
            Err(e) => tracing::error!("failed to reopen the wake-ups cut short: {e:#}"),
        }
        let added = self.invoker.wakeups_added();
        let lanes = Arc::new(Semaphore::new(LANES));
        let mut running = JoinSet::new();
        // The first due time (Unix ms) as last read, and when it was read.
        let mut next: Option<i64> = None;
        let mut read_at: Option<tokio::time::Instant> = None;
        loop {
            let now = Utc::now().timestamp_millis();
            let stale = read_at.is_none_or(|at| at.elapsed() >= TABLE_CHECK);
            let room = CLAIMED.saturating_sub(running.len());
            if room > 0 && (stale || next.is_some_and(|due| due <= now)) {
                match self.claim_due(now, room, &lanes, &mut running).await {
                    Ok(first) => next = first,
                    Err(e) => {
                        tracing::error!("failed to read the wake-ups: {e:#}");
                        next = None;
                    }
                }
                read_at = Some(tokio::time::Instant::now());
                let more_due = next.is_some_and(|due| due <= Utc::now().timestamp_millis());
                if more_due && running.len() < CLAIMED {
                    continue;
                }
            }
            // Nothing waiting, or no room to claim: only the table's own
            // check; else the wall clock every second up to the first due
            // time. A run's end wakes the loop too.
            let sleep = match next {
                Some(due) if running.len() < CLAIMED => {
                    let left = due.saturating_sub(Utc::now().timestamp_millis()).max(0) as u64;
                    Duration::from_millis(left).min(CLOCK_CHECK)
                }
                _ => TABLE_CHECK,
            };
            tokio::select! {
                () = &mut stopped => break,
                () = added.notified() => read_at = None,
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        // What waits for a lane runs at the next start.
        lanes.close();
        let grace = self.invoker.config().shutdown_grace;
        super::drain(
            &mut running,
            grace,
            "wake-up runs still going at shutdown run again at the next start",
        )
        .await;
    }
}

impl WakeUps {
    /// Claims the wake-ups due by `now`, at most `room`, each run on a task
    /// that waits for a lane; the first due time of those still waiting.
    async fn claim_due(
        &self,
        now: i64,
        room: usize,
        lanes: &Arc<Semaphore>,
        running: &mut JoinSet<()>,
    ) -> anyhow::Result<Option<i64>> {
        let db = self.invoker.db();
        let limit = u32::try_from(room).unwrap_or(u32::MAX);
        for claimed in wakeups::claim_due(db, now, limit).await? {
            let (invoker, lanes) = (self.invoker.clone(), lanes.clone());
            running.spawn(async move {
                // Closed: the host stops, and it runs at the next start.
                let Ok(_lane) = lanes.acquire_owned().await else {
                    return;
                };
                wake(&invoker, claimed).await;
            });
        }
        Ok(wakeups::waiting(db).await?.1)
    }
}

/// Runs the plugin for `claimed` (or sends the host's own reminder), and
/// marks it done unless the run was cut short by a stop.
async fn wake(invoker: &Invoker, claimed: Claimed) {
    if claimed.plugin == HOST_TOOLS {
        return remind(invoker, claimed).await;
    }
    let payload = match wakeups::stored(invoker.db(), claimed.id).await {
        Ok(Some(stored)) => stored.payload,
        Ok(None) => return tracing::error!(wakeup = claimed.id, "a claimed wake-up is gone"),
        // Still claimed: it runs at the next start.
        Err(e) => return tracing::error!(wakeup = claimed.id, "failed to read the wake-up: {e:#}"),
    };
    let started = Utc::now().timestamp_millis();
    let late_ms = started.saturating_sub(claimed.due_at).max(0) as u64;
    let values = invoker
        .plugin(&claimed.plugin)
        .map(|p| p.config.values.clone())
        .unwrap_or_default();
    let event = WakeUp {
        id: claimed.id as u64,
        payload,
        due_at: claimed.due_at,
        late_ms,
    };
    let run = TaskRun {
        plugin: &claimed.plugin,
        schedule: None,
        trigger: StartedBy::Later(claimed.id),
        invocation: Invocation {
            name: claimed.plugin.clone(),
            scheduled_at: claimed.due_at,
            attempt: 1,
            config: values,
        },
        event: Some(Arc::new(Event::WakeUp(event))),
        timeout: None,
        follow_ups: &[],
    };
    let outcome = match invoker.run(run).await {
        Ok(record) => record.outcome,
        Err(e) => {
            tracing::error!(
                plugin = claimed.plugin,
                wakeup = claimed.id,
                "failed to run: {e:#}"
            );
            RunOutcome::Failed
        }
    };
    if outcome == RunOutcome::Interrupted {
        return;
    }
    if let Err(e) = wakeups::finish(invoker.db(), claimed.id, outcome.as_str()).await {
        tracing::error!(wakeup = claimed.id, "failed to mark the wake-up done: {e:#}");
    }
}

/// Tries to send a reminder this many times, waiting twice as long after
/// each failure from a second.
const REMINDER_TRIES: u32 = 5;

/// Sends the reminder `claimed` holds to its chat, and marks it done with
/// `succeeded`, or `failed` once Telegram refused it [`REMINDER_TRIES`]
/// times (logged).
async fn remind(invoker: &Invoker, claimed: Claimed) {
    let reminder = match wakeups::stored(invoker.db(), claimed.id).await {
        Ok(stored) => stored.and_then(|s| Reminder::read(&s.payload)),
        // Still claimed: it is sent at the next start.
        Err(e) => return tracing::error!(wakeup = claimed.id, "failed to read the reminder: {e:#}"),
    };
    let sent = match (reminder, invoker.telegram()) {
        (None, _) => Err("its payload is not a reminder".to_owned()),
        (Some(_), None) => Err("there is no Telegram bot here to send it through".to_owned()),
        (Some(reminder), Some(telegram)) => {
            let mut tries = 0;
            loop {
                tries += 1;
                match telegram.send(reminder.chat, &reminder.message(), None).await {
                    Ok(()) => break Ok(()),
                    Err(e) if tries >= REMINDER_TRIES => break Err(format!("Telegram refused it: {e}")),
                    Err(_) => tokio::time::sleep(Duration::from_secs(1 << (tries - 1))).await,
                }
            }
        }
    };
    let outcome = match sent {
        Ok(()) => RunOutcome::Succeeded,
        Err(why) => {
            tracing::error!(wakeup = claimed.id, "a reminder was not sent: {why}");
            RunOutcome::Failed
        }
    };
    if let Err(e) = wakeups::finish(invoker.db(), claimed.id, outcome.as_str()).await {
        tracing::error!(wakeup = claimed.id, "failed to mark the reminder done: {e:#}");
    }
}
