//! Runs that start runs: a schedule's `after` names the schedules whose
//! runs' ends start it. The links are checked across the files (a parent
//! that is no schedule, a cycle: the file is refused, naming the path);
//! a run's follow-ups are queued in `follow_ups` in the transaction that
//! records its outcome (`runs::finish`), and each queued one is claimed
//! (`running`) before its run and done after it, so a crash between the
//! two neither loses it nor runs it twice.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{Schedule, ScheduleError};
use crate::db::retention::{period, Rule};
use crate::db::Database;
use crate::host::runs::{FollowOn, FollowUp, RunOutcome};

/// Takes out of `schedules` each whose `after` names no schedule file (of
/// `files`, the names of them all, refused ones too: a schedule that
/// follows a refused one stays, and runs again once that one is fixed) or
/// leads back to itself, with an error naming the file and the path; what
/// is left has no cycle.
pub fn refuse_broken(schedules: &mut Vec<Schedule>, files: &[String]) -> Vec<ScheduleError> {
    let mut errors = Vec::new();
    loop {
        let broken = schedules.iter().find_map(|schedule| {
            let names = |name: &str| files.iter().any(|file| file == name);
            if let Some(link) = schedule.after.iter().find(|link| !names(&link.schedule)) {
                return Some((
                    schedule.name.clone(),
                    format!("after: no schedule named `{}`", link.schedule),
                ));
            }
            cycle(schedules, schedule).map(|path| {
                (
                    schedule.name.clone(),
                    format!(
                        "after: the schedules would start each other without end ({})",
                        path.join(" → ")
                    ),
                )
            })
        });
        let Some((name, message)) = broken else {
            return errors;
        };
        let at = schedules
            .iter()
            .position(|s| s.name == name)
            .expect("found above");
        let schedule = schedules.remove(at);
        errors.push(ScheduleError {
            file: schedule.file,
            message,
        });
    }
}

/// The path from `start` through `after` links back to it, if there is one:
/// `["a", "b", "a"]`.
fn cycle(schedules: &[Schedule], start: &Schedule) -> Option<Vec<String>> {
    let mut path = vec![start.name.clone()];
    let mut seen = std::collections::HashSet::new();
    back_to(schedules, &start.name, &mut path, &mut seen)
}

fn back_to(
    schedules: &[Schedule],
    start: &str,
    path: &mut Vec<String>,
    seen: &mut std::collections::HashSet<String>,
) -> Option<Vec<String>> {
    let last = schedules.iter().find(|s| Some(&s.name) == path.last())?;
    for link in &last.after {
        if link.schedule == start {
            let mut found = path.clone();
            found.push(start.to_owned());
            // Read as "runs after": a → b means b follows a.
            found.reverse();
            return Some(found);
        }
        if !seen.insert(link.schedule.clone()) {
            continue;
        }
        path.push(link.schedule.clone());
        if let Some(found) = back_to(schedules, start, path, seen) {
            return Some(found);
        }
        path.pop();
    }
    None
}

/// The schedules that follow a run of `parent`. On an attempt that may be
/// retried, only a success ends the run, so only what a success starts.
pub fn follow_ups(schedules: &[Schedule], parent: &str, last_attempt: bool) -> Vec<FollowUp> {
    schedules
        .iter()
        .flat_map(|child| {
            child
                .after
                .iter()
                .filter(|link| link.schedule == parent)
                .map(|link| FollowUp {
                    schedule: child.name.clone(),
                    on: match (last_attempt, link.on) {
                        (true, on) => on,
                        (false, FollowOn::Any | FollowOn::Success) => FollowOn::Success,
                        (false, FollowOn::Failure) => FollowOn::Failure,
                    },
                })
        })
        .filter(|f| last_attempt || f.on == FollowOn::Success)
        .collect()
}

/// A queued follow-up: its row, the run that started it, the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its row id.
    pub id: i64,
    /// The run whose end queued it.
    pub parent_run: i64,
    /// The schedule to run.
    pub schedule: String,
}

/// The follow-ups waiting: of run `parent_run`, or of every run.
pub async fn waiting(db: &Database, parent_run: Option<i64>) -> anyhow::Result<Vec<Queued>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT id, parent_run, schedule FROM follow_ups
             WHERE state = 'pending' AND (?1 IS NULL OR parent_run = ?1) ORDER BY id",
        )?;
        let rows = statement.query_map([parent_run], |row| {
            Ok(Queued {
                id: row.get(0)?,
                parent_run: row.get(1)?,
                schedule: row.get(2)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// Puts back what a stop or a crash left `running`.
pub async fn reopen(db: &Database) -> anyhow::Result<usize> {
    db.call(|c| {
        c.execute(
            "UPDATE follow_ups SET state = 'pending' WHERE state = 'running'",
            [],
        )
    })
    .await
}

/// Claims follow-up `id` for its run. False if it is no longer waiting, or
/// if its run finished before a crash kept it from being marked done (it
/// is marked now: never twice).
pub async fn claim(db: &Database, id: i64) -> anyhow::Result<bool> {
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ran: Option<RunOutcome> = transaction
            .prepare_cached(
                "SELECT runs.outcome FROM follow_ups JOIN runs
                     ON runs.parent_run = follow_ups.parent_run AND runs.schedule = follow_ups.schedule
                 WHERE follow_ups.id = ?1 AND runs.outcome NOT IN ('running', 'interrupted')
                 ORDER BY runs.id DESC LIMIT 1",
            )?
            .query_row([id], |row| row.get(0))
            .optional()?;
        let claimed = match ran {
            Some(outcome) => {
                transaction.execute(
                    "UPDATE follow_ups SET state = 'done', outcome = ?2, finished_at = ?3
                     WHERE id = ?1 AND state = 'pending'",
                    rusqlite::params![id, outcome, now],
                )?;
                false
            }
            None => {
                transaction.execute(
                    "UPDATE follow_ups SET state = 'running' WHERE id = ?1 AND state = 'pending'",
                    [id],
                )? == 1
            }
        };
        transaction.commit()?;
        Ok(claimed)
    })
    .await
}

/// Marks the follow-up of run `parent_run` by `schedule` done, its run
/// having ended `outcome` (none: it could not run).
pub async fn finish(
    db: &Database,
    parent_run: i64,
    schedule: &str,
    outcome: Option<RunOutcome>,
) -> anyhow::Result<()> {
    let (schedule, now) = (schedule.to_owned(), chrono::Utc::now().timestamp_millis());
    db.call(move |c| {
        c.execute(
            "UPDATE follow_ups SET state = 'done', outcome = ?3, finished_at = ?4
             WHERE parent_run = ?1 AND schedule = ?2",
            rusqlite::params![parent_run, schedule, outcome, now],
        )
    })
    .await?;
    Ok(())
}

/// How follow-ups go: done ones after `[retention] runs`, as their runs.
pub const RETENTION: &[Rule] = &[Rule {
    table: "follow_ups",
    kind: "follow-ups",
    delete: "DELETE FROM follow_ups WHERE id IN (SELECT id FROM follow_ups
             WHERE state = 'done' AND finished_at < ?1 LIMIT ?2)",
    keep: |p| p.retention.runs,
    kept: |p| format!("{} once done", period(p.retention.runs)),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triggers::schedule::After;

    fn schedule(name: &str, after: &[(&str, FollowOn)]) -> Schedule {
        Schedule {
            after: after
                .iter()
                .map(|(parent, on)| After {
                    schedule: (*parent).to_owned(),
                    on: *on,
                })
                .collect(),
            ..Schedule::for_test(name, "0 7 * * *", chrono_tz::UTC)
        }
    }

    #[test]
    fn a_cycle_is_refused_naming_its_path_and_the_rest_stays() {
        let mut schedules = vec![
            schedule("a", &[("c", FollowOn::Success)]),
            schedule("b", &[("a", FollowOn::Success)]),
            schedule("c", &[("b", FollowOn::Any)]),
            schedule("d", &[("a", FollowOn::Failure)]),
            schedule("e", &[("nowhere", FollowOn::Success)]),
        ];
        let files: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
        let errors = refuse_broken(&mut schedules, &files);
        let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            said,
            [
                "a.toml: after: the schedules would start each other without end (a → b → c → a)",
                "e.toml: after: no schedule named `nowhere`",
            ]
        );
        let left: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            left,
            ["b", "c", "d"],
            "a refused breaks the cycle; what follows it stays, to run once it is fixed"
        );
    }

    #[test]
    fn an_attempt_that_may_be_retried_starts_only_what_a_success_starts() {
        let schedules = vec![
            schedule("sync", &[]),
            schedule("sheet", &[("sync", FollowOn::Success)]),
            schedule("page-me", &[("sync", FollowOn::Failure)]),
            schedule("log", &[("sync", FollowOn::Any)]),
        ];
        let names = |follow_ups: Vec<FollowUp>| -> Vec<(String, FollowOn)> {
            follow_ups.into_iter().map(|f| (f.schedule, f.on)).collect()
        };
        assert_eq!(
            names(follow_ups(&schedules, "sync", true)),
            [
                ("sheet".to_owned(), FollowOn::Success),
                ("page-me".to_owned(), FollowOn::Failure),
                ("log".to_owned(), FollowOn::Any),
            ]
        );
        assert_eq!(
            names(follow_ups(&schedules, "sync", false)),
            [
                ("sheet".to_owned(), FollowOn::Success),
                ("log".to_owned(), FollowOn::Success),
            ]
        );
    }
}
