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

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mission::config::retention::Retention;
use mission::db::retention::{prune, Policy};
use mission::db::Database;
use mission::serve::pruning::RULES;

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 365;
const MESSAGES_A_DAY: i64 = 100;

/// (runs a day, how many schedules) for the 50 schedules.
const CADENCES: [(i64, usize); 4] = [(1440, 1), (96, 4), (24, 10), (1, 35)];

fn text(len: usize, seed: i64) -> String {
    // Varied text, so pages do not compress into nothing in the file.
    let mut out = String::with_capacity(len);
    let mut x = seed as u64 | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(char::from(b'a' + (x % 26) as u8));
        if x.is_multiple_of(7) {
            out.push(' ');
        }
    }
    out
}

/// Writes day `day`'s records, the day starting at `start` (ms).
fn write_day(c: &mut rusqlite::Connection, day: i64, start: i64, ids: &mut i64) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    let short = text(200, day);
    let long = text(4096, day + 1);
    {
        let mut run = tx.prepare_cached(
            "INSERT INTO runs (plugin, schedule, trigger, scheduled_at, attempt, started_at, finished_at,
                 outcome, summary, output_bytes, pid)
             VALUES (?1, ?1, 'schedule', ?2, 1, ?2, ?2 + 1500, 'succeeded', ?3, ?4, 4242)",
        )?;
        let mut run_output =
            tx.prepare_cached("INSERT INTO run_outputs (run_id, output) VALUES (last_insert_rowid(), ?1)")?;
        let mut schedule = 0;
        for (per_day, count) in CADENCES {
            for _ in 0..count {
                schedule += 1;
                let name = format!("schedule-{schedule:02}");
                for i in 0..per_day {
                    *ids += 1;
                    let at = start + i * (DAY_MS / per_day);
                    let output = if *ids % 10 == 0 { &long } else { &short };
                    run.execute((&name, at, "exit 0 in 1432 ms: synced 12 records", output.len()))?;
                    run_output.execute([output])?;
                }
            }
        }
        let mut update = tx.prepare_cached(
            "INSERT INTO telegram_updates (update_id, chat_id, sender_id, sender_name, text, sent_at,
                 received_at, handled_at, outcome, reply, reply_mode)
             VALUES (?1, 77, 1, 'Anna', ?2, ?3, ?3, ?3 + 900, 'replied', ?4, 'text')",
        )?;
        let mut history = tx.prepare_cached(
            "INSERT INTO history (plugin, conversation, role, text, at) VALUES ('assistant', '77', ?1, ?2, ?3)",
        )?;
        let mut transcript = tx.prepare_cached(
            "INSERT INTO claude_transcripts (plugin, session_key, role, text, at)
             VALUES ('assistant', '77', ?1, ?2, ?3)",
        )?;
        let mut call = tx.prepare_cached(
            "INSERT INTO claude_calls (at, plugin, backend, model, session_key, input_tokens, output_tokens,
                 cache_write_tokens, cache_read_tokens, cost_usd, turns, duration_ms, outcome)
             VALUES (?1, 'assistant', 'persistent', 'claude-sonnet-4-5', '77', 1200, 300, 0, 9000, 0.012, 1, 4100, 'ok')",
        )?;
        let mut measured = tx.prepare_cached(
            "INSERT INTO chat_calls (at, update_id, chat_id, plugin, role, latency_ms, outcome, error, reply_chars,
                 claude_calls, input_tokens, output_tokens, context_tokens, cost_usd, history_given)
             VALUES (?1, ?2, 77, ?3, ?4, 4100, 'ok', NULL, 800, 1, 1200, 300, 10200, 0.012, 0)",
        )?;
        let mut approval = tx.prepare_cached(
            "INSERT INTO tool_approvals (plugin, session_key, chat_id, tool, summary, asked_at, message_id, outcome,
                 decided_at, decided_by, decided_by_name)
             VALUES ('assistant', '77', 77, 'Bash', ?1, ?2, 1, 'allowed_once', ?2 + 8000, 1, 'Anna')",
        )?;
        let message = text(200, day + 2);
        let reply = text(800, day + 3);
        let command = text(120, day + 4);
        for i in 0..5 {
            approval.execute((&command, start + i * (DAY_MS / 5)))?;
        }
        for i in 0..MESSAGES_A_DAY {
            let at = start + i * (DAY_MS / MESSAGES_A_DAY);
            update.execute((day * MESSAGES_A_DAY + i, &message, at, &reply))?;
            history.execute(("user", &message, at))?;
            history.execute(("assistant", &reply, at + 900))?;
            transcript.execute(("user", &message, at))?;
            transcript.execute(("assistant", &reply, at + 900))?;
            call.execute([at])?;
            let update_id = day * MESSAGES_A_DAY + i;
            measured.execute((at, update_id, "assistant", "live"))?;
            measured.execute((at + 4200, update_id, "assistant-api", "shadow"))?;
        }
        let mut http = tx.prepare_cached(
            "INSERT INTO http_requests (at, plugin, method, origin, path, status, bytes_out, bytes_in, ms, denied)
             VALUES (?1, 'crm-sync', 'GET', 'https://api.crm.example', '/v2/contacts', 200, 0, 18000, 240, 0)",
        )?;
        for i in 0..300 {
            http.execute([start + i * (DAY_MS / 300)])?;
        }
        let mut load = tx.prepare_cached(
            "INSERT INTO plugin_loads (plugin, at, outcome, old_hash, new_hash, compile_ms)
             VALUES ('assistant', ?1, 'reloaded', ?2, ?2, 812.0)",
        )?;
        for i in 0..5 {
            load.execute((start + i * 3_600_000, text(64, day * 5 + i)))?;
        }
    }
    tx.commit()
}

fn file_mb(path: &Path) -> f64 {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_file_name("mission.db-wal");
    (len(path) + len(&wal)) as f64 / (1 << 20) as f64
}

async fn checkpoint(db: &Database) {
    db.call(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .await
        .unwrap();
}

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
