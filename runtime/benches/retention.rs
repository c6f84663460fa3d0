//! Benchmark: a year of the user's load in the SQLite file, with a fast
//! clock. 50 schedules (one every minute, four every 15 minutes, ten hourly,
//! 35 daily: 2,099 runs a day, a tenth with 4 KiB of output, the rest
//! 200 B) and 100 Telegram messages a day (each an update with its reply,
//! two history entries, two API transcript entries, a ledger row, and two
//! chat call records: the live handler's and a shadow's, as if a pilot ran
//! all year), five tool approvals, 300 HTTP records and five plugin loads a
//! day. Day by day, one file is
//! pruned with the default `[retention]` as `mission up` would; the
//! baseline file, in the same run, takes the same load and is never
//! pruned. Prints both files' sizes through the year, and how long the
//! daily prunes took. Aim: under 100 MB after a year.

#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use measure::year::{checkpoint, file_mb, write_day, DAYS, DAY_MS, MESSAGES_A_DAY};
use mission::config::retention::Retention;
use mission::db::retention::{prune, Policy};
use mission::db::Database;
use mission::serve::pruning::RULES;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let pruned_path = dir.path().join("pruned/mission.db");
    let baseline_path = dir.path().join("baseline/mission.db");
    std::fs::create_dir_all(pruned_path.parent().unwrap()).unwrap();
    std::fs::create_dir_all(baseline_path.parent().unwrap()).unwrap();
    let pruned = Database::open(&pruned_path).unwrap();
    let baseline = Database::open(&baseline_path).unwrap();
    let policy = Policy {
        retention: Retention::default(),
        history: Retention::default().history,
    };
    println!("a year of 50 schedules and {MESSAGES_A_DAY} messages a day, default [retention]");
    println!(
        "{:>5} {:>14} {:>14} {:>8}",
        "day", "pruned MB", "baseline MB", "ratio"
    );
    let start = Utc::now().timestamp_millis() - DAYS * DAY_MS;
    let mut prune_times = Vec::new();
    let mut ids = (0, 0);
    for day in 0..DAYS {
        let day_start = start + day * DAY_MS;
        pruned
            .call(move |c| {
                let mut id = ids.0;
                write_day(c, day, day_start, &mut id).map(|()| id)
            })
            .await
            .map(|id| ids.0 = id)
            .unwrap();
        baseline
            .call(move |c| {
                let mut id = ids.1;
                write_day(c, day, day_start, &mut id).map(|()| id)
            })
            .await
            .map(|id| ids.1 = id)
            .unwrap();
        let now: DateTime<Utc> = DateTime::from_timestamp_millis(day_start + DAY_MS).unwrap();
        let began = Instant::now();
        prune(&pruned, &policy, now, RULES).await.unwrap();
        prune_times.push(began.elapsed());
        if [29, 89, 179, 364].contains(&day) {
            checkpoint(&pruned).await;
            checkpoint(&baseline).await;
            let (p, b) = (file_mb(&pruned_path), file_mb(&baseline_path));
            println!("{:>5} {p:>14.1} {b:>14.1} {:>7.2}x", day + 1, b / p);
        }
    }
    prune_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "daily prune (a day's worth of rows, in batches of 500): median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(prune_times[prune_times.len() / 2]),
        ms(prune_times[prune_times.len() * 99 / 100]),
        ms(*prune_times.last().unwrap())
    );
    let year = file_mb(&pruned_path);
    println!(
        "after a year: {year:.1} MB pruned (aim: under 100 MB) against {:.1} MB never pruned",
        file_mb(&baseline_path)
    );
    let tables = pruned
        .call(|c| {
            c.prepare(
                "SELECT m.tbl_name, SUM(s.pgsize), SUM(s.unused) FROM dbstat s JOIN sqlite_master m ON m.name = s.name
                 GROUP BY m.tbl_name ORDER BY SUM(s.pgsize) DESC LIMIT 4",
            )?
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, f64>(2)?)))?
            .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    for (table, bytes, unused) in tables {
        println!(
            "  {table:<20} {:>7.1} MB, {:>4.1}% of it unused",
            bytes / (1 << 20) as f64,
            unused / bytes * 100.0
        );
    }
    pruned.call(|c| c.execute_batch("VACUUM")).await.unwrap();
    checkpoint(&pruned).await;
    println!(
        "after `mission db --compact` (VACUUM): {:.1} MB",
        file_mb(&pruned_path)
    );
}
