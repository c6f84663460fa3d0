//! Benchmark: `later`'s wake-ups at 10,000 waiting, each a real run of the
//! `nudge` fixture through the host. Prints the resident memory and idle CPU
//! of the wake-ups trigger with 10,000 waiting (against the same process
//! before it started), and, for 1,000 wake-ups due at one instant, how late
//! each was claimed and how late its run started (against one bare tokio
//! timer for the same instant, and one run of the same plugin alone), all
//! measured in this run.

#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use measure::median_and_p99;
use mission::capabilities::later::wakeups::{self, NewWakeUp};
use mission::config::Config;
use mission::host::Host;
use mission::triggers::{wakeups as wakeups_trigger, Invoker};

const WAITING: usize = 10_000;
const BURST: usize = 1_000;
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

/// CPU time this process's threads have spent running.
fn cpu_time() -> Duration {
    let nanos: u64 = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

async fn idle_share() -> f64 {
    let before = cpu_time();
    tokio::time::sleep(IDLE_WINDOW).await;
    (cpu_time() - before).as_secs_f64() / IDLE_WINDOW.as_secs_f64()
}

async fn add(host: &Host, count: usize, due_at: i64) {
    for i in 0..count {
        let wake_up = NewWakeUp {
            plugin: "nudge".into(),
            due_at,
            payload: format!("payload-{i}").into_bytes(),
            run: None,
        };
        wakeups::add(host.db(), wake_up, u32::MAX).await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let wasm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release/nudge.wasm");
    let text = format!(
        "data_dir = \"data\"\n[plugins.nudge]\nworld = \"task\"\nwasm = {:?}\ngrants = [\"later\"]\n",
        wasm.display().to_string()
    );
    let config = Config::parse(&dir.path().join("mission.toml"), &text).unwrap();
    let host = Arc::new(Host::open(config).await.unwrap());
    assert!(
        host.load_all().await.is_empty(),
        "the nudge fixture loads (./dev plugins)"
    );

    // One run alone, for what a run costs here.
    let alone = {
        let now = Utc::now().timestamp_millis();
        add(&host, 1, now).await;
        let trigger = wakeups_trigger::trigger(&Invoker::new(host.clone())).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(trigger.run(Box::pin(async {
            let _ = stopped.await;
        })));
        let started = Instant::now();
        while wakeups::waiting(host.db()).await.unwrap().0 > 0 || running(&host).await > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = started.elapsed();
        stop.send(()).unwrap();
        task.await.unwrap();
        took
    };

    // Idle: 10,000 waiting, none due for a day.
    let idle_before = idle_share().await;
    let rss_before = rss();
    add(&host, WAITING, Utc::now().timestamp_millis() + 86_400_000).await;
    let trigger = wakeups_trigger::trigger(&Invoker::new(host.clone())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(trigger.run(Box::pin(async {
        let _ = stopped.await;
    })));
    tokio::time::sleep(Duration::from_secs(1)).await; // past its start
    let idle = idle_share().await;
    let rss_after = rss();

    // Burst: 1,000 due at one instant, a few seconds ahead.
    let due = Utc::now().timestamp_millis() + 3_000;
    add(&host, BURST, due).await;
    // As `later` does: the trigger is told, and reads the table again.
    host.services().wakeups.notify_one();
    let timer = tokio::spawn(async move {
        let wait = (due - Utc::now().timestamp_millis()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        Duration::from_millis((Utc::now().timestamp_millis() - due).max(0) as u64)
    });
    let timer_late = timer.await.unwrap();
    while finished_since(&host, due).await < BURST {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = Duration::from_millis((Utc::now().timestamp_millis() - due).max(0) as u64);
    stop.send(()).unwrap();
    task.await.unwrap();
    let (claimed, started) = lateness(&host, due).await;
    let (claimed_median, claimed_p99) = median_and_p99(claimed);
    let (started_median, started_p99) = median_and_p99(started);

    println!("wake-ups: {WAITING} waiting, then {BURST} due at once (real runs of the nudge fixture)");
    println!(
        "  memory:    {:.1} MiB resident for {WAITING} waiting and the trigger ({} bytes each)",
        rss_after.saturating_sub(rss_before) as f64 / (1 << 20) as f64,
        rss_after.saturating_sub(rss_before) / WAITING as u64
    );
    println!(
        "  idle CPU:  {:.3}% of one core over {IDLE_WINDOW:?}; the same process before the trigger: {:.3}%",
        idle * 100.0,
        idle_before * 100.0
    );
    println!(
        "  burst:     claimed late by {claimed_median:.1?} median, {claimed_p99:.1?} p99; run started late by \
         {started_median:.1?} median, {started_p99:.1?} p99; all {BURST} done {drain:.2?} after due"
    );
    println!(
        "  baseline:  one bare tokio timer for the same instant late by {timer_late:.1?}; one wake-up's run alone \
         {alone:.1?} from due to done [{:.0} runs' worth for the p99 start]",
        started_p99.as_secs_f64() / alone.as_secs_f64().max(1e-9)
    );
}

async fn running(host: &Host) -> u64 {
    host.db()
        .call(|c| {
            c.query_row("SELECT count(*) FROM wakeups WHERE state = 'running'", [], |r| {
                r.get(0)
            })
        })
        .await
        .unwrap()
}

async fn finished_since(host: &Host, due: i64) -> usize {
    host.db()
        .call(move |c| {
            c.query_row(
                "SELECT count(*) FROM wakeups WHERE due_at = ?1 AND state = 'done'",
                [due],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap() as usize
}

/// For each wake-up due at `due`: how late it was claimed, and how late its
/// run started.
async fn lateness(host: &Host, due: i64) -> (Vec<Duration>, Vec<Duration>) {
    let rows: Vec<(i64, i64)> = host
        .db()
        .call(move |c| {
            let mut statement = c.prepare(
                "SELECT wakeups.started_at, runs.started_at FROM wakeups JOIN runs ON runs.wakeup = wakeups.id
                 WHERE wakeups.due_at = ?1",
            )?;
            let rows = statement.query_map([due], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
        .unwrap();
    let late = |at: i64| Duration::from_millis((at - due).max(0) as u64);
    rows.iter()
        .map(|&(claimed, started)| (late(claimed), late(started)))
        .unzip()
}
