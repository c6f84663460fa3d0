//! Bounded growth: records older than `[retention]` says are deleted in
//! small batches, each its own short transaction, so a prune never holds
//! the database long. `mission up` prunes a minute after it starts and every
//! ten minutes after (`serve::pruning`), and sweeps the compile cache of
//! code no plugin uses; `mission db --compact` does both and then vacuums.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::retention::Retention;
use crate::config::Config;
use crate::db::Database;

/// Rows per delete statement.
const BATCH: usize = 500;

/// What a prune removed, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// Run records.
    pub runs: usize,
    /// Runs whose output was dropped (the record stays, unless it is past
    /// its own period).
    pub run_outputs: usize,
    /// Handled Telegram updates.
    pub updates: usize,
    /// History entries.
    pub history: usize,
    /// API transcript entries.
    pub transcripts: usize,
    /// Plugin load records.
    pub loads: usize,
    /// HTTP request records.
    pub http: usize,
    /// Tool call records (kept as long as HTTP request records).
    pub tool_calls: usize,
    /// Cost ledger rows.
    pub claude_calls: usize,
    /// Chat handler call records.
    pub chat_calls: usize,
    /// Tool-use approvals (decided ones).
    pub approvals: usize,
    /// Answered CLI requests.
    pub requests: usize,
    /// Webhook deliveries (run), refusals kept, and hours of refusals
    /// counted.
    pub webhooks: usize,
    /// Alerts sent, and what was told once.
    pub alerts: usize,
}

impl Pruned {
    /// All rows touched.
    pub fn total(&self) -> usize {
        self.runs
            + self.run_outputs
            + self.updates
            + self.history
            + self.transcripts
            + self.loads
            + self.http
            + self.tool_calls
            + self.claude_calls
            + self.chat_calls
            + self.approvals
            + self.requests
            + self.webhooks
            + self.alerts
    }
}

/// What to keep, resolved from a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The `[retention]` periods.
    pub retention: Retention,
    /// History is kept this long: the retention period, or the longest
    /// history TTL a plugin is given if that is longer.
    pub history: Duration,
}

impl Policy {
    /// The policy of `config`.
    pub fn of(config: &Config) -> Policy {
        let longest_ttl = config
            .plugins
            .iter()
            .map(|p| p.history.ttl)
            .max()
            .unwrap_or_default();
        Policy {
            retention: config.retention,
            history: config.retention.history.max(longest_ttl),
        }
    }
}

/// Deletes what `policy` no longer keeps, as of `now`.
pub async fn prune(db: &Database, policy: &Policy, now: DateTime<Utc>) -> anyhow::Result<Pruned> {
    let r = &policy.retention;
    let cutoff = |keep: Duration| {
        now.timestamp_millis()
            .saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
    };
    Ok(Pruned {
        // Outputs are read in their own order (a LEFT JOIN keeps them the
        // outer loop: a few days' worth, not every run kept), with any whose
        // run is gone. Outputs go no later than their runs.
        run_outputs: in_batches(
            db,
            "DELETE FROM run_outputs WHERE run_id IN (SELECT run_id FROM run_outputs LEFT JOIN runs ON id = run_id
                 WHERE id IS NULL OR (started_at < ?1 AND finished_at IS NOT NULL) LIMIT ?2)",
            cutoff(r.run_output.min(r.runs)),
        )
        .await?,
        runs: in_batches(
            db,
            "DELETE FROM runs WHERE id IN (SELECT id FROM runs
                 WHERE started_at < ?1 AND finished_at IS NOT NULL LIMIT ?2)",
            cutoff(r.runs),
        )
        .await?,
        // The newest update stays whatever its age: it is where polling
        // resumes.
        updates: in_batches(
            db,
            "DELETE FROM telegram_updates WHERE update_id IN (SELECT update_id FROM telegram_updates
                 WHERE handled_at IS NOT NULL AND handled_at < ?1
                   AND update_id < (SELECT max(update_id) FROM telegram_updates) LIMIT ?2)",
            cutoff(r.updates),
        )
        .await?,
        history: in_batches(
            db,
            "DELETE FROM history WHERE id IN (SELECT id FROM history WHERE at < ?1 LIMIT ?2)",
            cutoff(policy.history),
        )
        .await?,
        transcripts: in_batches(
            db,
            "DELETE FROM claude_transcripts WHERE id IN
                 (SELECT id FROM claude_transcripts WHERE at < ?1 LIMIT ?2)",
            cutoff(policy.history),
        )
        .await?,
        // Each plugin's latest load of each outcome stays: `mission plugins`
        // and the status page show them.
        loads: in_batches(
            db,
            "DELETE FROM plugin_loads WHERE id IN (SELECT id FROM plugin_loads WHERE at < ?1
                 AND id NOT IN (SELECT max(id) FROM plugin_loads GROUP BY plugin, outcome) LIMIT ?2)",
            cutoff(r.loads),
        )
        .await?,
        http: in_batches(
            db,
            "DELETE FROM http_requests WHERE id IN (SELECT id FROM http_requests WHERE at < ?1 LIMIT ?2)",
            cutoff(r.http),
        )
        .await?,
        tool_calls: in_batches(
            db,
            "DELETE FROM tool_calls WHERE id IN (SELECT id FROM tool_calls WHERE at < ?1 LIMIT ?2)",
            cutoff(r.http),
        )
        .await?,
        claude_calls: in_batches(
            db,
            "DELETE FROM claude_calls WHERE id IN (SELECT id FROM claude_calls WHERE at < ?1 LIMIT ?2)",
            cutoff(r.claude_calls),
        )
        .await?,
        chat_calls: in_batches(
            db,
            "DELETE FROM chat_calls WHERE id IN (SELECT id FROM chat_calls WHERE at < ?1 LIMIT ?2)",
            cutoff(r.chat_calls),
        )
        .await?,
        // A pending one stays: it is settled at the next start.
        approvals: in_batches(
            db,
            "DELETE FROM tool_approvals WHERE id IN (SELECT id FROM tool_approvals
                 WHERE asked_at < ?1 AND outcome != 'pending' LIMIT ?2)",
            cutoff(r.approvals),
        )
        .await?,
        requests: in_batches(
            db,
            "DELETE FROM requests WHERE id IN (SELECT id FROM requests
                 WHERE done_at IS NOT NULL AND done_at < ?1 LIMIT ?2)",
            cutoff(Duration::from_secs(86_400)),
        )
        .await?,
        // A pending one stays: it is still to run.
        webhooks: in_batches(
            db,
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
                 WHERE received_at < ?1 AND state != 'pending' LIMIT ?2)",
            cutoff(r.webhooks),
        )
        .await?
            + in_batches(
                db,
                "DELETE FROM webhook_refusals WHERE rowid IN (SELECT rowid FROM webhook_refusals
                     WHERE last_at < ?1 LIMIT ?2)",
                cutoff(r.webhooks),
            )
            .await?,
        // An alert not sent yet stays: it is still owed.
        alerts: in_batches(
            db,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE sent_at IS NOT NULL AND sent_at < ?1 LIMIT ?2)",
            cutoff(r.alerts),
        )
        .await?
            + in_batches(
                db,
                "DELETE FROM alerts_told WHERE rowid IN (SELECT rowid FROM alerts_told WHERE at < ?1 LIMIT ?2)",
                cutoff(r.alerts),
            )
            .await?,
    })
}

/// Runs `statement` (`?1` the cutoff, `?2` the batch size) until a batch
/// touches fewer rows than the batch size; the total touched.
async fn in_batches(db: &Database, statement: &'static str, cutoff: i64) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let touched = db
            .call(move |c| c.prepare_cached(statement)?.execute((cutoff, BATCH)))
            .await?;
        total += touched;
        if touched < BATCH {
            return Ok(total);
        }
        // Let other work have the connection between batches.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let pruned = prune(&db, &policy, now).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                runs: 2,
                run_outputs: 3,
                updates: 2,
                history: 2,
                transcripts: 2,
                // Only the older two of its loads, never the latest.
                loads: 2,
                http: 2,
                tool_calls: 2,
                claude_calls: 1,
                chat_calls: 2,
                approvals: 1,
                requests: 0,
                // One delivery (the pending one stays) and two hours of
                // counted refusals.
                webhooks: 3,
                // The sent one past 90 days, and both thresholds told then.
                alerts: 3,
            }
        );
        let dir_path = dir.path().join("m.db");
        let c = rusqlite::Connection::open(dir_path).unwrap();
        assert_eq!(count(&c, "SELECT count(*) FROM runs"), 2);
        assert_eq!(count(&c, "SELECT count(*) FROM run_outputs"), 1);
        assert_eq!(count(&c, "SELECT min(update_id) FROM telegram_updates"), 3);
        assert_eq!(count(&c, "SELECT count(*) FROM claude_calls"), 3);
        // A second prune finds nothing.
        assert_eq!(prune(&db, &policy, now).await.unwrap().total(), 0);
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
        let pruned = prune(&db, &policy, now).await.unwrap();
        assert_eq!(
            (pruned.updates, pruned.loads, pruned.runs, pruned.run_outputs),
            (1, 1, 2, 2)
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
            for id in 0..(BATCH as i64 * 3 + 7) {
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
        assert_eq!(prune(&db, &policy, now).await.unwrap().history, BATCH * 3 + 7);
    }
}
