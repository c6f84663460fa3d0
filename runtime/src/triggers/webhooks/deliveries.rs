//! Webhook deliveries as stored: what arrived, why a request was refused,
//! and the queries that run, finish and list them.

use std::time::Duration;

use anyhow::Context;
use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::db::retention::{period, Rule};
use crate::db::{datetime, text_enum, Database};
use crate::host::runs::RunOutcome;

/// An hour in Unix milliseconds: refusals are counted by the hour.
pub(super) const HOUR_MS: i64 = 3_600_000;

/// A request that passed its checks, as it is stored.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The webhook's name.
    pub webhook: String,
    /// The sender's delivery id, or one the host made.
    pub delivery_id: String,
    /// When it arrived, in Unix milliseconds.
    pub received_at: i64,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query, without `?`.
    pub query: String,
    /// The headers the plugin is given.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub body: Vec<u8>,
}

text_enum! {
    /// Why a request to a webhook was refused, as counted.
    pub enum RefusalReason {
        /// The proof's header is absent (401).
        NoProof = "no_proof",
        /// The proof's header cannot be read (401).
        MalformedProof = "malformed_proof",
        /// The proof does not match (401).
        BadSignature = "bad_signature",
        /// A signed timestamp beyond the tolerance (401).
        Stale = "stale",
        /// The body is over the webhook's `max_body` (413).
        TooLarge = "too_large",
        /// The body did not arrive within `request_timeout` (408).
        TooSlow = "too_slow",
        /// The delivery id is longer than the host keeps (400).
        LongDeliveryId = "long_delivery_id",
    }
}

impl RefusalReason {
    /// The status such a request is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::NoProof | Self::MalformedProof | Self::BadSignature | Self::Stale => 401,
            Self::TooLarge => 413,
            Self::TooSlow => 408,
            Self::LongDeliveryId => 400,
        }
    }

    /// A few words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoProof => "no proof",
            Self::MalformedProof => "a malformed proof",
            Self::BadSignature => "a wrong signature",
            Self::Stale => "a stale timestamp",
            Self::TooLarge => "a body over max_body",
            Self::TooSlow => "a body slower than request_timeout",
            Self::LongDeliveryId => "a delivery id too long",
        }
    }
}

/// How many deliveries wait for their run.
pub async fn waiting(db: &Database) -> anyhow::Result<u64> {
    db.call(|c| {
        c.prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")?
            .query_row([], |row| row.get(0))
    })
    .await
}

/// The deliveries still to run, oldest first: `(id, webhook)`.
pub async fn pending(db: &Database) -> anyhow::Result<Vec<(i64, String)>> {
    db.call(|c| {
        let mut statement =
            c.prepare("SELECT id, webhook FROM webhook_deliveries WHERE state = 'pending' ORDER BY id")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    })
    .await
}

/// Delivery `id` as stored, whatever became of it, while its body is kept.
pub async fn arrival(db: &Database, id: i64) -> anyhow::Result<Option<Arrival>> {
    db.call(move |c| stored_arrival(c, id, "body IS NOT NULL")).await
}

/// The arrival of row `id`, if it also meets `condition` (SQL).
fn stored_arrival(c: &rusqlite::Connection, id: i64, condition: &str) -> rusqlite::Result<Option<Arrival>> {
    c.query_row(
        &format!(
            "SELECT webhook, delivery_id, received_at, method, path, query, headers, body
             FROM webhook_deliveries WHERE id = ?1 AND {condition}"
        ),
        [id],
        |row| {
            let headers: String = row.get(6)?;
            Ok(Arrival {
                webhook: row.get(0)?,
                delivery_id: row.get(1)?,
                received_at: row.get(2)?,
                method: row.get(3)?,
                path: row.get(4)?,
                query: row.get(5)?,
                headers: serde_json::from_str(&headers).unwrap_or_default(),
                body: row.get(7)?,
            })
        },
    )
    .optional()
}

/// The runs a delivery already had that finished (a run cut short by a
/// stopped host is not one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prior {
    /// How many finished.
    pub finished: u32,
    /// How the latest of them ended.
    pub last: Option<RunOutcome>,
}

/// Delivery `id` as stored, if it is still to run, with its prior runs.
pub async fn to_run(db: &Database, id: i64) -> anyhow::Result<Option<(Arrival, Prior)>> {
    db.call(move |c| {
        let arrival = stored_arrival(c, id, "state = 'pending'")?;
        let Some(arrival) = arrival else {
            return Ok(None);
        };
        let mut statement = c.prepare_cached(
            "SELECT outcome FROM runs WHERE delivery = ?1 AND outcome NOT IN ('running', 'interrupted')
             ORDER BY id",
        )?;
        let outcomes = statement
            .query_map([id], |row| row.get::<_, RunOutcome>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let prior = Prior {
            finished: outcomes.len() as u32,
            last: outcomes.last().copied(),
        };
        Ok(Some((arrival, prior)))
    })
    .await
}

/// Marks delivery `id` done with its last run's `outcome`, and how long its
/// acknowledgement took, if known.
pub async fn finish(
    db: &Database,
    id: i64,
    outcome: RunOutcome,
    ack: Option<Duration>,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let ack_ms = ack.map(|a| a.as_secs_f64() * 1000.0);
    db.call(move |c| {
        c.execute(
            "UPDATE webhook_deliveries SET state = 'done', outcome = ?2, finished_at = ?3,
                 ack_ms = coalesce(?4, ack_ms)
             WHERE id = ?1",
            rusqlite::params![id, outcome, now, ack_ms],
        )
    })
    .await
    .with_context(|| format!("failed to finish webhook delivery {id}"))?;
    Ok(())
}

/// One delivery as recorded, for `mission webhooks` and the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    /// The row id.
    pub id: i64,
    /// The webhook.
    pub webhook: String,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// When it arrived.
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// The status it was answered with.
    pub status: u16,
    /// `yes`, or why it was not accepted.
    pub verified: String,
    /// `pending`, `done`, `duplicate` or `refused`.
    pub state: String,
    /// The body's size.
    pub bytes: u64,
    /// Milliseconds from arrival to acknowledgement, when known.
    pub ack_ms: Option<f64>,
    /// Its runs, in order.
    pub runs: Vec<i64>,
    /// How its last run ended, once done.
    pub outcome: Option<RunOutcome>,
}

/// The latest `limit` deliveries, of `webhook` if given, newest first.
pub async fn recent(db: &Database, webhook: Option<&str>, limit: u32) -> anyhow::Result<Vec<DeliveryRecord>> {
    let webhook = webhook.map(str::to_owned);
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT d.id, webhook, delivery_id, received_at, status, verified, state, bytes, ack_ms, d.outcome,
                    (SELECT group_concat(r.id) FROM (SELECT id FROM runs WHERE delivery = d.id ORDER BY id) r)
             FROM webhook_deliveries d WHERE ?1 IS NULL OR webhook = ?1 ORDER BY d.id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(rusqlite::params![webhook, limit], |row| {
            let runs: Option<String> = row.get(10)?;
            Ok(DeliveryRecord {
                id: row.get(0)?,
                webhook: row.get(1)?,
                delivery_id: row.get(2)?,
                received_at: datetime(row.get(3)?),
                status: row.get(4)?,
                verified: row.get(5)?,
                state: row.get(6)?,
                bytes: row.get(7)?,
                ack_ms: row.get(8)?,
                outcome: row.get(9)?,
                runs: runs
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|id| id.parse().ok())
                    .collect(),
            })
        })?;
        rows.collect()
    })
    .await
}

/// The requests refused to one webhook for one reason, counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefusalCount {
    /// The webhook.
    pub webhook: String,
    /// Why.
    pub reason: RefusalReason,
    /// How many.
    pub count: u64,
    /// The latest.
    pub last_at: chrono::DateTime<chrono::Utc>,
}

/// The refusals counted since `since` (to the hour), the most first.
pub async fn refusal_counts(
    db: &Database,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<RefusalCount>> {
    let since = since.timestamp_millis();
    let since = since - since.rem_euclid(HOUR_MS);
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT webhook, reason, sum(count), max(last_at) FROM webhook_refusals WHERE hour >= ?1
             GROUP BY webhook, reason ORDER BY sum(count) DESC, webhook, reason",
        )?;
        let rows = statement.query_map([since], |row| {
            Ok(RefusalCount {
                webhook: row.get(0)?,
                reason: row.get(1)?,
                count: row.get(2)?,
                last_at: datetime(row.get(3)?),
            })
        })?;
        rows.collect()
    })
    .await
}

/// How deliveries and counted refusals go: after `[retention] webhooks`;
/// a delivery still to run stays.
pub const RETENTION: &[Rule] = &[
    Rule {
        table: "webhook_deliveries",
        kind: "webhooks",
        delete: "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
                 WHERE received_at < ?1 AND state != 'pending' LIMIT ?2)",
        keep: |p| p.retention.webhooks,
        kept: |p| period(p.retention.webhooks),
    },
    Rule {
        table: "webhook_refusals",
        kind: "webhooks",
        delete: "DELETE FROM webhook_refusals WHERE rowid IN (SELECT rowid FROM webhook_refusals
                 WHERE last_at < ?1 LIMIT ?2)",
        keep: |p| p.retention.webhooks,
        kept: |p| period(p.retention.webhooks),
    },
];
