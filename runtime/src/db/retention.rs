//! Bounded growth: records older than `[retention]` says are deleted in
//! small batches, each its own short transaction, so a prune never holds
//! the database long. Each owner of records declares how its tables' rows
//! go — a [`Rule`] beside its queries —, and whoever prunes hands
//! [`prune`] every owner's (`serve::pruning::RULES`): `mission up` a minute
//! after it starts and every ten minutes after, `mission db --compact`
//! before it vacuums.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::Serialize;

use crate::config::retention::Retention;
use crate::config::units::HumanDuration;
use crate::config::Config;
use crate::db::Database;

/// Rows per delete statement.
const BATCH: usize = 500;

/// How one table's rows go, declared by the module that writes them.
pub struct Rule {
    /// The table.
    pub table: &'static str,
    /// What its rows are counted as when pruned (`mission db --compact
    /// --json`, the log); an owner's tables may share one.
    pub kind: &'static str,
    /// Deletes one batch of what is past keeping: `?1` the cutoff (ms since
    /// the epoch), `?2` the batch size; rows it must keep whatever their
    /// age (a pending one, the latest of something) it never selects.
    pub delete: &'static str,
    /// How long its rows are kept under a policy.
    pub keep: fn(&Policy) -> Duration,
    /// How `mission db` says how long they are kept: `30d once handled`.
    pub kept: fn(&Policy) -> String,
}

/// `30d`: a period as `mission db` shows it.
pub fn period(keep: Duration) -> String {
    HumanDuration(keep).to_string()
}

/// What a prune removed: rows by kind, in the order of the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned(Vec<(&'static str, usize)>);

impl Pruned {
    /// All rows touched.
    pub fn total(&self) -> usize {
        self.0.iter().map(|(_, rows)| rows).sum()
    }

    /// The rows of one kind.
    pub fn of(&self, kind: &str) -> usize {
        self.0
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, rows)| *rows)
    }

    fn add(&mut self, kind: &'static str, rows: usize) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, total)) => *total += rows,
            None => self.0.push((kind, rows)),
        }
    }
}

impl Serialize for Pruned {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (kind, rows) in &self.0 {
            map.serialize_entry(kind, rows)?;
        }
        map.end()
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

/// Deletes what `policy` no longer keeps, as of `now`, by each of `rules`
/// in turn (each owner's list in order).
pub async fn prune(
    db: &Database,
    policy: &Policy,
    now: DateTime<Utc>,
    rules: &[&[Rule]],
) -> anyhow::Result<Pruned> {
    let mut pruned = Pruned::default();
    for owner in rules {
        for rule in owner.iter() {
            let keep = i64::try_from((rule.keep)(policy).as_millis()).unwrap_or(i64::MAX);
            let cutoff = now.timestamp_millis().saturating_sub(keep);
            pruned.add(rule.kind, in_batches(db, rule.delete, cutoff).await?);
        }
    }
    Ok(pruned)
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
