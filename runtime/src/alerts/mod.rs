//! Alerts: what the host tells a person unasked — a schedule failing or
//! missing its runs, a refused reload, a Claude budget or the Agent SDK
//! credit running down, the daily digest. Each is queued in the
//! [`outbox`] within the transaction that decided it, and sent from there
//! at least once. An alert about a schedule carries the buttons that fit
//! it ([`Action`]: a failure **Details**, **Run again**, **Pause** and
//! **Mute 24 h**; a run missed while the host was down **Run now**; a
//! recovery none), and a muted schedule queues none. What every button the
//! host posts carries back when pressed (an alert's, a tool approval's) is
//! written and read in [`buttons`].

pub mod buttons;
pub mod outbox;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};

use crate::alerts::buttons::{ButtonData, ButtonKind};
use crate::db::retention::{period, Rule};
use crate::db::Database;

/// How long **Mute 24 h** holds a schedule's alerts.
pub const MUTE_FOR: Duration = Duration::from_secs(24 * 3600);

/// One alert to queue.
#[derive(Debug, Clone)]
pub struct Alert<'a> {
    /// The chat it goes to.
    pub chat: i64,
    /// What it says.
    pub text: String,
    /// The schedule it is about: the buttons act on it, a mute holds it.
    pub schedule: Option<&'a str>,
    /// Sent even in quiet hours.
    pub urgent: bool,
}

/// Queues `alert` in `transaction`, with whatever else it writes, without
/// buttons; `false` if its schedule is muted, so nothing was queued.
pub fn queue(transaction: &Transaction<'_>, alert: &Alert<'_>) -> rusqlite::Result<bool> {
    queue_with_buttons(transaction, alert, &[], None)
}

/// Queues `alert` as [`queue`] does, under the buttons `actions` (which act
/// on its schedule); `run` is the run its **Details** shows.
pub fn queue_with_buttons(
    transaction: &Transaction<'_>,
    alert: &Alert<'_>,
    actions: &[Action],
    run: Option<i64>,
) -> rusqlite::Result<bool> {
    let now = Utc::now().timestamp_millis();
    if let Some(schedule) = alert.schedule {
        let muted: Option<i64> = transaction
            .query_row(
                "SELECT until FROM alert_mutes WHERE schedule = ?1 AND until > ?2",
                (schedule, now),
                |row| row.get(0),
            )
            .optional()?;
        if muted.is_some() {
            tracing::info!(schedule, "alerts muted: not told: {}", alert.text);
            return Ok(false);
        }
    }
    let actions: Vec<&str> = actions.iter().map(|a| a.word()).collect();
    transaction.execute(
        "INSERT INTO outbox (chat_id, text, schedule, urgent, queued_at, actions, run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            alert.chat,
            alert.text,
            alert.schedule,
            alert.urgent,
            now,
            actions.join(" "),
            run
        ],
    )?;
    Ok(true)
}

/// Queues `alert` on its own.
pub async fn queue_now(db: &Database, alert: Alert<'_>) -> anyhow::Result<bool> {
    let (chat, text, urgent) = (alert.chat, alert.text, alert.urgent);
    let schedule = alert.schedule.map(str::to_owned);
    db.call(move |c| {
        let transaction = c.transaction()?;
        let alert = Alert {
            chat,
            text,
            schedule: schedule.as_deref(),
            urgent,
        };
        let queued = queue(&transaction, &alert)?;
        transaction.commit()?;
        Ok(queued)
    })
    .await
}

/// What a button under a schedule's alert does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Show the whole error of the alert's run, as `/runs ID`.
    Details,
    /// Run the schedule again after a failure, as `/run NAME`.
    RunAgain,
    /// Run the schedule now after a missed run, as `/run NAME`.
    RunNow,
    /// Pause it, as `/pause NAME`.
    Pause,
    /// Hold its alerts for [`MUTE_FOR`].
    Mute,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::Details,
        Action::RunAgain,
        Action::RunNow,
        Action::Pause,
        Action::Mute,
    ];

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            Action::Details => "Details",
            Action::RunAgain => "Run again",
            Action::RunNow => "Run now",
            Action::Pause => "Pause",
            Action::Mute => "Mute 24 h",
        }
    }

    /// Its name in the outbox and in callback data.
    fn word(self) -> &'static str {
        match self {
            Action::Details => "details",
            Action::RunAgain => "run",
            Action::RunNow => "run_now",
            Action::Pause => "pause",
            Action::Mute => "mute",
        }
    }

    /// The action an alert button's `word` names, if any.
    pub fn from_word(word: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.word() == word)
    }

    /// The button's callback data, under alert `id`.
    pub fn callback_data(self, id: i64) -> String {
        ButtonData::encode(ButtonKind::Alert, id, self.word())
    }

    /// The actions stored as `words` (space-separated), unknown ones left out.
    pub fn list(words: &str) -> Vec<Action> {
        words.split_whitespace().filter_map(Action::from_word).collect()
    }
}

/// What a schedule's alert is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The chat it was sent to.
    pub chat: i64,
    /// The schedule.
    pub schedule: String,
    /// The run it tells of, if one.
    pub run: Option<i64>,
}

/// What alert `id` is about, if it is a schedule's.
pub async fn subject(db: &Database, id: i64) -> anyhow::Result<Option<Subject>> {
    db.call(move |c| {
        c.query_row(
            "SELECT chat_id, schedule, run FROM outbox WHERE id = ?1 AND schedule IS NOT NULL",
            [id],
            |row| {
                Ok(Subject {
                    chat: row.get(0)?,
                    schedule: row.get(1)?,
                    run: row.get(2)?,
                })
            },
        )
        .optional()
    })
    .await
}

/// Holds `schedule`'s alerts until `until`.
pub async fn mute(db: &Database, schedule: &str, until: DateTime<Utc>) -> anyhow::Result<()> {
    let (schedule, until) = (schedule.to_owned(), until.timestamp_millis());
    db.call(move |c| {
        c.execute(
            "INSERT INTO alert_mutes (schedule, until) VALUES (?1, ?2)
             ON CONFLICT (schedule) DO UPDATE SET until = ?2",
            (schedule, until),
        )
        .map(drop)
    })
    .await
}

/// Queues `alert` once per `key` and `level`: a threshold crossed (a
/// budget at 80 % this month) is never told twice.
pub async fn once(db: &Database, key: String, level: u32, alert: Alert<'static>) -> anyhow::Result<bool> {
    highest_once(db, key, vec![(level, alert)]).await
}

/// Of the levels of `key` crossed now, each with its alert, queues only the
/// highest's, and only if it was not told before; every one of them is
/// marked told. So one step past 50, 80 and 100 % tells 100 % alone, and
/// 50 % is never told after it.
pub async fn highest_once(
    db: &Database,
    key: String,
    crossed: Vec<(u32, Alert<'static>)>,
) -> anyhow::Result<bool> {
    db.call(move |c| {
        let transaction = c.transaction()?;
        let now = Utc::now().timestamp_millis();
        let mut highest: Option<(u32, bool, &Alert<'_>)> = None;
        for (level, alert) in &crossed {
            let fresh = transaction.execute(
                "INSERT OR IGNORE INTO alerts_told (key, level, at) VALUES (?1, ?2, ?3)",
                (&key, level, now),
            )? == 1;
            if highest.is_none_or(|(top, ..)| *level > top) {
                highest = Some((*level, fresh, alert));
            }
        }
        let queued = match highest {
            Some((_, true, alert)) => queue(&transaction, alert)?,
            _ => false,
        };
        transaction.commit()?;
        Ok(queued)
    })
    .await
}

/// How alerts go: a sent one, and what was told once, after `[retention]
/// alerts`; an alert not sent yet stays, as it is still owed.
pub const RETENTION: &[Rule] = &[
    Rule {
        table: "outbox",
        kind: "alerts",
        delete: "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
                 WHERE sent_at IS NOT NULL AND sent_at < ?1 LIMIT ?2)",
        keep: |p| p.retention.alerts,
        kept: |p| period(p.retention.alerts),
    },
    Rule {
        table: "alerts_told",
        kind: "alerts",
        delete:
            "DELETE FROM alerts_told WHERE rowid IN (SELECT rowid FROM alerts_told WHERE at < ?1 LIMIT ?2)",
        keep: |p| p.retention.alerts,
        kept: |p| period(p.retention.alerts),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_names_the_alert_and_the_action() {
        for action in Action::ALL {
            let data = action.callback_data(42);
            let read = ButtonData::parse(&data).unwrap();
            assert_eq!((read.kind, read.id), (ButtonKind::Alert, 42));
            assert_eq!(Action::from_word(read.word), Some(action));
        }
        assert_eq!(Action::from_word("explode"), None);
    }

    #[tokio::test]
    async fn a_muted_schedule_queues_nothing_until_the_mute_ends() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let alert = |text: &str| Alert {
            chat: 1,
            text: text.into(),
            schedule: Some("backup"),
            urgent: false,
        };
        assert!(queue_now(&db, alert("first")).await.unwrap());
        mute(&db, "backup", Utc::now() + chrono::Duration::hours(24))
            .await
            .unwrap();
        assert!(!queue_now(&db, alert("held")).await.unwrap());
        let other = Alert {
            schedule: Some("invoices"),
            ..alert("other")
        };
        assert!(
            queue_now(&db, other).await.unwrap(),
            "only that schedule is muted"
        );
        mute(&db, "backup", Utc::now() - chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert!(queue_now(&db, alert("again")).await.unwrap());
    }

    #[tokio::test]
    async fn a_threshold_is_told_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let alert = || Alert {
            chat: 1,
            text: "80 %".into(),
            schedule: None,
            urgent: false,
        };
        assert!(once(&db, "budget:2026-12".into(), 80, alert()).await.unwrap());
        assert!(!once(&db, "budget:2026-12".into(), 80, alert()).await.unwrap());
        assert!(once(&db, "budget:2026-12".into(), 100, alert()).await.unwrap());
        assert!(once(&db, "budget:2027-01".into(), 80, alert()).await.unwrap());
    }

    #[tokio::test]
    async fn levels_crossed_at_once_tell_only_the_highest_and_never_a_lower_one_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let alert = |text: &str| Alert {
            chat: 1,
            text: text.into(),
            schedule: None,
            urgent: false,
        };
        let levels = |marks: &[u32]| -> Vec<(u32, Alert<'static>)> {
            marks.iter().map(|m| (*m, alert(&format!("{m} %")))).collect()
        };
        let key = || "credit:2026-12-01".to_owned();
        assert!(highest_once(&db, key(), levels(&[50, 80, 100])).await.unwrap());
        assert!(
            !highest_once(&db, key(), levels(&[50])).await.unwrap(),
            "told with 100 %"
        );
        assert!(!highest_once(&db, key(), levels(&[50, 80])).await.unwrap());
        let other = || "credit:2027-01-01".to_owned();
        assert!(highest_once(&db, other(), levels(&[50])).await.unwrap());
        assert!(highest_once(&db, other(), levels(&[50, 80])).await.unwrap());
        let queued: Vec<String> = db
            .call(|c| {
                let mut statement = c.prepare("SELECT text FROM outbox ORDER BY id")?;
                let texts = statement.query_map([], |row| row.get(0))?;
                texts.collect()
            })
            .await
            .unwrap();
        assert_eq!(queued, ["100 %", "50 %", "80 %"]);
    }
}
