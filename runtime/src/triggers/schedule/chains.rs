//! Runs that start runs: a schedule's `after` (or a task plugin's, in
//! `[plugins.NAME]`) names the schedules whose runs' ends start it. The
//! links are checked across the files (a parent that is no schedule, a
//! cycle: the file is refused, naming the path; a plugin's run starts
//! nothing, so it closes no cycle);
//! a run's follow-ups are queued in `follow_ups` in the transaction that
//! records its outcome (`runs::finish`), and each queued one is claimed
//! (`running`) before its run and done after it, so a crash between the
//! two neither loses it nor runs it twice.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{Schedule, ScheduleError};
use crate::config::after::{After, FollowOn};
use crate::config::{Config, World};
use crate::db::retention::{period, Rule};
use crate::db::Database;
use crate::host::runs::{FollowUp, Follower, RunOutcome};

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

/// For each task plugin whose `after` names no schedule (neither one of
/// `schedules` nor a file `refused`), what it names: it follows nothing
/// until that schedule is there.
pub fn unknown_parents(config: &Config, schedules: &[Schedule], refused: &[ScheduleError]) -> Vec<String> {
    let known = |name: &str| {
        schedules.iter().any(|s| s.name == name)
            || refused
                .iter()
                .any(|e| e.file.file_stem().is_some_and(|stem| stem == name))
    };
    config
        .plugins
        .iter()
        .flat_map(|plugin| {
            plugin
                .after
                .iter()
                .filter(|link| !known(&link.schedule))
                .map(move |link| {
                    format!(
                        "plugin `{}`: after: no schedule named `{}`; it follows nothing until there is one",
                        plugin.name, link.schedule
                    )
                })
        })
        .collect()
}

/// What follows a run of schedule `parent`: the schedules and the task
/// plugins whose `after` names it. On an attempt that may be retried, only
/// a success ends the run, so only what a success starts.
pub fn follow_ups(
    schedules: &[Schedule],
    config: &Config,
    parent: &str,
    last_attempt: bool,
) -> Vec<FollowUp> {
    let of_schedules = schedules
        .iter()
        .map(|s| (Follower::Schedule(s.name.clone()), &s.after));
    let of_plugins = config
        .plugins
        .iter()
        .filter(|p| p.world == World::Task)
        .map(|p| (Follower::Plugin(p.name.to_string()), &p.after));
    of_schedules
        .chain(of_plugins)
        .flat_map(|(follower, after): (Follower, &Vec<After>)| {
            after
                .iter()
                .filter(|link| link.schedule == parent)
                .map(move |link| FollowUp {
                    follower: follower.clone(),
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

/// A queued follow-up: its row, the run that started it, what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its row id.
    pub id: i64,
    /// The run whose end queued it.
    pub parent_run: i64,
    /// The schedule or plugin to run.
    pub follower: Follower,
}

/// The follow-ups waiting: of run `parent_run`, or of every run.
pub async fn waiting(db: &Database, parent_run: Option<i64>) -> anyhow::Result<Vec<Queued>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT id, parent_run, kind, name FROM follow_ups
             WHERE state = 'pending' AND (?1 IS NULL OR parent_run = ?1) ORDER BY id",
        )?;
        let rows = statement.query_map([parent_run], |row| {
            let (id, parent_run, kind, name): (i64, i64, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            Ok(Follower::from_row(&kind, name).map(|follower| Queued {
                id,
                parent_run,
                follower,
            }))
        })?;
        // A kind a later build wrote waits for that build.
        rows.filter_map(Result::transpose).collect()
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
                     ON runs.parent_run = follow_ups.parent_run
                     AND CASE follow_ups.kind
                         WHEN 'schedule' THEN runs.schedule = follow_ups.name
                         ELSE runs.schedule IS NULL AND runs.plugin = follow_ups.name END
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

/// Marks the follow-up of run `parent_run` by `follower` done, its run
/// having ended `outcome` (none: it could not run).
pub async fn finish(
    db: &Database,
    parent_run: i64,
    follower: &Follower,
    outcome: Option<RunOutcome>,
) -> anyhow::Result<()> {
    let (follower, now) = (follower.clone(), chrono::Utc::now().timestamp_millis());
    db.call(move |c| {
        c.execute(
            "UPDATE follow_ups SET state = 'done', outcome = ?4, finished_at = ?5
             WHERE parent_run = ?1 AND kind = ?2 AND name = ?3",
            rusqlite::params![parent_run, follower.kind(), follower.name(), outcome, now],
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

    /// A config with the task plugin `sheet-plugin` following `sync` on
    /// `on`, and a chat plugin (which nothing follows with).
    fn config(on: &str) -> Config {
        let text = format!(
            "data_dir = \"d\"\n[plugins.sheet-plugin]\nworld = \"task\"\nwasm = \"s.wasm\"\n\
             after = {{ schedule = \"sync\", on = \"{on}\" }}\n\
             [plugins.echo]\nworld = \"chat\"\nwasm = \"e.wasm\"\n"
        );
        Config::parse("/m/mission.toml".as_ref(), &text).unwrap()
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
            follow_ups
                .into_iter()
                .map(|f| (f.follower.to_string(), f.on))
                .collect()
        };
        let config = config("any");
        assert_eq!(
            names(follow_ups(&schedules, &config, "sync", true)),
            [
                ("sheet".to_owned(), FollowOn::Success),
                ("page-me".to_owned(), FollowOn::Failure),
                ("log".to_owned(), FollowOn::Any),
                ("plugin sheet-plugin".to_owned(), FollowOn::Any),
            ]
        );
        assert_eq!(
            names(follow_ups(&schedules, &config, "sync", false)),
            [
                ("sheet".to_owned(), FollowOn::Success),
                ("log".to_owned(), FollowOn::Success),
                ("plugin sheet-plugin".to_owned(), FollowOn::Success),
            ]
        );
        assert!(follow_ups(&schedules, &config, "sheet", true).is_empty());
    }

    #[test]
    fn a_plugin_following_no_schedule_is_named_and_a_refused_file_counts_as_there() {
        let config = config("success");
        let said = unknown_parents(&config, &[], &[]);
        assert_eq!(
            said,
            ["plugin `sheet-plugin`: after: no schedule named `sync`; it follows nothing until there is one"]
        );
        assert!(unknown_parents(&config, &[schedule("sync", &[])], &[]).is_empty());
        let refused = ScheduleError {
            file: "/m/schedules/sync.toml".into(),
            message: "cron: bad".into(),
        };
        assert!(unknown_parents(&config, &[], &[refused]).is_empty());
    }
}
