//! A schedule's failure streak: told once in `[alerts] chat` when it
//! reaches `after_failures` consecutive failed runs (after their retries),
//! and once more when a run succeeds again, saying how long it was broken.
//! The streak and the alert are written in one transaction, into the
//! outbox, so neither a restart nor a Telegram outage loses or repeats one.

use rusqlite::OptionalExtension;

use super::Schedule;
use crate::alerts::{self, Alert};
use crate::config::alerts::AlertsConfig;
use crate::config::units::span;
use crate::db::Database;
use crate::host::runs::RunRecord;

/// The most of a run's error an alert quotes.
const ERROR_LINES: usize = 5;

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
