//! The scheduler's tests: a fake clock and runner drive it through due
//! times, restarts, sleeps, pauses, retries and shutdown.

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

    fn missed(&self, schedule: Arc<Schedule>, missed: Missed) -> Pin<Box<dyn Future<Output = ()> + Send>> {
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
