//! The scheduler: fires each schedule at its due times, read from the wall
//! clock and re-checked every second, so a machine that slept runs a missed
//! job once on wake; applies the overlap, retry, jitter and catch-up
//! policies; runs a schedule now when asked (`mission trigger`, through
//! [`ScheduleChange::Trigger`]); and on shutdown gives running tasks a grace
//! period before interrupting them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::clock::Clock;
use super::state;
use super::{CatchUp, Overlap, Schedule, Timing};
use crate::db::Database;
use crate::host::runs::{self, StartedBy};
use missed::due_times_between;
pub use missed::{MissReason, Missed};

mod missed;

/// How often the wall clock is re-read even when nothing is due.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A gap in the wall clock past which the due times it swallowed count as
/// missed (the machine slept, or the host stalled): shorter ones are the
/// scheduler's own lateness under load.
const SLEEP_GAP: Duration = Duration::from_secs(60);

/// Runs the attempts of scheduled tasks, and hears of due times missed.
pub trait ScheduleRunner: Send + Sync + 'static {
    /// Runs attempt `attempt` of `schedule` for the due time `due`; `true`
    /// if it succeeded.
    fn run(
        &self,
        schedule: Arc<Schedule>,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: StartedBy,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>>;

    /// Hears that `schedule` missed due times, and why.
    fn missed(&self, schedule: Arc<Schedule>, missed: Missed) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// A random delay of at most `max`.
pub fn jitter_delay(max: Duration, rng: &mut fastrand::Rng) -> Duration {
    let max = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rng.u64(0..=max))
}

/// What runs of one schedule are doing now.
#[derive(Default)]
struct Slot {
    running: usize,
    queued: Option<DateTime<Utc>>,
}

struct Entry {
    schedule: Arc<Schedule>,
    slot: Arc<Mutex<Slot>>,
    /// Unique to this version of the schedule: due times in the heap from a
    /// replaced or removed version carry another and are passed over.
    generation: u64,
}

/// What every run needs, behind one reference count.
struct Drivers {
    runner: Arc<dyn ScheduleRunner>,
    clock: Arc<dyn Clock>,
}

/// A due time in the heap, ordered by time, then generation (unique), so a
/// burst of thousands due at one instant never compares names.
struct Due {
    at: DateTime<Utc>,
    generation: u64,
    name: String,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.generation) == (other.at, other.generation)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.generation).cmp(&(other.at, other.generation))
    }
}

/// A schedule to fire now.
struct Fire {
    name: String,
    /// The due time its run is for.
    due: DateTime<Utc>,
    /// The due times after `due` the wall clock jumped past (the machine
    /// slept): the one run makes up for them, and they are told as missed
    /// unless the schedule is paused.
    slept: Option<Missed>,
}

impl Fire {
    /// A fire of `name` for `due` alone.
    fn at(name: String, due: DateTime<Utc>) -> Fire {
        Fire {
            name,
            due,
            slept: None,
        }
    }
}

/// A change to the set of schedules while the scheduler runs (hot reload).
#[derive(Debug)]
pub enum ScheduleChange {
    /// Add a schedule, or replace the one with its name; a run in progress
    /// finishes as it started.
    Upsert(Box<Schedule>),
    /// Stop scheduling the named schedule.
    Remove(String),
    /// Run the named schedule now, for `mission trigger` request `request`;
    /// `done` is told when all its attempts are over (`true`), or at once
    /// (`false`) if there is no such schedule.
    Trigger {
        /// The schedule.
        schedule: String,
        /// The request it answers.
        request: i64,
        /// Told when the run is over.
        done: oneshot::Sender<bool>,
    },
}

/// The scheduler of one host.
pub struct Scheduler {
    clock: Arc<dyn Clock>,
    drivers: Arc<Drivers>,
    db: Database,
    entries: HashMap<String, Entry>,
    due: BinaryHeap<Reverse<Due>>,
    /// The next unused schedule generation.
    generations: u64,
    tasks: JoinSet<()>,
    grace: Duration,
    ticks: Option<mpsc::UnboundedSender<()>>,
    changes: Option<mpsc::UnboundedReceiver<ScheduleChange>>,
}

impl Scheduler {
    /// A scheduler for `schedules`, running them through `runner`; on
    /// shutdown, running tasks get `grace` to finish.
    pub fn new(
        schedules: Vec<Schedule>,
        clock: Arc<dyn Clock>,
        runner: Arc<dyn ScheduleRunner>,
        db: Database,
        grace: Duration,
    ) -> Self {
        let entries: HashMap<String, Entry> = schedules
            .into_iter()
            .zip(0..)
            .map(|(s, generation)| {
                let entry = Entry {
                    schedule: Arc::new(s),
                    slot: Arc::default(),
                    generation,
                };
                (entry.schedule.name.clone(), entry)
            })
            .collect();
        let generations = entries.len() as u64;
        Self {
            clock: clock.clone(),
            drivers: Arc::new(Drivers { runner, clock }),
            db,
            entries,
            due: BinaryHeap::new(),
            generations,
            tasks: JoinSet::new(),
            grace,
            ticks: None,
            changes: None,
        }
    }

    /// A sender for changes to the schedules while the scheduler runs.
    pub fn changes(&mut self) -> mpsc::UnboundedSender<ScheduleChange> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.changes = Some(receiver);
        sender
    }

    fn apply(&mut self, change: ScheduleChange) {
        match change {
            ScheduleChange::Upsert(schedule) => {
                let name = schedule.name.clone();
                let schedule = Arc::new(*schedule);
                let generation = self.generations;
                self.generations += 1;
                match self.entries.get_mut(&name) {
                    Some(entry) => {
                        entry.schedule = schedule;
                        entry.generation = generation;
                        tracing::info!(schedule = %name, "schedule updated");
                    }
                    None => {
                        let entry = Entry {
                            schedule,
                            slot: Arc::default(),
                            generation,
                        };
                        self.entries.insert(name.clone(), entry);
                        tracing::info!(schedule = %name, "schedule added");
                    }
                }
                self.push_next(&name, self.clock.now());
            }
            ScheduleChange::Remove(name) => {
                if self.entries.remove(&name).is_some() {
                    tracing::info!(schedule = %name, "schedule removed");
                }
            }
            ScheduleChange::Trigger {
                schedule,
                request,
                done,
            } => {
                if self.entries.contains_key(&schedule) {
                    tracing::info!(%schedule, request, "triggered");
                    self.start_run(
                        &schedule,
                        self.clock.now(),
                        StartedBy::Request(request),
                        Some(done),
                    );
                } else {
                    tracing::warn!(%schedule, request, "trigger request for an unknown schedule");
                    let _ = done.send(false);
                }
            }
        }
    }

    /// A channel told each time the scheduler has handled a wake-up and is
    /// asleep again: tests step a [`crate::triggers::schedule::clock::ManualClock`] with it.
    pub fn observe_ticks(&mut self) -> mpsc::UnboundedReceiver<()> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.ticks = Some(sender);
        receiver
    }

    /// Runs until `shutdown` completes, then drains running tasks.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        self.start().await;
        tokio::pin!(shutdown);
        loop {
            self.fire_due().await;
            while self.tasks.try_join_next().is_some() {}
            let sleep = self.clock.sleep(self.time_to_next().min(CHECK_INTERVAL));
            if let Some(ticks) = &self.ticks {
                let _ = ticks.send(());
            }
            let changes = async {
                match &mut self.changes {
                    Some(changes) => changes.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = sleep => {}
                Some(change) = changes => self.apply(change),
            }
        }
        self.drain().await;
    }

    /// Runs the schedule `name` once now (with its jitter and retries) and
    /// waits for it: `mission trigger` when no host is up.
    pub async fn run_now(mut self, name: &str, trigger: StartedBy) {
        if self.entries.contains_key(name) {
            self.start_run(name, self.clock.now(), trigger, None);
        }
        while self.tasks.join_next().await.is_some() {}
    }

    /// Catch-up runs for downtime, then the first due time of each schedule.
    /// The due times that passed while the host was down are accounted for
    /// at once — caught up, told as missed, or passed over if the schedule
    /// is paused — so a later restart never counts them again.
    async fn start(&mut self) {
        let now = self.clock.now();
        let last_due = state::all_last_due(&self.db).await.unwrap_or_else(|e| {
            tracing::error!("failed to read the last due times, so nothing is caught up: {e:#}");
            HashMap::new()
        });
        let paused = self.paused().await;
        let mut catch_up = Vec::new();
        let mut passed = Vec::new();
        let names: Vec<String> = self.entries.keys().cloned().collect();
        for name in names {
            let schedule = self.entries[&name].schedule.clone();
            if let Some(&last) = last_due.get(&name) {
                let latest = schedule
                    .timing
                    .previous_at_or_before(now, schedule.zone)
                    .filter(|due| *due > last);
                match (paused.contains(&name), schedule.catch_up, latest) {
                    (_, _, None) => {}
                    (true, _, Some(latest)) => {
                        tracing::info!(schedule = %name, through = %latest, "paused: the due times while the host was down are not run");
                        passed.push((name.clone(), latest));
                    }
                    (false, CatchUp::Once, Some(due)) => {
                        tracing::info!(schedule = %name, %due, "catching up a run missed while the host was down");
                        catch_up.push(Fire::at(name.clone(), due));
                    }
                    (false, CatchUp::None, Some(_)) => {
                        if let Some(missed) = due_times_between(&schedule, last, now, MissReason::HostDown) {
                            tracing::warn!(schedule = %name, count = missed.count, first = %missed.first, "due times passed while the host was down (catch_up = none)");
                            self.drivers.runner.missed(schedule.clone(), missed).await;
                            passed.push((name.clone(), missed.last));
                        }
                    }
                }
            }
            self.push_next(&name, now);
        }
        if let Err(e) = state::set_last_due_many(&self.db, passed).await {
            tracing::error!("failed to record the due times passed while the host was down: {e:#}");
        }
        self.fire(&catch_up, StartedBy::CatchUp).await;
        tracing::info!(schedules = self.entries.len(), "scheduler started");
    }

    /// The names of the paused schedules (none, logged, if they cannot be read).
    async fn paused(&self) -> HashSet<String> {
        state::paused(&self.db).await.unwrap_or_else(|e| {
            tracing::error!("failed to read which schedules are paused, running all: {e:#}");
            HashSet::new()
        })
    }

    fn push_next(&mut self, name: &str, after: DateTime<Utc>) {
        let entry = &self.entries[name];
        let schedule = &entry.schedule;
        match schedule.timing.next_after(after, schedule.zone) {
            Some(next) => self.due.push(Reverse(Due {
                at: next,
                generation: entry.generation,
                name: name.to_owned(),
            })),
            None if matches!(schedule.timing, Timing::OnlyAfter) => {}
            None => tracing::warn!(schedule = %name, "`{}` never fires again", schedule.timing),
        }
    }

    fn time_to_next(&self) -> Duration {
        let now = self.clock.now();
        self.due.peek().map_or(CHECK_INTERVAL, |Reverse(due)| {
            (due.at - now).to_std().unwrap_or(Duration::ZERO)
        })
    }

    /// Fires every schedule whose due time has passed. Several due times
    /// missed at once (the machine slept) fire once, for the earliest.
    async fn fire_due(&mut self) {
        let now = self.clock.now();
        let mut due = Vec::new();
        while self.due.peek().is_some_and(|Reverse(due)| due.at <= now) {
            let Some(Reverse(Due { at, generation, name })) = self.due.pop() else {
                break;
            };
            let Some(entry) = self.entries.get(&name).filter(|e| e.generation == generation) else {
                continue; // removed or replaced since this due time was computed
            };
            let slept = (now - at)
                .to_std()
                .is_ok_and(|late| late > SLEEP_GAP)
                .then(|| due_times_between(&entry.schedule, at, now, MissReason::Slept))
                .flatten();
            due.push(Fire { name, due: at, slept });
        }
        self.fire(&due, StartedBy::Schedule).await;
        // The next due times after the runs have started: with thousands
        // due at once, computing them first would make every run late.
        for Fire { name, .. } in &due {
            if self.entries.contains_key(name) {
                self.push_next(name, now);
            }
        }
    }

    /// Starts a run of each [`Fire`] unless it is paused or its overlap
    /// policy says otherwise, then records the due times — a paused
    /// schedule's too, since they are not missed —, then tells the due
    /// times missed. The database is asked once for the whole batch, so a
    /// thousand schedules due at one minute start together.
    async fn fire(&mut self, fires: &[Fire], trigger: StartedBy) {
        if fires.is_empty() {
            return;
        }
        let paused = self.paused().await;
        let (held, firing): (Vec<_>, Vec<_>) = fires.iter().partition(|fire| paused.contains(&fire.name));
        for fire in held {
            tracing::info!(schedule = %fire.name, due = %fire.due, "paused: not run");
        }
        let mut skipped = Vec::new();
        for &&Fire { ref name, due, .. } in &firing {
            let entry = &self.entries[name];
            let mut slot = entry.slot.lock().unwrap();
            if slot.running > 0 {
                match entry.schedule.overlap {
                    Overlap::Skip => {
                        tracing::warn!(schedule = %name, %due, "previous run still going: skipped");
                        skipped.push((entry.schedule.clone(), due));
                        continue;
                    }
                    Overlap::Queue => {
                        if let Some(dropped) = slot.queued.replace(due) {
                            tracing::warn!(schedule = %name, due = %dropped, "a queued run was replaced by a newer one");
                        }
                        tracing::info!(schedule = %name, %due, "previous run still going: queued");
                        continue;
                    }
                    Overlap::Allow => {}
                }
            }
            slot.running += 1;
            drop(slot);
            let (schedule, slot) = (entry.schedule.clone(), entry.slot.clone());
            self.spawn_run(schedule, slot, due, trigger, None);
        }
        let slept: Vec<_> = firing
            .iter()
            .filter_map(|fire| Some((self.entries.get(&fire.name)?.schedule.clone(), fire.slept?)))
            .collect();
        let accounted = fires.iter().map(|fire| {
            let through = fire.slept.map_or(fire.due, |missed| missed.last);
            (fire.name.clone(), through)
        });
        if let Err(e) = state::set_last_due_many(&self.db, accounted.collect()).await {
            tracing::error!("failed to record due times: {e:#}");
        }
        for (schedule, missed) in slept {
            tracing::warn!(schedule = %schedule.name, count = missed.count, "the clock jumped past due times: one run makes up for them");
            self.drivers.runner.missed(schedule, missed).await;
        }
        for (schedule, due) in skipped {
            if let Err(e) = runs::record_skipped(&self.db, &schedule.plugin, &schedule.name, due).await {
                tracing::error!(schedule = %schedule.name, "failed to record the skipped run: {e:#}");
            }
            let missed = Missed {
                reason: MissReason::Overlap,
                first: due,
                last: due,
                count: 1,
            };
            self.drivers.runner.missed(schedule, missed).await;
        }
    }

    /// Starts a run of `name` for `due`; `done` is told when it is over.
    fn start_run(
        &mut self,
        name: &str,
        due: DateTime<Utc>,
        trigger: StartedBy,
        done: Option<oneshot::Sender<bool>>,
    ) {
        let entry = &self.entries[name];
        entry.slot.lock().unwrap().running += 1;
        let (schedule, slot) = (entry.schedule.clone(), entry.slot.clone());
        self.spawn_run(schedule, slot, due, trigger, done);
    }

    /// Spawns the run of `schedule` for `due`, its slot already counting it.
    fn spawn_run(
        &mut self,
        schedule: Arc<Schedule>,
        slot: Arc<Mutex<Slot>>,
        due: DateTime<Utc>,
        trigger: StartedBy,
        done: Option<oneshot::Sender<bool>>,
    ) {
        // One shared handle, not two: with thousands of runs starting at
        // once, every reference count touched is a cache line the two cores
        // fight over.
        let drivers = self.drivers.clone();
        self.tasks.spawn(async move {
            execute(&drivers.runner, &drivers.clock, schedule, slot, due, trigger).await;
            if let Some(done) = done {
                let _ = done.send(true);
            }
        });
    }

    /// Waits up to the grace period for running tasks, then interrupts them
    /// and records their runs as interrupted.
    async fn drain(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        tracing::info!(running = self.tasks.len(), grace = ?self.grace, "waiting for running tasks");
        let tasks = &mut self.tasks;
        let finished =
            tokio::time::timeout(self.grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!(
                running = self.tasks.len(),
                "grace period over: interrupting running tasks"
            );
            self.tasks.shutdown().await;
            match runs::interrupt_running(&self.db).await {
                Ok(count) => tracing::info!(count, "runs recorded as interrupted"),
                Err(e) => tracing::error!("failed to record interrupted runs: {e:#}"),
            }
        }
    }
}

/// One run of a schedule with its jitter (for due runs, not triggered ones)
/// and retries, then any run queued behind it.
async fn execute(
    runner: &Arc<dyn ScheduleRunner>,
    clock: &Arc<dyn Clock>,
    schedule: Arc<Schedule>,
    slot: Arc<Mutex<Slot>>,
    mut due: DateTime<Utc>,
    mut trigger: StartedBy,
) {
    let mut rng = fastrand::Rng::new();
    loop {
        let on_time = matches!(trigger, StartedBy::Schedule | StartedBy::CatchUp);
        if on_time && !schedule.jitter.is_zero() {
            clock.sleep(jitter_delay(schedule.jitter, &mut rng)).await;
        }
        for attempt in 1..=schedule.retries + 1 {
            if runner.run(schedule.clone(), due, attempt, trigger).await {
                break;
            }
            if attempt <= schedule.retries {
                let wait = schedule.backoff(attempt);
                tracing::info!(schedule = %schedule.name, attempt, ?wait, "run failed: retrying");
                clock.sleep(wait).await;
            }
        }
        let mut slot = slot.lock().unwrap();
        match slot.queued.take() {
            Some(next) => {
                due = next;
                trigger = StartedBy::Schedule;
            }
            None => {
                slot.running -= 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
