//! What a schedule's alerts say. A failure streak is told once in
//! `[alerts] chat` when it reaches `after_failures` consecutive failed runs
//! (after their retries), and once more when a run succeeds again, saying
//! how long it was broken. Missed due times are told once a day per
//! schedule and reason, with why. The streak and the alert are written in
//! one transaction, into the outbox, so neither a restart nor a Telegram
//! outage loses or repeats one.

use rusqlite::OptionalExtension;

use super::scheduler::{MissReason, Missed};
use super::Schedule;
use crate::alerts::{self, Alert};
use crate::config::alerts::AlertsConfig;
use crate::config::units::span;
use crate::db::Database;
use crate::host::runs::RunRecord;

/// The most of a run's error an alert quotes.
const ERROR_LINES: usize = 5;

/// How long after a missed-run alert more misses of the same schedule, for
/// the same reason, are only counted.
const MISSES_TOLD_EVERY: chrono::Duration = chrono::Duration::hours(24);

/// Notes a finished fire of `schedule` — `record` its last attempt, of
/// `attempts` — against its streak, and queues what it calls for.
pub async fn after_fire(
    db: &Database,
    schedule: &Schedule,
    alerts: Option<&AlertsConfig>,
    record: &RunRecord,
    attempts: u32,
) -> anyhow::Result<()> {
    let Some(config) = alerts.filter(|_| schedule.alert) else {
        return Ok(());
    };
    let threshold = schedule.after_failures.unwrap_or(config.after_failures);
    let (name, plugin, urgent, chat) = (
        schedule.name.clone(),
        schedule.plugin.clone(),
        schedule.urgent,
        config.chat,
    );
    let record = record.clone();
    db.call(move |c| {
        let alert = |text: String| Alert {
            chat,
            text,
            schedule: Some(&name),
            urgent,
        };
        let transaction = c.transaction()?;
        let streak: Option<(i64, u32, bool)> = transaction
            .query_row(
                "SELECT failing_since, failures, alerted FROM schedule_streaks WHERE schedule = ?1",
                [&name],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        if record.succeeded() {
            if let Some((since, failures, true)) = streak {
                let broken = (record.finished_at.unwrap_or(record.started_at) - crate::db::datetime(since))
                    .to_std()
                    .unwrap_or_default();
                let text = format!(
                    "✅ {name} works again (plugin {plugin}): broken for {} over {failures} failed run{}.",
                    span(broken),
                    if failures == 1 { "" } else { "s" }
                );
                alerts::queue(&transaction, &alert(text))?;
            }
            transaction.execute("DELETE FROM schedule_streaks WHERE schedule = ?1", [&name])?;
            return transaction.commit();
        }
        let (since, failures, alerted) = match streak {
            Some((since, failures, alerted)) => (since, failures + 1, alerted),
            None => (record.started_at.timestamp_millis(), 1, false),
        };
        let tell = !alerted && failures >= threshold;
        if tell {
            let took = record
                .finished_at
                .map(|end| span((end - record.started_at).to_std().unwrap_or_default()))
                .unwrap_or_else(|| "-".into());
            let error = record.error.as_deref().unwrap_or("no error given");
            let lines: Vec<&str> = error.lines().collect();
            let tail = lines[lines.len().saturating_sub(ERROR_LINES)..].join("\n");
            let text = format!(
                "⚠️ {name} failed (plugin {plugin}), {failures} run{} in a row: {}\n{tail}\n\
                 {attempts} attempt{}, the last took {took}. `mission runs --id {}` has the rest.",
                if failures == 1 { "" } else { "s" },
                record.outcome,
                if attempts == 1 { "" } else { "s" },
                record.id
            );
            alerts::queue(&transaction, &alert(text))?;
        }
        transaction.execute(
            "INSERT INTO schedule_streaks (schedule, failing_since, failures, alerted) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (schedule) DO UPDATE SET failures = ?3, alerted = ?4",
            rusqlite::params![name, since, failures, alerted || tell],
        )?;
        transaction.commit()
    })
    .await
}

/// Notes that `schedule` missed due times, and tells it unless the same was
/// told within a day.
pub async fn missed(
    db: &Database,
    schedule: &Schedule,
    alerts: Option<&AlertsConfig>,
    missed: Missed,
) -> anyhow::Result<()> {
    let Some(config) = alerts.filter(|_| schedule.alert) else {
        return Ok(());
    };
    let first = missed.first.with_timezone(&schedule.zone).format("%a %H:%M %Z");
    let runs = match missed.count {
        1 => format!("its {first} run"),
        n => format!("{n} runs from {first}"),
    };
    let why = match missed.reason {
        MissReason::HostDown => "the host was down, and catch_up = \"none\" makes none up",
        MissReason::Overlap => "the previous run was still going (overlap = \"skip\")",
        MissReason::Slept => "the machine slept or the host stalled; one run made up for them on wake",
    };
    let text = format!(
        "⏭ {} (plugin {}) missed {runs}: {why}. More of these today are counted, not told.",
        schedule.name, schedule.plugin
    );
    let (chat, name, urgent, reason) = (config.chat, schedule.name.clone(), schedule.urgent, missed.reason);
    let count = missed.count;
    db.call(move |c| {
        let transaction = c.transaction()?;
        let now = chrono::Utc::now();
        let told_at: Option<i64> = transaction
            .query_row(
                "SELECT told_at FROM schedule_misses WHERE schedule = ?1 AND reason = ?2",
                (&name, reason.as_str()),
                |row| row.get(0),
            )
            .optional()?;
        let recent = told_at.is_some_and(|at| now - crate::db::datetime(at) < MISSES_TOLD_EVERY);
        if recent {
            transaction.execute(
                "UPDATE schedule_misses SET missed = missed + ?3 WHERE schedule = ?1 AND reason = ?2",
                (&name, reason.as_str(), count),
            )?;
        } else {
            let alert = Alert {
                chat,
                text,
                schedule: Some(&name),
                urgent,
            };
            alerts::queue(&transaction, &alert)?;
            transaction.execute(
                "INSERT INTO schedule_misses (schedule, reason, told_at, missed) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (schedule, reason) DO UPDATE SET told_at = ?3, missed = ?4",
                (&name, reason.as_str(), now.timestamp_millis(), count),
            )?;
        }
        transaction.commit()
    })
    .await
}

/// A schedule failing now.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    /// The schedule.
    pub schedule: String,
    /// When its streak began.
    pub since: chrono::DateTime<chrono::Utc>,
    /// Its failed runs in a row.
    pub failures: u32,
    /// Whether the streak reached its alert threshold (and was told).
    pub told: bool,
}

/// The schedules failing now, longest first.
pub async fn failing(db: &Database) -> anyhow::Result<Vec<Failing>> {
    db.call(|c| {
        let mut statement = c.prepare_cached(
            "SELECT schedule, failing_since, failures, alerted FROM schedule_streaks
             ORDER BY failing_since, schedule",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(Failing {
                schedule: row.get(0)?,
                since: crate::db::datetime(row.get(1)?),
                failures: row.get(2)?,
                told: row.get(3)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// Due times missed per schedule and reason, as counted since `since`.
pub async fn misses_since(
    db: &Database,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<(String, String, u32)>> {
    let since = since.timestamp_millis();
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT schedule, reason, missed FROM schedule_misses WHERE told_at >= ?1 ORDER BY schedule, reason",
        )?;
        let rows = statement.query_map([since], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect()
    })
    .await
}
