//! What a schedule's alerts say, written for a person reading on a phone:
//! times in the schedule's zone, the cause of a failure in plain sight, no
//! config syntax or terminal commands. A failure streak is told once in
//! `[alerts] chat` when it reaches `after_failures` consecutive failed runs
//! (after their retries), under **Details**, **Run again**, **Pause** and
//! **Mute 24 h**, and once more, with no buttons, when a run succeeds
//! again, saying how long it was broken. Missed due times are told once a
//! day per schedule and reason, with why (**Run now** under a run missed
//! while the host was down). The streak and the alert are written in one
//! transaction, into the outbox, so neither a restart nor a Telegram outage
//! loses or repeats one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::OptionalExtension;

use super::scheduler::{MissReason, Missed};
use super::Schedule;
use crate::alerts::{self, Action, Alert};
use crate::config::alerts::AlertsConfig;
use crate::config::units::span;
use crate::db::Database;
use crate::host::runs::{RunOutcome, RunRecord};
use crate::untrusted;

/// The most of an error's cause an alert or `/runs` shows, in characters.
const CAUSE_CHARS: usize = 200;

/// The buttons under a failure alert.
const FAILURE_BUTTONS: [Action; 4] = [Action::Details, Action::RunAgain, Action::Pause, Action::Mute];

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
    let (name, plugin, urgent, chat, zone) = (
        schedule.name.clone(),
        schedule.plugin.clone(),
        schedule.urgent,
        config.chat,
        schedule.zone,
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
                let since = crate::db::datetime(since);
                let broken = (record.finished_at.unwrap_or(record.started_at) - since)
                    .to_std()
                    .unwrap_or_default();
                let text = format!(
                    "✅ {name} (plugin {plugin}) works again, after {failures} failed run{} since {} \
                     (broken for {}).",
                    if failures == 1 { "" } else { "s" },
                    at(since, zone),
                    span(broken),
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
            let text = failure_text(&name, &plugin, zone, &record, failures, attempts);
            alerts::queue_with_buttons(&transaction, &alert(text), &FAILURE_BUTTONS, Some(record.id))?;
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
    let text = missed_text(schedule, missed);
    let buttons: &'static [Action] = match missed.reason {
        MissReason::HostDown => &[Action::RunNow],
        MissReason::Overlap | MissReason::Slept => &[],
    };
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
            alerts::queue_with_buttons(&transaction, &alert, buttons, None)?;
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

/// What a failure alert says: the schedule, how many runs failed, the
/// cause, when the last ran (in `zone`) and how long it took, and where the
/// whole error is.
fn failure_text(
    name: &str,
    plugin: &str,
    zone: Tz,
    record: &RunRecord,
    failures: u32,
    attempts: u32,
) -> String {
    let outcome = outcome_phrase(record.outcome);
    let headline = match (failures, record.outcome) {
        (1, _) => format!("⚠️ {name} (plugin {plugin}) {outcome}."),
        (n, RunOutcome::Failed) => format!("⚠️ {name} (plugin {plugin}) failed {n} runs in a row."),
        (n, _) => format!("⚠️ {name} (plugin {plugin}) failed {n} runs in a row; the last {outcome}."),
    };
    let cause = record.error.as_deref().map(cause).unwrap_or_default();
    let cause = match cause.is_empty() {
        true => "Cause: none given.".to_owned(),
        false => format!("Cause: {cause}"),
    };
    let took = record
        .finished_at
        .map(|end| took((end - record.started_at).to_std().unwrap_or_default()));
    let started = at(record.started_at, zone);
    let last = match (took, attempts) {
        (Some(took), 1) => format!("The run started {started} and took {took}."),
        (Some(took), n) => format!("The last of {n} attempts started {started} and took {took}."),
        (None, _) => format!("The run started {started}."),
    };
    format!(
        "{headline}\n{cause}\n{last}\nDetails shows the whole error (or send /runs {}).",
        record.id
    )
}

/// What a missed-runs alert says: which due times, in the schedule's zone,
/// and why, in words.
fn missed_text(schedule: &Schedule, missed: Missed) -> String {
    let (first, last) = (at(missed.first, schedule.zone), at(missed.last, schedule.zone));
    let runs = match missed.count {
        1 => format!("did not run at {first}"),
        n => format!("did not run {n} times, from {first} to {last}"),
    };
    let why = match missed.reason {
        MissReason::HostDown => {
            "the host was down, and this schedule does not make up runs missed while it is down"
        }
        MissReason::Overlap => {
            "its previous run was still going, and this schedule skips a run rather than start a second"
        }
        MissReason::Slept => "the computer slept or the host stalled; one run made up for them when it woke",
    };
    format!(
        "⏭ {} (plugin {}) {runs}: {why}. More of these today are counted, not told.",
        schedule.name, schedule.plugin
    )
}

/// How a run ended, said of the run in words ("timed out").
pub fn outcome_phrase(outcome: RunOutcome) -> &'static str {
    match outcome {
        RunOutcome::Running => "is still running",
        RunOutcome::Succeeded => "succeeded",
        RunOutcome::Failed => "failed",
        RunOutcome::Trapped => "crashed",
        RunOutcome::TimedOut => "timed out",
        RunOutcome::OutOfMemory => "ran out of memory",
        RunOutcome::Interrupted => "was interrupted",
        RunOutcome::NotLoaded => "could not start: its plugin is not loaded",
        RunOutcome::Skipped => "was skipped: the run before was still going",
    }
}

/// `time` in `zone` as a phone reads it: `Tue 14:05 CET`.
pub fn at(time: DateTime<Utc>, zone: Tz) -> String {
    time.with_timezone(&zone).format("%a %H:%M %Z").to_string()
}

/// How long a run took: milliseconds under a second, else as a span.
pub fn took(duration: Duration) -> String {
    match duration.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        _ => span(duration),
    }
}

/// The innermost cause in a run's error, for one line on a phone: the last
/// line that says something (where an error chain's innermost cause is,
/// numbered or not), without the host's "the plugin returned an error: ",
/// its controls written as escapes ([`untrusted::terminal`]), its end kept
/// within [`CAUSE_CHARS`].
pub fn cause(error: &str) -> String {
    let last = error
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.eq_ignore_ascii_case("caused by:"))
        .unwrap_or_default();
    let unnumbered = match last.split_once(": ") {
        Some((number, rest)) if !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => last,
    };
    let said = unnumbered
        .strip_prefix("the plugin returned an error: ")
        .unwrap_or(unnumbered)
        .trim_end_matches(':');
    let printable: Vec<char> = untrusted::terminal(said).chars().collect();
    match printable.len() > CAUSE_CHARS {
        true => format!(
            "…{}",
            String::from_iter(&printable[printable.len() - (CAUSE_CHARS - 1)..])
        ),
        false => String::from_iter(printable),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn invoices() -> Schedule {
        Schedule::for_test("invoices", "0 1 * * *", chrono_tz::Europe::Berlin)
    }

    const CHAIN: &str =
        "the plugin returned an error: fetching open orders from the shop\n\nCaused by:\n    \
                         0: connecting to shop.example\n    1: connection refused (os error 111)";

    fn failed_run(id: i64, outcome: RunOutcome, error: &str) -> RunRecord {
        let started = utc("2026-11-24T00:00:00Z");
        RunRecord {
            id,
            plugin: "invoices".into(),
            schedule: Some("invoices".into()),
            trigger: "schedule".into(),
            request: None,
            delivery: None,
            files_written: 0,
            rerun_of: None,
            wakeup: None,
            parent_run: None,
            press: None,
            pressed: None,
            scheduled_at: started,
            attempt: 1,
            started_at: started,
            finished_at: Some(started + chrono::Duration::milliseconds(400)),
            outcome,
            error: Some(error.into()),
            summary: None,
            output: String::new(),
            output_bytes: 0,
            output_truncated: false,
            waiting_for_approval: false,
        }
    }

    fn alerts_config() -> AlertsConfig {
        AlertsConfig {
            chat: 7,
            after_failures: 1,
            digest: None,
            quiet: None,
            zone: Tz::UTC,
            ping: None,
            approval_wait: Duration::from_secs(3600),
        }
    }

    /// The outbox: each alert's text, buttons and run.
    async fn outbox(db: &Database) -> Vec<(String, String, Option<i64>)> {
        db.call(|c| {
            let mut statement = c.prepare("SELECT text, actions, run FROM outbox ORDER BY id")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
        .await
        .unwrap()
    }

    #[test]
    fn the_cause_is_the_innermost_line_of_the_error_bounded_and_printable() {
        assert_eq!(cause(CHAIN), "connection refused (os error 111)");
        assert_eq!(
            cause("the plugin returned an error: exit 3 in 5 ms:\ndisk full"),
            "disk full"
        );
        assert_eq!(
            cause("the plugin returned an error: exit 3 in 5 ms:"),
            "exit 3 in 5 ms"
        );
        assert_eq!(
            cause("the plugin timed out after 30s"),
            "the plugin timed out after 30s"
        );
        assert_eq!(
            cause("refused\x1b]0;title\x07 twice"),
            "refused\\u{1b}]0;title\\u{7} twice"
        );
        let long = format!("{} the end", "y".repeat(500));
        let shown = cause(&long);
        assert_eq!(shown.chars().count(), CAUSE_CHARS);
        assert!(shown.starts_with('…') && shown.ends_with("y the end"), "{shown}");
        assert_eq!(cause(""), "");
    }

    #[test]
    fn a_sub_second_run_is_told_in_milliseconds() {
        assert_eq!(took(Duration::from_millis(400)), "400 ms");
        assert_eq!(took(Duration::from_millis(65_300)), "1m 5s");
    }

    #[test]
    fn a_failure_alert_names_the_cause_and_the_time_in_the_schedule_s_zone() {
        let run = failed_run(4, RunOutcome::Failed, CHAIN);
        let text = failure_text("invoices", "invoices", chrono_tz::Europe::Berlin, &run, 2, 1);
        assert_eq!(
            text,
            "⚠️ invoices (plugin invoices) failed 2 runs in a row.\n\
             Cause: connection refused (os error 111)\n\
             The run started Tue 01:00 CET and took 400 ms.\n\
             Details shows the whole error (or send /runs 4)."
        );
        let timed_out = failed_run(5, RunOutcome::TimedOut, "the plugin timed out after 30s");
        let text = failure_text("invoices", "invoices", Tz::UTC, &timed_out, 3, 2);
        assert!(
            text.starts_with(
                "⚠️ invoices (plugin invoices) failed 3 runs in a row; the last timed out.\n\
                 Cause: the plugin timed out after 30s\n\
                 The last of 2 attempts started Tue 00:00 UTC and took 400 ms."
            ),
            "{text}"
        );
        let once = failure_text("invoices", "invoices", Tz::UTC, &timed_out, 1, 1);
        assert!(
            once.starts_with("⚠️ invoices (plugin invoices) timed out.\n"),
            "{once}"
        );
    }

    #[test]
    fn a_missed_run_alert_says_why_in_words_not_config() {
        let missed = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-23T00:00:00Z"),
            last: utc("2026-11-23T06:00:00Z"),
            count: 7,
        };
        assert_eq!(
            missed_text(&invoices(), missed),
            "⏭ invoices (plugin invoices) did not run 7 times, from Mon 01:00 CET to Mon 07:00 CET: \
             the host was down, and this schedule does not make up runs missed while it is down. \
             More of these today are counted, not told."
        );
        let skipped = Missed {
            reason: MissReason::Overlap,
            count: 1,
            ..missed
        };
        let text = missed_text(&invoices(), skipped);
        assert!(
            text.starts_with("⏭ invoices (plugin invoices) did not run at Mon 01:00 CET: its previous run"),
            "{text}"
        );
        assert!(!text.contains('"') && !text.contains('='), "{text}");
    }

    #[tokio::test]
    async fn each_alert_carries_only_the_buttons_that_fit_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let (schedule, config) = (invoices(), alerts_config());
        let failed = failed_run(4, RunOutcome::Failed, CHAIN);
        after_fire(&db, &schedule, Some(&config), &failed, 1)
            .await
            .unwrap();
        let succeeded = RunRecord {
            id: 5,
            outcome: RunOutcome::Succeeded,
            error: None,
            finished_at: Some(utc("2026-11-24T00:10:00Z")),
            ..failed
        };
        after_fire(&db, &schedule, Some(&config), &succeeded, 1)
            .await
            .unwrap();
        let host_down = Missed {
            reason: MissReason::HostDown,
            first: utc("2026-11-25T00:00:00Z"),
            last: utc("2026-11-25T00:00:00Z"),
            count: 1,
        };
        missed(&db, &schedule, Some(&config), host_down).await.unwrap();
        let skipped = Missed {
            reason: MissReason::Overlap,
            ..host_down
        };
        missed(&db, &schedule, Some(&config), skipped).await.unwrap();
        let told = outbox(&db).await;
        let buttons: Vec<(&str, Option<i64>)> = told.iter().map(|(_, a, run)| (a.as_str(), *run)).collect();
        assert_eq!(
            buttons,
            [
                ("details run pause mute", Some(4)),
                ("", None),
                ("run_now", None),
                ("", None)
            ]
        );
        assert_eq!(
            told[1].0,
            "✅ invoices (plugin invoices) works again, after 1 failed run since Tue 01:00 CET \
             (broken for 10m 0s)."
        );
    }
}
