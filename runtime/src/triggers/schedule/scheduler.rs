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
use super::{CatchUp, Overlap, Schedule};
use crate::db::Database;
use crate::host::runs::{self, StartedBy};

/// How often the wall clock is re-read even when nothing is due.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A gap in the wall clock past which the due times it swallowed count as
/// missed (the machine slept, or the host stalled): shorter ones are the
/// scheduler's own lateness under load.
const SLEEP_GAP: Duration = Duration::from_secs(60);

/// The most missed due times counted at once.
const MAX_COUNTED: u32 = 10_000;

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

/// Due times of a schedule that did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// Why.
    pub reason: MissReason,
    /// The first of them.
    pub first: DateTime<Utc>,
    /// The last of them: what the next count starts after, so no due time
    /// is counted twice.
    pub last: DateTime<Utc>,
    /// How many (at most [`MAX_COUNTED`]).
    pub count: u32,
}

/// Why due times did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissReason {
    /// The host was down, and `catch_up = "none"`.
    HostDown,
    /// The previous run was still going, and `overlap = "skip"`.
    Overlap,
    /// The wall clock jumped past them: the machine slept (one run made up
    /// for them on wake).
    Slept,
}

impl MissReason {
    /// Its name in records.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::HostDown => "host_down",
            MissReason::Overlap => "overlap",
            MissReason::Slept => "slept",
        }
    }
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

/// The due times of `schedule` after `after` up to `until`, if any, as
/// missed for `reason` (counted up to [`MAX_COUNTED`]; the last is the
/// latest, counted or not).
fn due_times_between(
    schedule: &Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    reason: MissReason,
) -> Option<Missed> {
    let first = schedule
        .timing
        .next_after(after, schedule.zone)
        .filter(|t| *t <= until)?;
    let mut count = 1;
    let mut at = first;
    while count < MAX_COUNTED {
        match schedule.timing.next_after(at, schedule.zone) {
            Some(next) if next <= until => {
                count += 1;
                at = next;
            }
            _ => break,
        }
    }
    let last = match count {
        MAX_COUNTED => schedule
            .timing
            .previous_at_or_before(until, schedule.zone)
            .unwrap_or(at),
        _ => at,
    };
    Some(Missed {
        reason,
        first,
        last,
        count,
    })
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
mod tests {
    use std::collections::VecDeque;

    use chrono_tz::Tz;
    use tokio::sync::{oneshot, Semaphore};

    use super::*;
    use crate::host::runs::RunOutcome;
    use crate::triggers::schedule::clock::ManualClock;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn schedule(name: &str, cron: &str) -> Schedule {
        Schedule {
            plugin: "task".into(),
            ..Schedule::for_test(name, cron, Tz::UTC)
        }
    }

    /// One attempt as the runner saw it.
    #[derive(Debug, Clone, PartialEq)]
    struct Attempt {
        schedule: String,
        due: DateTime<Utc>,
        attempt: u32,
        trigger: StartedBy,
        at: DateTime<Utc>,
    }

    /// Records attempts; fails the ones scripted to fail; with a gate, each
    /// attempt waits for a permit, so a test decides when runs end.
    struct FakeRunner {
        clock: ManualClock,
        attempts: Mutex<Vec<Attempt>>,
        failures: Mutex<VecDeque<bool>>,
        gate: Option<Arc<Semaphore>>,
        misses: Mutex<Vec<(String, Missed)>>,
    }

    impl ScheduleRunner for FakeRunner {
        fn run(
            &self,
            schedule: Arc<Schedule>,
            due: DateTime<Utc>,
            attempt: u32,
            trigger: StartedBy,
        ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
            let at = self.clock.now();
            self.attempts.lock().unwrap().push(Attempt {
                schedule: schedule.name.clone(),
                due,
                attempt,
                trigger,
                at,
            });
            let fail = self.failures.lock().unwrap().pop_front().unwrap_or(false);
            let gate = self.gate.clone();
            Box::pin(async move {
                if let Some(gate) = gate {
                    gate.acquire().await.unwrap().forget();
                }
                !fail
            })
        }

        fn missed(
            &self,
            schedule: Arc<Schedule>,
            missed: Missed,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            self.misses.lock().unwrap().push((schedule.name.clone(), missed));
            Box::pin(async {})
        }
    }

    struct Harness {
        clock: ManualClock,
        runner: Arc<FakeRunner>,
        db: Database,
        ticks: mpsc::UnboundedReceiver<()>,
        changes: mpsc::UnboundedSender<ScheduleChange>,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
        _dir: tempfile::TempDir,
    }

    struct Options {
        start: &'static str,
        failures: Vec<bool>,
        gated: bool,
        dir: Option<tempfile::TempDir>,
    }

    impl Options {
        /// Every run waits for [`Harness::finish_runs`].
        fn gated() -> Self {
            Self {
                gated: true,
                ..Self::default()
            }
        }
    }

    impl Default for Options {
        fn default() -> Self {
            Self {
                start: "2026-11-24T10:00:30Z",
                failures: Vec::new(),
                gated: false,
                dir: None,
            }
        }
    }

    impl Harness {
        async fn start(schedules: Vec<Schedule>, options: Options) -> Harness {
            let dir = options.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
            let db = Database::open(&dir.path().join("db")).unwrap();
            let clock = ManualClock::new(utc(options.start));
            let runner = Arc::new(FakeRunner {
                clock: clock.clone(),
                attempts: Mutex::default(),
                failures: Mutex::new(options.failures.into()),
                gate: options.gated.then(|| Arc::new(Semaphore::new(0))),
                misses: Mutex::default(),
            });
            let mut scheduler = Scheduler::new(
                schedules,
                Arc::new(clock.clone()),
                runner.clone(),
                db.clone(),
                Duration::from_millis(50),
            );
            let mut ticks = scheduler.observe_ticks();
            let changes = scheduler.changes();
            let (stop, stopped) = oneshot::channel();
            let task = tokio::spawn(scheduler.run(async {
                let _ = stopped.await;
            }));
            ticks.recv().await.unwrap();
            Harness {
                clock,
                runner,
                db,
                ticks,
                changes,
                stop: Some(stop),
                task,
                _dir: dir,
            }
        }

        /// Lets `duration` pass (at least a second) and waits for the
        /// scheduler to handle it.
        async fn step(&mut self, duration: Duration) {
            self.clock.advance(duration);
            tokio::time::timeout(Duration::from_secs(10), self.ticks.recv())
                .await
                .unwrap()
                .unwrap();
        }

        /// Lets `seconds` pass one second at a time.
        async fn step_secs(&mut self, seconds: u64) {
            for _ in 0..seconds {
                self.step(Duration::from_secs(1)).await;
            }
        }

        /// Sends `change` and waits for the scheduler to apply it.
        async fn change(&mut self, change: ScheduleChange) {
            self.changes.send(change).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.ticks.recv())
                .await
                .unwrap()
                .unwrap();
        }

        fn misses(&self) -> Vec<(String, Missed)> {
            self.runner.misses.lock().unwrap().clone()
        }

        fn attempts(&self) -> Vec<Attempt> {
            self.runner.attempts.lock().unwrap().clone()
        }

        /// Waits until `count` attempts have started, then a moment more so a
        /// wrong extra one would show.
        async fn expect_attempts(&self, count: usize) -> Vec<Attempt> {
            let waited = tokio::time::timeout(Duration::from_secs(10), async {
                while self.attempts().len() < count {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
            let attempts = self.attempts();
            assert!(
                waited.is_ok() && attempts.len() == count,
                "expected {count} attempts, got {attempts:#?}"
            );
            attempts
        }

        fn finish_runs(&self, count: usize) {
            self.runner.gate.as_ref().unwrap().add_permits(count);
        }

        async fn stop(mut self) -> tempfile::TempDir {
            self.stop.take().unwrap().send(()).unwrap();
            self.task.await.unwrap();
            self._dir
        }
    }

    #[tokio::test]
    async fn fires_at_each_due_time_once() {
        let mut h = Harness::start(vec![schedule("every5", "*/5 * * * *")], Options::default()).await;
        h.step_secs(269).await;
        h.expect_attempts(0).await;
        h.step_secs(1).await; // 10:05:00
        h.step(Duration::from_secs(300)).await; // 10:10:00
        let attempts = h.expect_attempts(2).await;
        assert_eq!(attempts[0].due, utc("2026-11-24T10:05:00Z"));
        assert_eq!(attempts[1].due, utc("2026-11-24T10:10:00Z"));
        assert!(attempts
            .iter()
            .all(|a| a.trigger == StartedBy::Schedule && a.attempt == 1));
        h.stop().await;
    }

    #[tokio::test]
    async fn an_edited_or_re_added_schedule_fires_once_at_its_new_times() {
        let mut h = Harness::start(vec![schedule("news", "30 * * * *")], Options::default()).await;
        h.change(ScheduleChange::Remove("news".into())).await;
        h.change(ScheduleChange::Upsert(Box::new(schedule("news", "30 * * * *"))))
            .await;
        h.step_secs(1800).await; // 10:30:30
        let attempts = h.expect_attempts(1).await;
        assert_eq!(attempts[0].due, utc("2026-11-24T10:30:00Z"));

        h.change(ScheduleChange::Upsert(Box::new(schedule("news", "45 * * * *"))))
            .await;
        h.step(Duration::from_secs(3600)).await; // 11:30:30: the old 11:30 is gone
        let attempts = h.expect_attempts(2).await; // the new 10:45 fired on the way
        assert_eq!(attempts[1].due, utc("2026-11-24T10:45:00Z"));
        h.step(Duration::from_secs(900)).await; // 11:45:30
        let attempts = h.expect_attempts(3).await;
        assert_eq!(attempts[2].due, utc("2026-11-24T11:45:00Z"));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_machine_waking_from_sleep_runs_a_missed_job_exactly_once() {
        let mut h = Harness::start(vec![schedule("hourly", "0 * * * *")], Options::default()).await;
        // Suspended for three hours: the wall clock jumps, the monotonic
        // clock does not; the next re-check (within a second) sees it.
        h.clock.jump_wall(Duration::from_secs(3 * 3600));
        h.step_secs(1).await;
        let attempts = h.expect_attempts(1).await;
        assert_eq!(attempts[0].due, utc("2026-11-24T11:00:00Z"));
        assert_eq!(attempts[0].at, utc("2026-11-24T13:00:31Z"));
        let missed = Missed {
            reason: MissReason::Slept,
            first: utc("2026-11-24T12:00:00Z"),
            last: utc("2026-11-24T13:00:00Z"),
            count: 2,
        };
        assert_eq!(
            h.misses(),
            [("hourly".to_owned(), missed)],
            "12:00 and 13:00 are told"
        );
        // And then on time again, at 14:00.
        h.step(Duration::from_secs(3600)).await;
        let attempts = h.expect_attempts(2).await;
        assert_eq!(attempts[1].due, utc("2026-11-24T14:00:00Z"));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_restart_catches_up_once_only_if_the_policy_says_so() {
        let mut once = schedule("once", "0 * * * *");
        once.catch_up = CatchUp::Once;
        let none = schedule("none", "0 * * * *");
        // The host last fired both at 09:00 and was down until 12:30.
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(&dir.path().join("db")).unwrap();
            let fired = vec![
                ("once".into(), utc("2026-11-24T09:00:00Z")),
                ("none".into(), utc("2026-11-24T09:00:00Z")),
            ];
            state::set_last_due_many(&db, fired).await.unwrap();
        }
        let options = Options {
            start: "2026-11-24T12:30:00Z",
            dir: Some(dir),
            ..Options::default()
        };
        let h = Harness::start(vec![once.clone(), none.clone()], options).await;
        let attempts = h.expect_attempts(1).await;
        assert_eq!(attempts[0].schedule, "once");
        assert_eq!(attempts[0].trigger, StartedBy::CatchUp);
        assert_eq!(attempts[0].due, utc("2026-11-24T12:00:00Z"));
        let missed = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-24T10:00:00Z"),
            last: utc("2026-11-24T12:00:00Z"),
            count: 3,
        };
        assert_eq!(h.misses(), [("none".to_owned(), missed)], "only `none` is told");
        let dir = h.stop().await;

        // Restarted again before the next due time: nothing to catch up.
        let options = Options {
            start: "2026-11-24T12:45:00Z",
            dir: Some(dir),
            ..Options::default()
        };
        let h = Harness::start(vec![once, none], options).await;
        h.expect_attempts(0).await;
        h.stop().await;
    }

    #[tokio::test]
    async fn overlap_skip_drops_a_run_due_while_the_last_is_going() {
        let options = Options::gated();
        let mut h = Harness::start(vec![schedule("slow", "* * * * *")], options).await;
        h.step_secs(30).await; // 10:01:00, the first run starts and hangs
        h.step(Duration::from_secs(60)).await; // 10:02:00, skipped
        h.expect_attempts(1).await;
        let skipped = runs::recent(&h.db, Some("slow"), 10).await.unwrap();
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].outcome, RunOutcome::Skipped);
        assert_eq!(skipped[0].scheduled_at, utc("2026-11-24T10:02:00Z"));
        let missed = Missed {
            reason: MissReason::Overlap,
            first: utc("2026-11-24T10:02:00Z"),
            last: utc("2026-11-24T10:02:00Z"),
            count: 1,
        };
        assert_eq!(h.misses(), [("slow".to_owned(), missed)]);
        h.finish_runs(1);
        h.step(Duration::from_secs(60)).await; // 10:03:00, runs
        let attempts = h.expect_attempts(2).await;
        assert_eq!(attempts[1].due, utc("2026-11-24T10:03:00Z"));
        h.finish_runs(1);
        h.stop().await;
    }

    #[tokio::test]
    async fn overlap_queue_runs_one_waiting_run_after_the_last_ends() {
        let mut slow = schedule("slow", "* * * * *");
        slow.overlap = Overlap::Queue;
        let mut h = Harness::start(vec![slow], Options::gated()).await;
        h.step_secs(30).await; // 10:01, runs and hangs
        h.step(Duration::from_secs(60)).await; // 10:02, queued
        h.step(Duration::from_secs(60)).await; // 10:03, replaces the queued one
        h.expect_attempts(1).await;
        h.finish_runs(1);
        let attempts = h.expect_attempts(2).await;
        assert_eq!(attempts[1].due, utc("2026-11-24T10:03:00Z"));
        h.finish_runs(1);
        h.expect_attempts(2).await;
        h.stop().await;
    }

    #[tokio::test]
    async fn overlap_allow_runs_in_parallel() {
        let mut slow = schedule("slow", "* * * * *");
        slow.overlap = Overlap::Allow;
        let mut h = Harness::start(vec![slow], Options::gated()).await;
        h.step_secs(30).await;
        h.step(Duration::from_secs(60)).await;
        h.step(Duration::from_secs(60)).await;
        h.expect_attempts(3).await;
        h.finish_runs(3);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_failed_run_is_retried_with_doubling_backoff() {
        let mut flaky = schedule("flaky", "0 11 * * *");
        flaky.retries = 3;
        flaky.retry_backoff = Duration::from_secs(10);
        let options = Options {
            start: "2026-11-24T10:59:59Z",
            failures: vec![true, true],
            ..Options::default()
        };
        let mut h = Harness::start(vec![flaky], options).await;
        h.step_secs(1).await; // 11:00:00, attempt 1 fails
        h.expect_attempts(1).await;
        h.step_secs(9).await;
        h.expect_attempts(1).await;
        h.step_secs(1).await; // +10s: attempt 2 fails
        h.expect_attempts(2).await;
        h.step_secs(19).await;
        h.expect_attempts(2).await;
        h.step_secs(1).await; // +20s: attempt 3 succeeds
        let attempts = h.expect_attempts(3).await;
        h.step_secs(60).await;
        h.expect_attempts(3).await;
        let numbers: Vec<_> = attempts.iter().map(|a| (a.attempt, a.at)).collect();
        assert_eq!(
            numbers,
            [
                (1, utc("2026-11-24T11:00:00Z")),
                (2, utc("2026-11-24T11:00:10Z")),
                (3, utc("2026-11-24T11:00:30Z"))
            ]
        );
        assert!(attempts.iter().all(|a| a.due == utc("2026-11-24T11:00:00Z")));
        h.stop().await;
    }

    #[tokio::test]
    async fn retries_stop_after_the_last_attempt() {
        let mut failing = schedule("failing", "0 11 * * *");
        failing.retries = 1;
        let options = Options {
            start: "2026-11-24T10:59:59Z",
            failures: vec![true; 5],
            ..Options::default()
        };
        let mut h = Harness::start(vec![failing], options).await;
        h.step_secs(1).await;
        h.step_secs(15).await;
        h.step_secs(60).await;
        let attempts = h.expect_attempts(2).await;
        assert_eq!(attempts[1].attempt, 2);
        h.stop().await;
    }

    #[test]
    fn jitter_stays_within_its_bound_and_spreads() {
        let mut rng = fastrand::Rng::with_seed(7);
        let max = Duration::from_secs(30);
        let delays: Vec<_> = (0..2000).map(|_| jitter_delay(max, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= max));
        assert!(delays.iter().any(|d| *d < Duration::from_secs(3)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(27)));
        assert_eq!(jitter_delay(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[tokio::test]
    async fn jitter_delays_the_start_of_a_run_within_its_bound() {
        let mut jittery = schedule("jittery", "0 11 * * *");
        jittery.jitter = Duration::from_secs(20);
        let options = Options {
            start: "2026-11-24T10:59:59Z",
            ..Options::default()
        };
        let mut h = Harness::start(vec![jittery], options).await;
        h.step_secs(21).await;
        let attempts = h.expect_attempts(1).await;
        let delay = attempts[0].at - utc("2026-11-24T11:00:00Z");
        assert!(
            delay >= chrono::TimeDelta::zero() && delay <= chrono::TimeDelta::seconds(20),
            "{delay}"
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn a_paused_schedule_does_not_fire_until_resumed_across_restarts() {
        let mut h = Harness::start(vec![schedule("hourly", "0 * * * *")], Options::default()).await;
        state::set_paused(&h.db, "hourly", true).await.unwrap();
        h.step(Duration::from_secs(3600)).await; // 11:00, paused
        h.expect_attempts(0).await;
        let dir = h.stop().await;

        let db = Database::open(&dir.path().join("db")).unwrap();
        assert!(
            state::is_paused(&db, "hourly").await.unwrap(),
            "pause did not persist"
        );
        let options = Options {
            start: "2026-11-24T11:30:00Z",
            dir: Some(dir),
            ..Options::default()
        };
        let mut h = Harness::start(vec![schedule("hourly", "0 * * * *")], options).await;
        h.step(Duration::from_secs(1800)).await; // 12:00, still paused
        h.expect_attempts(0).await;
        state::set_paused(&h.db, "hourly", false).await.unwrap();
        h.step(Duration::from_secs(3600)).await; // 13:00
        let attempts = h.expect_attempts(1).await;
        assert_eq!(attempts[0].due, utc("2026-11-24T13:00:00Z"));
        h.stop().await;
    }

    /// Restarts the scheduler over `dir` at `start`.
    async fn restart(schedules: Vec<Schedule>, dir: tempfile::TempDir, start: &'static str) -> Harness {
        let options = Options {
            start,
            dir: Some(dir),
            ..Options::default()
        };
        Harness::start(schedules, options).await
    }

    #[tokio::test]
    async fn a_paused_schedule_s_due_times_are_never_told_as_missed() {
        let payroll = || schedule("payroll", "* * * * *");
        let mut h = Harness::start(vec![payroll()], Options::default()).await;
        h.step_secs(30).await; // 10:01, runs
        h.expect_attempts(1).await;
        state::set_paused(&h.db, "payroll", true).await.unwrap();
        h.step(Duration::from_secs(60)).await; // 10:02, paused: not run
        h.step(Duration::from_secs(59)).await; // 10:02:59, the host stops
        let dir = h.stop().await;

        // Back at 10:30, still paused: nothing missed.
        let h = restart(vec![payroll()], dir, "2026-11-24T10:30:00Z").await;
        h.expect_attempts(0).await;
        assert_eq!(h.misses(), [], "paused, not missed");
        // Resumed while the host is down again: only 10:41 and 10:42 are
        // missed, not the due times passed while it was paused.
        state::set_paused(&h.db, "payroll", false).await.unwrap();
        let dir = h.stop().await;
        let h = restart(vec![payroll()], dir, "2026-11-24T10:42:30Z").await;
        let missed = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-24T10:31:00Z"),
            last: utc("2026-11-24T10:42:00Z"),
            count: 12,
        };
        assert_eq!(h.misses(), [("payroll".to_owned(), missed)]);
        h.stop().await;
    }

    #[tokio::test]
    async fn a_paused_schedule_held_while_the_host_ran_counts_from_its_last_held_due_time() {
        let payroll = || schedule("payroll", "* * * * *");
        let mut h = Harness::start(vec![payroll()], Options::default()).await;
        h.step_secs(30).await; // 10:01, runs
        state::set_paused(&h.db, "payroll", true).await.unwrap();
        h.step(Duration::from_secs(60)).await; // 10:02, held
        h.step(Duration::from_secs(60)).await; // 10:03, held
        state::set_paused(&h.db, "payroll", false).await.unwrap();
        h.step_secs(30).await; // 10:03:30, resumed; the host stops
        let dir = h.stop().await;
        let h = restart(vec![payroll()], dir, "2026-11-24T10:05:30Z").await;
        let missed = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-24T10:04:00Z"),
            last: utc("2026-11-24T10:05:00Z"),
            count: 2,
        };
        assert_eq!(
            h.misses(),
            [("payroll".to_owned(), missed)],
            "10:02 and 10:03 were paused"
        );
        h.stop().await;
    }

    #[tokio::test]
    async fn a_missed_due_time_is_told_once_however_often_the_host_restarts() {
        let hourly = || schedule("hourly", "0 * * * *");
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(&dir.path().join("db")).unwrap();
            let fired = vec![("hourly".into(), utc("2026-11-24T09:00:00Z"))];
            state::set_last_due_many(&db, fired).await.unwrap();
        }
        let h = restart(vec![hourly()], dir, "2026-11-24T12:30:00Z").await;
        assert_eq!(h.misses().len(), 1, "10:00 to 12:00");
        let dir = h.stop().await;
        let h = restart(vec![hourly()], dir, "2026-11-24T12:45:00Z").await;
        assert_eq!(h.misses(), [], "told already");
        let dir = h.stop().await;
        let h = restart(vec![hourly()], dir, "2026-11-24T13:30:00Z").await;
        let missed = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-24T13:00:00Z"),
            last: utc("2026-11-24T13:00:00Z"),
            count: 1,
        };
        assert_eq!(h.misses(), [("hourly".to_owned(), missed)], "only the new one");
        h.stop().await;

        // A weekly schedule's miss, a restart more than a day later: not again.
        let weekly = || schedule("weekly", "0 9 * * 1");
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::open(&dir.path().join("db")).unwrap();
            let fired = vec![("weekly".into(), utc("2026-11-16T09:00:00Z"))];
            state::set_last_due_many(&db, fired).await.unwrap();
        }
        let h = restart(vec![weekly()], dir, "2026-11-24T10:00:00Z").await;
        assert_eq!(h.misses().len(), 1, "Monday 23rd 09:00");
        let dir = h.stop().await;
        let h = restart(vec![weekly()], dir, "2026-11-26T10:00:00Z").await;
        assert_eq!(h.misses(), [], "two days later, the same miss is not told again");
        h.stop().await;
    }

    #[tokio::test]
    async fn due_times_slept_through_are_not_told_again_after_a_restart() {
        let hourly = || schedule("hourly", "0 * * * *");
        let mut h = Harness::start(vec![hourly()], Options::default()).await;
        h.clock.jump_wall(Duration::from_secs(3 * 3600));
        h.step_secs(1).await; // 13:00:31: 11:00 runs, 12:00 and 13:00 told
        h.expect_attempts(1).await;
        assert_eq!(h.misses().len(), 1);
        let dir = h.stop().await;
        let h = restart(vec![hourly()], dir, "2026-11-24T13:20:00Z").await;
        assert_eq!(h.misses(), [], "12:00 and 13:00 were told when it woke");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_paused_schedule_s_slept_due_times_are_not_missed() {
        let mut h = Harness::start(vec![schedule("hourly", "0 * * * *")], Options::default()).await;
        state::set_paused(&h.db, "hourly", true).await.unwrap();
        h.clock.jump_wall(Duration::from_secs(3 * 3600));
        h.step_secs(1).await;
        h.expect_attempts(0).await;
        assert_eq!(h.misses(), [], "paused");
        h.stop().await;
    }

    #[tokio::test]
    async fn dst_spring_forward_fires_once_right_after_the_gap() {
        let mut night = schedule("night", "30 2 * * *");
        night.zone = chrono_tz::Europe::Berlin;
        let options = Options {
            start: "2026-03-29T00:59:00Z",
            ..Options::default()
        };
        let mut h = Harness::start(vec![night], options).await;
        h.step_secs(60).await; // 01:00 UTC = 03:00 CEST
        let attempts = h.expect_attempts(1).await;
        assert_eq!(attempts[0].due, utc("2026-03-29T01:00:00Z"));
        h.step(Duration::from_secs(6 * 3600)).await;
        h.expect_attempts(1).await;
        h.stop().await;
    }

    #[tokio::test]
    async fn shutdown_interrupts_runs_past_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let run = crate::host::runs::RunStart {
            plugin: "task",
            schedule: Some("slow"),
            trigger: StartedBy::Schedule,
            scheduled_at: Utc::now(),
            attempt: 1,
        };
        let id = runs::start(&db, run).await.unwrap();
        let options = Options {
            dir: Some(dir),
            ..Options::gated()
        };
        let mut h = Harness::start(vec![schedule("slow", "* * * * *")], options).await;
        h.step_secs(30).await;
        h.expect_attempts(1).await; // hangs forever; the grace is 50ms
        let dir = h.stop().await;
        let db = Database::open(&dir.path().join("db")).unwrap();
        let record = runs::recent(&db, Some("slow"), 1).await.unwrap().pop().unwrap();
        assert_eq!((record.id, record.outcome.as_str()), (id, "interrupted"));
    }
}
