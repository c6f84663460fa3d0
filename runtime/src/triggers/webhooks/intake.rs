//! The [`Intake`]: stores webhook deliveries on one writer task, several
//! per transaction and per sync under load, before they are acknowledged,
//! and counts refused requests (`webhook_refusals`, per webhook, reason
//! and hour) keeping only a sample of them as rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::deliveries::{Arrival, RefusalReason, HOUR_MS};
use crate::db::Database;

/// The most deliveries one transaction and one sync take.
const MAX_GROUP: usize = 256;

/// Refused requests of one webhook kept as rows in a minute; the others
/// are only counted.
pub const REFUSALS_KEPT_PER_MINUTE: u32 = 10;

/// How often counted refusals are written when nothing else is.
const COUNTS_EVERY: Duration = Duration::from_secs(1);

/// A request that was answered without storing its body.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The webhook's name.
    pub webhook: String,
    /// Why, as counted.
    pub reason: RefusalReason,
    /// The delivery id it gave, if any.
    pub delivery_id: String,
    /// When it arrived.
    pub received_at: i64,
    /// The status it got.
    pub status: u16,
    /// Why: the verification's failure, or the limit it went over.
    pub why: String,
    /// The HTTP method, path and query.
    pub method: String,
    /// The path.
    pub path: String,
    /// The body's size, as far as it was read.
    pub bytes: u64,
}

/// What storing an arrival did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new delivery, with its row id: it will run.
    New(i64),
    /// The same webhook and delivery id were stored before: it runs nothing.
    Duplicate,
}

/// Why an arrival was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The queue to the database is full: the host is behind.
    #[error("the queue of deliveries being stored is full")]
    Full,
    /// Storing or syncing failed.
    #[error("failed to store the delivery: {0:#}")]
    Failed(anyhow::Error),
}

enum Entry {
    Arrival(Box<Arrival>, oneshot::Sender<Result<Stored, String>>),
    Refusal(Box<Refusal>),
    /// Write the counts now, and say when done.
    Counts(oneshot::Sender<()>),
}

/// Refusals counted and not yet written, and the rows kept this minute.
#[derive(Default)]
struct Tally {
    /// By webhook, reason and hour (Unix ms of its start): how many, and
    /// the latest.
    counted: HashMap<(String, RefusalReason, i64), (u64, i64)>,
    /// By webhook: the minute (Unix ms / 60,000) and the rows kept in it.
    kept: HashMap<String, (i64, u32)>,
}

/// Stores deliveries on one writer task: each is in a committed
/// transaction and synced to disk before [`Intake::store`] returns, and
/// arrivals that come while a sync runs share the next one.
#[derive(Clone)]
pub struct Intake {
    entries: mpsc::Sender<Entry>,
    tally: Arc<Mutex<Tally>>,
}

impl Intake {
    /// Starts the writer on `db`, with room for `capacity` entries waiting.
    pub fn start(db: Database, capacity: usize) -> Intake {
        let (entries, receiver) = mpsc::channel(capacity.max(1));
        let tally = Arc::<Mutex<Tally>>::default();
        tokio::spawn(write(db, receiver, tally.clone()));
        Intake { entries, tally }
    }

    /// Stores `arrival`, and returns once it is on disk.
    pub async fn store(&self, arrival: Arrival) -> Result<Stored, IntakeError> {
        let (done, stored) = oneshot::channel();
        let webhook = arrival.webhook.clone();
        self.entries
            .try_send(Entry::Arrival(Box::new(arrival), done))
            .map_err(|_| IntakeError::Full)?;
        match stored.await {
            Ok(Ok(stored)) => {
                let result = match stored {
                    Stored::New(_) => "accepted",
                    Stored::Duplicate => "duplicate",
                };
                crate::metrics::get().webhook_delivery(&webhook, result);
                Ok(stored)
            }
            Ok(Err(e)) => Err(IntakeError::Failed(anyhow::anyhow!(e))),
            Err(_) => Err(IntakeError::Failed(anyhow::anyhow!("the writer stopped"))),
        }
    }

    /// Counts `refusal` (written within a second), and keeps it as a row
    /// too if it is among the first [`REFUSALS_KEPT_PER_MINUTE`] of its
    /// webhook this minute and the writer has room: whether it was kept.
    pub fn refuse(&self, refusal: Refusal) -> bool {
        crate::metrics::get().webhook_delivery(&refusal.webhook, "refused");
        let keep = {
            let mut tally = self.tally.lock().unwrap_or_else(|p| p.into_inner());
            let at = refusal.received_at;
            let key = (
                refusal.webhook.clone(),
                refusal.reason,
                at - at.rem_euclid(HOUR_MS),
            );
            let count = tally.counted.entry(key).or_insert((0, at));
            *count = (count.0 + 1, count.1.max(at));
            let minute = at.div_euclid(60_000);
            let kept = tally.kept.entry(refusal.webhook.clone()).or_insert((minute, 0));
            if kept.0 != minute {
                *kept = (minute, 0);
            }
            kept.1 += 1;
            kept.1 <= REFUSALS_KEPT_PER_MINUTE
        };
        keep && self.entries.try_send(Entry::Refusal(Box::new(refusal))).is_ok()
    }

    /// Writes the refusals counted so far, and returns once they are.
    pub async fn write_counts(&self) {
        let (done, written) = oneshot::channel();
        if self.entries.send(Entry::Counts(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write(db: Database, mut receiver: mpsc::Receiver<Entry>, tally: Arc<Mutex<Tally>>) {
    loop {
        let first = match tokio::time::timeout(COUNTS_EVERY, receiver.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => {
                write_counts(&db, &tally).await;
                return;
            }
            Err(_) => {
                write_counts(&db, &tally).await;
                continue;
            }
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(entry) => group.push(entry),
                Err(_) => break,
            }
        }
        let (mut arrivals, mut answers, mut refusals, mut counts_asked) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for entry in group {
            match entry {
                Entry::Arrival(arrival, done) => {
                    arrivals.push(*arrival);
                    answers.push(done);
                }
                Entry::Refusal(refusal) => refusals.push(*refusal),
                Entry::Counts(done) => counts_asked.push(done),
            }
        }
        let counts = take_counts(&tally);
        let stored = db.call(move |c| insert(c, &arrivals, &refusals, &counts)).await;
        for done in counts_asked {
            let _ = done.send(());
        }
        let stored = match stored {
            Ok(stored) if !answers.is_empty() => db.sync().await.map(|()| stored),
            other => other,
        };
        match stored {
            Ok(stored) => {
                for (done, stored) in answers.into_iter().zip(stored) {
                    let _ = done.send(Ok(stored));
                }
            }
            Err(e) => {
                tracing::error!("failed to store webhook deliveries: {e:#}");
                for done in answers {
                    let _ = done.send(Err(format!("{e:#}")));
                }
            }
        }
    }
}

/// One count of refusals: webhook, reason, hour, how many, the latest.
type Count = (String, RefusalReason, i64, u64, i64);

/// The refusals counted since the last take.
fn take_counts(tally: &Mutex<Tally>) -> Vec<Count> {
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    tally
        .counted
        .drain()
        .map(|((webhook, reason, hour), (count, last))| (webhook, reason, hour, count, last))
        .collect()
}

/// Writes the refusals counted since the last write, if any.
async fn write_counts(db: &Database, tally: &Mutex<Tally>) {
    let counts = take_counts(tally);
    if counts.is_empty() {
        return;
    }
    if let Err(e) = db.call(move |c| insert(c, &[], &[], &counts)).await {
        tracing::error!("failed to count refused webhook requests: {e:#}");
    }
}

fn insert(
    c: &mut rusqlite::Connection,
    arrivals: &[Arrival],
    refusals: &[Refusal],
    counts: &[Count],
) -> rusqlite::Result<Vec<Stored>> {
    let transaction = c.transaction()?;
    let mut stored = Vec::with_capacity(arrivals.len());
    {
        let mut seen = transaction.prepare_cached(
            "SELECT 1 FROM webhook_deliveries WHERE webhook = ?1 AND delivery_id = ?2 AND state IN ('pending', 'done')",
        )?;
        let mut add = transaction.prepare_cached(
            "INSERT INTO webhook_deliveries (webhook, delivery_id, received_at, status, verified, state,
                 method, path, query, headers, body, bytes)
             VALUES (?1, ?2, ?3, ?4, 'yes', ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for a in arrivals {
            let duplicate = seen.exists((&a.webhook, &a.delivery_id))?;
            let (state, headers, body) = if duplicate {
                ("duplicate", None, None)
            } else {
                let headers = serde_json::to_string(&a.headers).expect("strings serialize");
                ("pending", Some(headers), Some(a.body.as_slice()))
            };
            add.execute(rusqlite::params![
                a.webhook,
                a.delivery_id,
                a.received_at,
                200,
                state,
                a.method,
                a.path,
                a.query,
                headers,
                body,
                a.body.len() as i64,
            ])?;
            stored.push(if duplicate {
                Stored::Duplicate
            } else {
                Stored::New(transaction.last_insert_rowid())
            });
        }
        let mut refused = transaction.prepare_cached(
            "INSERT INTO webhook_deliveries (webhook, delivery_id, received_at, status, verified, state,
                 method, path, query, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, 'refused', ?6, ?7, '', ?8)",
        )?;
        for r in refusals {
            refused.execute(rusqlite::params![
                r.webhook,
                r.delivery_id,
                r.received_at,
                r.status,
                r.why,
                r.method,
                r.path,
                r.bytes as i64,
            ])?;
        }
        let mut count = transaction.prepare_cached(
            "INSERT INTO webhook_refusals (webhook, reason, hour, count, last_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (webhook, reason, hour)
             DO UPDATE SET count = count + excluded.count, last_at = max(last_at, excluded.last_at)",
        )?;
        for (webhook, reason, hour, n, last) in counts {
            count.execute(rusqlite::params![webhook, reason, hour, *n as i64, last])?;
        }
    }
    transaction.commit()?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::webhooks::deliveries::refusal_counts;

    fn refusal(webhook: &str, reason: RefusalReason, at: i64) -> Refusal {
        Refusal {
            webhook: webhook.into(),
            reason,
            delivery_id: String::new(),
            received_at: at,
            status: reason.status(),
            why: "no x-sig header".into(),
            method: "POST".into(),
            path: format!("/hooks/{webhook}"),
            bytes: 2,
        }
    }

    #[tokio::test]
    async fn every_refusal_is_counted_and_ten_a_minute_per_webhook_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let intake = Intake::start(db.clone(), 64);
        let minute = chrono::Utc::now().timestamp_millis() / 60_000 * 60_000;
        let kept = (0..25)
            .filter(|i| intake.refuse(refusal("gh", RefusalReason::NoProof, minute + i)))
            .count();
        assert_eq!(kept, 10);
        // Another webhook, another reason, the next minute: each its own.
        assert!(intake.refuse(refusal("shop", RefusalReason::BadSignature, minute)));
        assert!(intake.refuse(refusal("gh", RefusalReason::TooLarge, minute + 60_000)));
        intake.write_counts().await;
        let rows: i64 = db
            .call(|c| {
                c.query_row(
                    "SELECT count(*) FROM webhook_deliveries WHERE state = 'refused'",
                    [],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        assert_eq!(rows, 12);
        let since = chrono::DateTime::from_timestamp_millis(minute).unwrap();
        let counts = refusal_counts(&db, since).await.unwrap();
        let counted: Vec<(&str, RefusalReason, u64)> = counts
            .iter()
            .map(|c| (c.webhook.as_str(), c.reason, c.count))
            .collect();
        assert_eq!(
            counted,
            [
                ("gh", RefusalReason::NoProof, 25),
                ("gh", RefusalReason::TooLarge, 1),
                ("shop", RefusalReason::BadSignature, 1),
            ]
        );
        // Counted again later, they add up.
        intake.refuse(refusal("gh", RefusalReason::NoProof, minute + 1));
        intake.write_counts().await;
        let counts = refusal_counts(&db, since).await.unwrap();
        assert_eq!(counts[0].count, 26);
    }
}
