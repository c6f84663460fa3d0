//! Benchmark: the scheduler at 10,000 schedules. Prints load time (against
//! reading the same files raw), resident memory, idle CPU over a fixed
//! window (against the same process idle without a scheduler), and fire
//! lateness for 10,000 schedules due at the same minute (against one bare
//! tokio timer for the same instant), all measured in this run.
//!
//! The runner records when each run would start instead of calling a
//! plugin, so the figures are the scheduler's own. Takes up to ~80 s: the
//! burst waits for the next minute boundary.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use mission::config::Config;
use mission::db::Database;
use mission::host::runs::StartedBy;
use mission::triggers::schedule::clock::SystemClock;
use mission::triggers::schedule::scheduler::{Missed, ScheduleRunner, Scheduler};
use mission::triggers::schedule::{self, Schedule};

const SCHEDULES: usize = 10_000;
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// Records how late each run started, and due times it heard were missed.
#[derive(Default)]
struct LatenessRunner {
    late: Mutex<Vec<Duration>>,
    missed: Mutex<u64>,
}

impl ScheduleRunner for LatenessRunner {
    fn run(
        &self,
        _: Arc<Schedule>,
        due: DateTime<Utc>,
        _: u32,
        _: StartedBy,
    ) -> Pin<Box<dyn Future<Output = bool> + Send>> {
        let late = (Utc::now() - due).to_std().unwrap_or_default();
        self.late.lock().unwrap().push(late);
        Box::pin(async { true })
    }

    fn missed(&self, _: Arc<Schedule>, missed: Missed) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        *self.missed.lock().unwrap() += u64::from(missed.count);
        Box::pin(async {})
    }
}

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// CPU time this process's threads have spent running, in nanoseconds
/// (`/proc/self/task/*/schedstat`, finer than the 10 ms of `/proc/self/stat`).
fn cpu_time() -> Duration {
    let nanos: u64 = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

fn write_schedules(dir: &Path, cron: &str) -> Config {
    let schedules = dir.join("schedules");
    std::fs::create_dir_all(&schedules).unwrap();
    for i in 0..SCHEDULES {
        let zone = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"][i % 4];
        std::fs::write(
            schedules.join(format!("s{i:05}.toml")),
            format!("plugin = \"task\"\ncron = \"{cron}\"\ntimezone = \"{zone}\"\noverlap = \"allow\"\n"),
        )
        .unwrap();
    }
    let text = "data_dir = \"data\"\n[plugins.task]\nworld = \"task\"\nwasm = \"task.wasm\"\n";
    Config::parse(&dir.join("mission.toml"), text).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn idle_cpu(config: &Config, db: &Database) -> (f64, f64) {
    let before = cpu_time();
    tokio::time::sleep(IDLE_WINDOW).await;
    let baseline = (cpu_time() - before).as_secs_f64() / IDLE_WINDOW.as_secs_f64();

    let (schedules, _) = schedule::load_all(config, chrono_tz::Tz::UTC);
    let runner = Arc::new(LatenessRunner::default());
    let scheduler = Scheduler::new(
        schedules,
        Arc::new(SystemClock),
        runner,
        db.clone(),
        Duration::from_secs(1),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(1)).await; // past start-up
    let before = cpu_time();
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle = (cpu_time() - before).as_secs_f64() / IDLE_WINDOW.as_secs_f64();
    stop.send(()).unwrap();
    task.await.unwrap();
    (baseline, idle)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("bench.db")).unwrap();

    // Load: the same 10,000 files read raw, then parsed and validated.
    let config = write_schedules(dir.path(), "* * * * *");
    let started = Instant::now();
    let raw_bytes: usize = std::fs::read_dir(&config.schedules_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap().len())
        .sum();
    let raw_read = started.elapsed();
    let rss_before = rss();
    let started = Instant::now();
    let (schedules, errors) = schedule::load_all(&config, chrono_tz::Tz::UTC);
    let load = started.elapsed();
    assert!(errors.is_empty() && schedules.len() == SCHEDULES);
    let runner = Arc::new(LatenessRunner::default());
    let scheduler = Scheduler::new(
        schedules,
        Arc::new(SystemClock),
        runner.clone(),
        db.clone(),
        Duration::from_secs(5),
    );
    let rss_after = rss();

    // Burst: every schedule due at the next minute boundary.
    let now = Utc::now();
    let boundary = now.with_second(0).unwrap().with_nanosecond(0).unwrap() + chrono::TimeDelta::minutes(1);
    let baseline_timer = tokio::spawn(async move {
        tokio::time::sleep((boundary - Utc::now()).to_std().unwrap()).await;
        (Utc::now() - boundary).to_std().unwrap_or_default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(async {
        let _ = stopped.await;
    }));
    eprintln!(
        "waiting {}s for the burst at {boundary}",
        (boundary - now).num_seconds()
    );
    let timer_late = baseline_timer.await.unwrap();
    while runner.late.lock().unwrap().len() < SCHEDULES {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
    let mut late = runner.late.lock().unwrap().clone();
    late.sort();

    // Idle: 10,000 schedules none of which is due for months.
    let idle_dir = tempfile::tempdir().unwrap();
    let idle_config = write_schedules(idle_dir.path(), "0 0 1 1 *");
    let (idle_baseline, idle) = idle_cpu(&idle_config, &db).await;

    println!("scheduler: {SCHEDULES} schedules");
    println!(
        "  load:      {load:.2?} to parse and validate ({:.1} us each); reading the {} KB raw: {raw_read:.2?} [{:.1}x]",
        load.as_secs_f64() * 1e6 / SCHEDULES as f64,
        raw_bytes / 1000,
        load.as_secs_f64() / raw_read.as_secs_f64()
    );
    println!(
        "  memory:    {:.1} MiB resident for the schedules and the scheduler ({} bytes each)",
        (rss_after.saturating_sub(rss_before)) as f64 / (1 << 20) as f64,
        rss_after.saturating_sub(rss_before) / SCHEDULES as u64
    );
    println!(
        "  idle CPU:  {:.3}% of one core over {IDLE_WINDOW:?}; the process without a scheduler: {:.3}%",
        idle * 100.0,
        idle_baseline * 100.0
    );
    println!(
        "  burst:     lateness of {SCHEDULES} runs due at one minute: median {:.1?}, p99 {:.1?}, max {:.1?}; one bare tokio timer for the same instant: {timer_late:.1?}",
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        late.last().unwrap()
    );
    println!(
        "  missed:    {} due times told as missed during the burst (0 unless the scheduler fell a minute behind)",
        runner.missed.lock().unwrap()
    );
}
