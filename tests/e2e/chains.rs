//! Runs that start runs: a schedule's `after`, and a task plugin's in its
//! `[plugins.NAME]`. A follow-up is queued in the
//! transaction that records its parent's outcome, runs once with the
//! parent's name, run, outcome and summary in its event, and is never lost
//! nor run twice across a stop; a cycle is refused by name.

use std::time::Duration;

use serde_json::Value;

use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

/// The `nudge` fixture and schedules: `sync` and `sync-bad` (which fails),
/// each followed on success, on failure and on any end.
fn chained() -> Setup {
    let setup = Setup::with_plugins(vec![PluginSpec::task("nudge", guest("nudge"))]);
    let yearly = "plugin = \"nudge\"\ncron = \"0 0 1 1 *\"\n";
    setup.schedule("sync", &format!("{yearly}config = {{ count = \"0\" }}\n"));
    setup.schedule("sync-bad", &format!("{yearly}config = {{ fail = \"true\" }}\n"));
    for parent in ["sync", "sync-bad"] {
        setup.schedule(
            &format!("{parent}-sheet"),
            &format!("plugin = \"nudge\"\nafter = {{ schedule = \"{parent}\" }}\n"),
        );
        setup.schedule(
            &format!("{parent}-page-me"),
            &format!("plugin = \"nudge\"\nafter = {{ schedule = \"{parent}\", on = \"failure\" }}\n"),
        );
        setup.schedule(
            &format!("{parent}-log"),
            &format!("plugin = \"nudge\"\nafter = [{{ schedule = \"{parent}\", on = \"any\" }}]\n"),
        );
    }
    setup
}

fn runs(setup: &Setup) -> Vec<Value> {
    serde_json::from_slice(&setup.mission(&["runs", "--json", "--limit", "200"]).stdout).unwrap()
}

/// The runs of schedules that followed run `parent`, by schedule, once all
/// `expected` finished.
fn followers(setup: &Setup, parent: i64, expected: usize) -> Vec<(String, Value)> {
    wait_for("the follow-ups to finish", Duration::from_secs(30), || {
        let mut followers: Vec<(String, Value)> = runs(setup)
            .into_iter()
            .filter(|r| r["parent_run"] == parent && r["outcome"] != "running" && r["schedule"].is_string())
            .map(|r| (r["schedule"].as_str().unwrap().to_owned(), r))
            .collect();
        followers.sort_by(|a, b| a.0.cmp(&b.0));
        if followers.len() >= expected {
            Ok(followers)
        } else {
            Err(followers)
        }
    })
}

fn queued_for(setup: &Setup, parent: i64) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let mut statement = db
        .prepare(
            "SELECT name, state FROM follow_ups WHERE parent_run = ?1 AND kind = 'schedule' ORDER BY name",
        )
        .unwrap();
    statement
        .query_map([parent], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_run_s_end_starts_what_follows_it_on_success_and_on_failure_each_once() {
    let setup = chained();
    let host = RunningHost::start(&setup);
    for (parent, outcome, followed) in [
        ("sync", "succeeded", ["sync-log", "sync-sheet"]),
        ("sync-bad", "failed", ["sync-bad-log", "sync-bad-page-me"]),
    ] {
        let output = setup.mission(&["trigger", parent, "--json"]);
        let record: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(record["outcome"], outcome, "{record}");
        let id = record["id"].as_i64().unwrap();
        let followers = followers(&setup, id, 2);
        let names: Vec<&str> = followers.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, followed, "{followers:#?}");
        for (name, run) in &followers {
            assert_eq!(run["trigger"], "after", "{name}: {run}");
            assert_eq!(run["outcome"], "succeeded", "{name}: {run}");
            let told: Value = serde_json::from_str(run["summary"].as_str().unwrap()).unwrap();
            assert_eq!(told["parent"], parent);
            assert_eq!(told["parent_run"], id);
            assert_eq!(told["outcome"], outcome);
            let parent_said = record["summary"].as_str().or(record["error"].as_str()).unwrap();
            assert_eq!(told["summary"], parent_said);
        }
        // What the outcome did not start was never queued; the rest is done.
        let queued = queued_for(&setup, id);
        assert_eq!(
            queued,
            followed.map(|name| (name.to_owned(), "done".to_owned())),
            "{queued:?}"
        );
        let shown = text(&setup.mission(&["runs", "--id", &id.to_string()])).0;
        assert!(
            shown.contains(&format!(
                "followed by run {} ({})",
                followers[0].1["id"], followed[0]
            )),
            "{shown}"
        );
    }
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_follow_up_queued_by_a_run_that_ended_before_it_started_runs_once_in_the_host() {
    let setup = chained();
    // No host: the run ends, its follow-ups stay queued with its outcome.
    let output = setup.mission(&["trigger", "sync", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("queued what follows it: sync-log, sync-sheet"),
        "{stderr}"
    );
    let id = serde_json::from_str::<Value>(&stdout).unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        queued_for(&setup, id),
        [
            ("sync-log".to_owned(), "pending".to_owned()),
            ("sync-sheet".to_owned(), "pending".to_owned())
        ]
    );
    let host = RunningHost::start(&setup);
    followers(&setup, id, 2);
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    // A crash after the follow-up's run ended but before it was marked
    // done: the next start finds the run and runs nothing again.
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    db.execute(
        "UPDATE follow_ups SET state = 'running', outcome = NULL WHERE parent_run = ?1",
        [id],
    )
    .unwrap();
    let host = RunningHost::start(&setup);
    wait_for(
        "the follow-ups marked done again",
        Duration::from_secs(20),
        || {
            let queued = queued_for(&setup, id);
            match queued.iter().all(|(_, state)| state == "done") {
                true => Ok(()),
                false => Err(queued),
            }
        },
    );
    let followers = followers(&setup, id, 2);
    assert_eq!(followers.len(), 2, "never twice: {followers:#?}");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_cycle_of_afters_is_refused_naming_its_path() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("nudge", guest("nudge"))]);
    setup.schedule(
        "a",
        "plugin = \"nudge\"\ncron = \"0 0 1 1 *\"\nafter = { schedule = \"c\" }\n",
    );
    setup.schedule("b", "plugin = \"nudge\"\nafter = { schedule = \"a\" }\n");
    setup.schedule(
        "c",
        "plugin = \"nudge\"\nafter = { schedule = \"b\", on = \"any\" }\n",
    );
    setup.schedule("d", "plugin = \"nudge\"\nafter = { schedule = \"nowhere\" }\n");
    let output = setup.mission(&["check"]);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success());
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("a.toml: after: the schedules would start each other without end (a → b → c → a)"),
        "{said}"
    );
    assert!(
        said.contains("d.toml: after: no schedule named `nowhere`"),
        "{said}"
    );
}

/// `sync` and the task plugin `sheet` following it on success in its own
/// table, beside a schedule also named `sheet` that follows it too.
fn followed_by_a_plugin() -> Setup {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("nudge", guest("nudge")),
        PluginSpec::task("sheet", guest("nudge")).with("after = { schedule = \"sync\" }"),
    ]);
    setup.schedule(
        "sync",
        "plugin = \"nudge\"\ncron = \"0 0 1 1 *\"\nconfig = { count = \"0\" }\n",
    );
    setup.schedule("sheet", "plugin = \"nudge\"\nafter = { schedule = \"sync\" }\n");
    setup
}

/// The finished run of plugin `plugin` (no schedule) that followed run
/// `parent`.
fn plugin_follower(setup: &Setup, parent: i64, plugin: &str) -> Value {
    wait_for(
        "the plugin's follow-up to finish",
        Duration::from_secs(30),
        || {
            let all = runs(setup);
            let found: Vec<&Value> = all
                .iter()
                .filter(|r| r["parent_run"] == parent && r["plugin"] == plugin && r["schedule"].is_null())
                .collect();
            match found.as_slice() {
                [run] if run["outcome"] != "running" => Ok((*run).clone()),
                _ => Err(found.into_iter().cloned().collect::<Vec<_>>()),
            }
        },
    )
}

#[test]
fn a_task_plugin_s_own_after_runs_it_once_with_its_config_beside_a_schedule_of_its_name() {
    let setup = followed_by_a_plugin();
    // No host: the parent's run queues both, told apart by kind.
    let output = setup.mission(&["trigger", "sync", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("queued what follows it: sheet, plugin sheet"),
        "{stderr}"
    );
    let record: Value = serde_json::from_str(&stdout).unwrap();
    let id = record["id"].as_i64().unwrap();
    let host = RunningHost::start(&setup);
    let run = plugin_follower(&setup, id, "sheet");
    assert_eq!(run["trigger"], "after", "{run}");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    let told: Value = serde_json::from_str(run["summary"].as_str().unwrap()).unwrap();
    assert_eq!(told["parent"], "sync");
    assert_eq!(told["parent_run"], id);
    assert_eq!(told["outcome"], "succeeded");
    assert_eq!(told["summary"], record["summary"]);
    // The schedule of the same name ran too, once.
    let schedules = followers(&setup, id, 1);
    assert_eq!(schedules.len(), 1, "{schedules:#?}");
    assert_eq!(schedules[0].0, "sheet");
    let shown = text(&setup.mission(&["runs", "--id", &id.to_string()])).0;
    assert!(
        shown.contains(&format!("followed by run {} (plugin sheet)", run["id"])),
        "{shown}"
    );
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    // A crash after its run but before it was marked done: the next start
    // finds the run by plugin and runs nothing again.
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let reopened = db
        .execute(
            "UPDATE follow_ups SET state = 'running', outcome = NULL WHERE parent_run = ?1 AND kind = 'plugin'",
            [id],
        )
        .unwrap();
    assert_eq!(reopened, 1);
    let host = RunningHost::start(&setup);
    wait_for(
        "the plugin's follow-up marked done again",
        Duration::from_secs(20),
        || {
            let state: String = db
                .query_row(
                    "SELECT state FROM follow_ups WHERE parent_run = ?1 AND kind = 'plugin'",
                    [id],
                    |row| row.get(0),
                )
                .unwrap();
            if state == "done" {
                Ok(())
            } else {
                Err(state)
            }
        },
    );
    let again: Vec<Value> = runs(&setup)
        .into_iter()
        .filter(|r| r["parent_run"] == id && r["plugin"] == "sheet")
        .collect();
    assert_eq!(again.len(), 1, "never twice: {again:#?}");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_plugin_following_no_schedule_or_not_a_task_is_named_by_mission_check() {
    let check = |plugin: PluginSpec| {
        let setup = Setup::with_plugins(vec![plugin.with("after = { schedule = \"nowhere\" }")]);
        let output = setup.mission(&["check"]);
        let (stdout, stderr) = text(&output);
        (output.status.success(), format!("{stdout}{stderr}"))
    };
    let (ok, said) = check(PluginSpec::task("sheet", guest("nudge")));
    assert!(!ok, "{said}");
    assert!(
        said.contains(
            "plugin `sheet`: after: no schedule named `nowhere`; it follows nothing until there is one"
        ),
        "{said}"
    );
    let (ok, said) = check(PluginSpec::chat("echo", guest("echo_chat")));
    assert!(!ok, "{said}");
    assert!(
        said.contains(
            "plugins.echo.after: a run's end starts a task plugin's `run`, and this is a chat plugin"
        ),
        "{said}"
    );
}
