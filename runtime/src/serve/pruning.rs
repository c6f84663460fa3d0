//! `mission up`'s pruning: [`retention`](crate::db::retention) applied a
//! minute after start and every ten minutes after, by every owner's rules
//! ([`RULES`]), with the compile cache swept in the same rounds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::alerts;
use crate::approvals::records as approvals;
use crate::capabilities::claude::backend::sessions;
use crate::capabilities::claude::spend::ledger;
use crate::capabilities::history;
use crate::capabilities::http::records as http;
use crate::capabilities::later::wakeups;
use crate::capabilities::notify::posts;
use crate::db::retention::{prune, Policy, Rule};
use crate::host::{requests, runs, tool_calls, Host};
use crate::plugin::loads;
use crate::triggers::schedule::chains;
use crate::triggers::telegram::{chat_calls, files, updates};
use crate::triggers::webhooks::deliveries;

/// Every owner's retention rules, the order they are applied in (a run's
/// output before its run).
pub const RULES: &[&[Rule]] = &[
    runs::RETENTION,
    updates::RETENTION,
    history::RETENTION,
    sessions::RETENTION,
    loads::RETENTION,
    http::RETENTION,
    tool_calls::RETENTION,
    ledger::RETENTION,
    chat_calls::RETENTION,
    approvals::RETENTION,
    requests::RETENTION,
    deliveries::RETENTION,
    alerts::RETENTION,
    wakeups::RETENTION,
    chains::RETENTION,
    posts::RETENTION,
];

/// How often `mission up` prunes.
const EVERY: Duration = Duration::from_secs(600);

/// `mission up`'s pruning: a minute after start, then every ten minutes,
/// until `shutdown`, by the config of the moment (a reloaded `[retention]`
/// applies from the next round). Each round also sweeps the compile cache
/// and the chat attachments (in and out).
pub async fn keep_pruned(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        let policy = Policy::of(&host.config());
        match prune(host.db(), &policy, Utc::now(), RULES).await {
            Ok(pruned) if pruned.total() > 0 => tracing::info!(?pruned, "pruned old records"),
            Ok(_) => {}
            Err(e) => tracing::warn!("failed to prune old records: {e:#}"),
        }
        // A reply's files left by a call whose answer was never stored go
        // with the attachments.
        let data_dir = host.config().data_dir.clone();
        let cutoff = std::time::SystemTime::now() - policy.retention.attachments;
        let swept = tokio::task::spawn_blocking(move || {
            Ok::<_, std::io::Error>(
                files::sweep(&data_dir.join("attachments"), cutoff)?
                    + files::sweep(&data_dir.join("outbox"), cutoff)?,
            )
        });
        match swept.await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "removed chat attachments past their period"),
            Ok(Err(e)) => tracing::warn!("failed to sweep the chat attachments: {e}"),
            Err(e) => tracing::warn!("the attachments sweep panicked: {e}"),
        }
        match host.sweep_compile_cache(policy.retention.compile_cache).await {
            Ok(swept) if swept.files > 0 => tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "removed compiled code no plugin uses"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("failed to sweep the compile cache: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::retention::Retention;
    use crate::db::Database;

    const DAY_MS: i64 = 86_400_000;

    /// A database with one row of each kind `days_old` days before `now`.
    fn fill(c: &rusqlite::Connection, now: i64, days_old: i64, id: i64) -> rusqlite::Result<()> {
        let at = now - days_old * DAY_MS;
        c.execute(
            "INSERT INTO runs (id, plugin, trigger, scheduled_at, attempt, started_at, finished_at, outcome)
             VALUES (?1, 'p', 'schedule', ?2, 1, ?2, ?2, 'succeeded')",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO run_outputs (run_id, output) VALUES (?1, 'lots of output')",
            [id],
        )?;
        c.execute(
            "INSERT INTO telegram_updates (update_id, sent_at, received_at, handled_at) VALUES (?1, ?2, ?2, ?2)",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO history (id, plugin, conversation, role, text, at) VALUES (?1, 'p', 'c', 'user', 'hi', ?2)",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO claude_transcripts (id, plugin, session_key, role, text, at) VALUES (?1, 'p', 'k', 'user', 'hi', ?2)",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO plugin_loads (id, plugin, at, outcome) VALUES (?1, 'p', ?2, 'loaded')",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO http_requests (id, at, plugin, method, origin, path, bytes_out, bytes_in, ms, denied)
             VALUES (?1, ?2, 'p', 'GET', 'https://a', '/', 0, 0, 1, 0)",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO tool_calls (id, at, caller, plugin, tool, input_bytes, output_bytes, outcome, ms)
             VALUES (?1, ?2, 'p', 'crm', 'find', 10, 20, 'ok', 3)",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO claude_calls (id, at, plugin, backend, input_tokens, output_tokens, cache_write_tokens,
                 cache_read_tokens, cost_usd, turns, duration_ms, outcome)
             VALUES (?1, ?2, 'p', 'cli', 1, 1, 0, 0, 0.01, 1, 10, 'ok')",
            (id, at),
        )?;
        c.execute(
            "INSERT INTO chat_calls (id, at, chat_id, plugin, role, latency_ms, outcome, reply_chars, claude_calls,
                 input_tokens, output_tokens, context_tokens, cost_usd, history_given)
             VALUES (?1, ?2, 1, 'p', 'live', 5, 'ok', 2, 0, 0, 0, 0, 0.0, 0)",
            (id, at),
        )?;
        // The oldest approval is still waiting (a host that stopped): it stays.
        let outcome = if id == 1 { "pending" } else { "denied" };
        c.execute(
            "INSERT INTO tool_approvals (id, plugin, tool, summary, asked_at, outcome) VALUES (?1, 'p', 'Bash', 'ls', ?2, ?3)",
            (id, at, outcome),
        )?;
        // The oldest delivery has not run yet: it stays.
        let state = if id == 1 { "pending" } else { "done" };
        c.execute(
            "INSERT INTO webhook_deliveries (id, webhook, delivery_id, received_at, status, verified, state,
                 method, path, query, body, bytes)
             VALUES (?1, 'w', ?1, ?2, 200, 'yes', ?3, 'POST', '/hooks/w', '', x'00', 1)",
            (id, at, state),
        )?;
        c.execute(
            "INSERT INTO webhook_refusals (webhook, reason, hour, count, last_at) VALUES ('w', 'no_proof', ?1, 9, ?2)",
            (at - at.rem_euclid(3_600_000), at),
        )?;
        // The oldest alert was never sent: it stays.
        let sent = (id != 1).then_some(at);
        c.execute(
            "INSERT INTO outbox (id, chat_id, text, queued_at, sent_at) VALUES (?1, 1, 'alert', ?2, ?3)",
            (id, at, sent),
        )?;
        c.execute(
            "INSERT INTO alerts_told (key, level, at) VALUES ('budget:' || ?1, 80, ?2)",
            (id, at),
        )?;
        Ok(())
    }

    fn default_policy() -> Policy {
        Policy {
            retention: Retention::default(),
            history: Duration::from_secs(30 * 86_400),
        }
    }

    fn count(db: &rusqlite::Connection, query: &str) -> i64 {
        db.query_row(query, [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn prunes_each_kind_past_its_period_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = Utc::now();
        let ms = now.timestamp_millis();
        // Ages in days: 1000 past everything, 100 past all but the ledger,
        // 10 past run output only, 0 kept whole. Ids by age, oldest first,
        // so the newest Telegram update is the youngest.
        db.call(move |c| {
            for (id, days) in [(1, 1000), (2, 100), (3, 10), (4, 0)] {
                fill(c, ms, days, id)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let policy = default_policy();
        let pruned = prune(&db, &policy, now, RULES).await.unwrap();
        let by_kind = [
            ("runs", 2),
            ("run_outputs", 3),
            ("updates", 2),
            ("history", 2),
            ("transcripts", 2),
            // Only the older two of its loads, never the latest.
            ("loads", 2),
            ("http", 2),
            ("tool_calls", 2),
            ("claude_calls", 1),
            ("chat_calls", 2),
            ("approvals", 1),
            ("requests", 0),
            // One delivery (the pending one stays) and two hours of
            // counted refusals.
            ("webhooks", 3),
            // The sent one past 90 days, and both thresholds told then.
            ("alerts", 3),
        ];
        for (kind, rows) in by_kind {
            assert_eq!(pruned.of(kind), rows, "{kind}: {pruned:?}");
        }
        assert_eq!(
            pruned.total(),
            by_kind.iter().map(|(_, rows)| rows).sum::<usize>()
        );
        let dir_path = dir.path().join("m.db");
        let c = rusqlite::Connection::open(dir_path).unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM runs"), 2);
        assert_eq!(count(&c, "SELECT count(*) FROM run_outputs"), 1);
        assert_eq!(count(&c, "SELECT min(update_id) FROM telegram_updates"), 3);
        assert_eq!(count(&c, "SELECT count(*) FROM claude_calls"), 3);
        // A second prune finds nothing.
        assert_eq!(prune(&db, &policy, now, RULES).await.unwrap().total(), 0);
    }

    #[tokio::test]
    async fn the_newest_update_and_latest_load_stay_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = Utc::now();
        let ms = now.timestamp_millis();
        db.call(move |c| {
            fill(c, ms, 1000, 1)?;
            fill(c, ms, 900, 2)
        })
        .await
        .unwrap();
        let policy = default_policy();
        let pruned = prune(&db, &policy, now, RULES).await.unwrap();
        assert_eq!(
            [
                pruned.of("updates"),
                pruned.of("loads"),
                pruned.of("runs"),
                pruned.of("run_outputs")
            ],
            [1, 1, 2, 2]
        );
    }

    #[tokio::test]
    async fn many_rows_go_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let now = Utc::now();
        let old = now.timestamp_millis() - 200 * DAY_MS;
        db.call(move |c| {
            let tx = c.transaction()?;
            for id in 0..(500 * 3 + 7) {
                tx.execute(
                    "INSERT INTO history (id, plugin, conversation, role, text, at) VALUES (?1, 'p', 'c', 'user', 'hi', ?2)",
                    (id, old),
                )?;
            }
            tx.commit()
        })
        .await
        .unwrap();
        let policy = default_policy();
        assert_eq!(
            prune(&db, &policy, now, RULES).await.unwrap().of("history"),
            500 * 3 + 7
        );
    }
}
