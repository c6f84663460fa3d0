//! A year of the user's load in the SQLite file (the retention bench's,
//! which the backup and metrics benches start from): 50 schedules (one every
//! minute, four every 15 minutes, ten hourly, 35 daily), 100 Telegram
//! messages a day with their history, transcripts, ledger and chat call
//! records, five tool approvals, 300 HTTP records and five plugin loads a
//! day.

use std::path::Path;

use chrono::{DateTime, Utc};
use mission::config::retention::Retention;
use mission::db::retention::{prune, Policy};
use mission::db::Database;
use mission::serve::pruning::RULES;

pub const DAY_MS: i64 = 86_400_000;
pub const DAYS: i64 = 365;
pub const MESSAGES_A_DAY: i64 = 100;

/// (runs a day, how many schedules) for the 50 schedules.
pub const CADENCES: [(i64, usize); 4] = [(1440, 1), (96, 4), (24, 10), (1, 35)];

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
pub fn write_day(c: &mut rusqlite::Connection, day: i64, start: i64, ids: &mut i64) -> rusqlite::Result<()> {
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
            // Below any update id a live bot (or the fake Bot API) gives,
            // so a host on this file takes new updates.
            let update_id = -(day * MESSAGES_A_DAY + i) - 1;
            update.execute((update_id, &message, at, &reply))?;
            history.execute(("user", &message, at))?;
            history.execute(("assistant", &reply, at + 900))?;
            transcript.execute(("user", &message, at))?;
            transcript.execute(("assistant", &reply, at + 900))?;
            call.execute([at])?;
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

/// The size of the database at `path` with its write-ahead log, in MB.
pub fn file_mb(path: &Path) -> f64 {
    let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_file_name("mission.db-wal");
    (len(path) + len(&wal)) as f64 / (1 << 20) as f64
}

/// Moves the write-ahead log into the file.
pub async fn checkpoint(db: &Database) {
    db.call(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
        .await
        .unwrap();
}

/// The names of the year's 50 schedules.
pub fn schedule_names() -> Vec<String> {
    let count: usize = CADENCES.iter().map(|(_, count)| count).sum();
    (1..=count).map(|n| format!("schedule-{n:02}")).collect()
}

/// A year of load written into a new database at `path`, pruned day by day
/// with the default `[retention]` as `mission up` would, its log
/// checkpointed: about 64 MB.
pub async fn pruned_year(path: &Path) -> Database {
    let db = Database::open(path).unwrap();
    let policy = Policy {
        retention: Retention::default(),
        history: Retention::default().history,
    };
    let start = Utc::now().timestamp_millis() - DAYS * DAY_MS;
    let mut ids = 0;
    for day in 0..DAYS {
        let day_start = start + day * DAY_MS;
        ids = db
            .call(move |c| {
                let mut id = ids;
                write_day(c, day, day_start, &mut id).map(|()| id)
            })
            .await
            .unwrap();
        let now: DateTime<Utc> = DateTime::from_timestamp_millis(day_start + DAY_MS).unwrap();
        prune(&db, &policy, now, RULES).await.unwrap();
    }
    checkpoint(&db).await;
    db
}
