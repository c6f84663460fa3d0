//! `later`: a task plugin wakes itself. The wake-ups live in the SQLite
//! file: one due while the host was down runs once at start and says how
//! late it is; a run that finished is never run again, even when a crash
//! kept its wake-up from being marked done; `cancel` and the per-plugin
//! limit hold; `mission later` lists what waits.

use std::time::Duration;

use serde_json::Value;

use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

/// A setup with the `nudge` fixture granted `later` (and `extra` in its
/// table), and the status page.
fn nudge(extra: &str) -> Setup {
    let setup = Setup::new();
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        vec![PluginSpec::task("nudge", guest("nudge"))
            .with("grants = [\"later\"]")
            .with(extra)],
    );
    setup
}

/// The runs `later` started, oldest first.
fn woken_runs(setup: &Setup) -> Vec<Value> {
    let output = setup.mission(&["runs", "--json", "--limit", "200"]);
    let runs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let mut woken: Vec<Value> = runs.into_iter().filter(|r| r["trigger"] == "later").collect();
    woken.reverse();
    woken
}

fn summary(run: &Value) -> Value {
    serde_json::from_str(run["summary"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

fn waiting(setup: &Setup) -> Vec<Value> {
    serde_json::from_slice(&setup.mission(&["later", "--json"]).stdout).unwrap()
}

fn db(setup: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap()
}

#[test]
fn a_wake_up_due_while_the_host_was_down_runs_once_at_start_saying_it_is_late() {
    let setup = nudge("config = { after_ms = \"1\" }");
    let (ok, record) = setup.run_json("nudge");
    assert!(ok, "{record}");
    let asked = summary(&record);
    let id = asked["kept"][0].as_u64().expect("a wake-up id");
    let listed = waiting(&setup);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["plugin"], "nudge");
    assert_eq!(listed[0]["payload_bytes"], "payload-0".len());
    assert_eq!(listed[0]["created_by_run"], record["id"]);
    let table = text(&setup.mission(&["later"])).0;
    assert!(table.contains("nudge") && table.contains("9B"), "{table}");

    // Due already; the host is down until now.
    let host = RunningHost::start(&setup);
    let woken = wait_for("the woken run", Duration::from_secs(20), || {
        let woken = woken_runs(&setup);
        match woken.first() {
            Some(run) if run["outcome"] == "succeeded" => Ok(run.clone()),
            _ => Err(woken),
        }
    });
    let said = summary(&woken);
    assert_eq!(said["woke"], id);
    assert_eq!(said["payload"], "payload-0");
    assert_eq!(woken["wakeup"], id);
    let due_at = said["due_at"].as_i64().unwrap();
    let late_ms = said["late_ms"].as_i64().unwrap();
    let started = chrono::DateTime::parse_from_rfc3339(woken["started_at"].as_str().unwrap()).unwrap();
    assert!(late_ms > 0, "{said}");
    assert!(
        (due_at + late_ms - started.timestamp_millis()).abs() < 1000,
        "late_ms is the time from due to start: {said} started {started}"
    );
    assert!(waiting(&setup).is_empty(), "nothing waits once it ran");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");

    // A crash after the run ended but before its wake-up was marked done:
    // the next start finds the finished run and runs nothing again.
    db(&setup)
        .execute(
            "UPDATE wakeups SET state = 'running', outcome = NULL WHERE id = ?1",
            [id],
        )
        .unwrap();
    let host = RunningHost::start(&setup);
    wait_for("the wake-up marked done", Duration::from_secs(20), || {
        let state: (String, Option<String>) = db(&setup)
            .query_row("SELECT state, outcome FROM wakeups WHERE id = ?1", [id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        match state {
            (state, Some(outcome)) if state == "done" => Ok(outcome),
            other => Err(other),
        }
    });
    assert_eq!(woken_runs(&setup).len(), 1, "never twice");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_wake_up_asked_for_in_the_running_host_runs_at_its_time() {
    let setup = nudge("config = { after_ms = \"300\" }");
    setup.schedule("nudging", "plugin = \"nudge\"\ncron = \"0 0 1 1 *\"\n");
    let mut host = RunningHost::start(&setup);
    let output = setup.mission(&["trigger", "nudging", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("asked the running host"), "{stderr}");
    let asked: Value = serde_json::from_str(&stdout).unwrap();
    let id = summary(&asked)["kept"][0].as_u64().unwrap();
    // Well within the half-minute the trigger re-reads its table on its
    // own: `later` told it.
    let woken = wait_for("the woken run", Duration::from_secs(20), || {
        let woken = woken_runs(&setup);
        match woken.first() {
            Some(run) if run["outcome"] == "succeeded" => Ok(run.clone()),
            _ => Err(woken),
        }
    });
    assert_eq!(summary(&woken)["woke"], id);
    let page = crate::http_client::get(host.status_page(), "/");
    assert!(page.contains("No wake-up is waiting"), "{page}");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn cancel_takes_a_wake_up_back_and_the_limit_refuses_past_max_pending() {
    let setup = nudge(
        "config = { count = \"3\", after_ms = \"3600000\", cancel_first = \"true\" }\n\
         [plugins.nudge.later]\nmax_pending = 2",
    );
    let (ok, record) = setup.run_json("nudge");
    assert!(ok, "{record}");
    let said = summary(&record);
    let kept: Vec<u64> = serde_json::from_value(said["kept"].clone()).unwrap();
    assert_eq!(kept.len(), 2, "{said}");
    let refused = said["refused"].as_str().unwrap();
    assert!(
        refused.contains("already has 2 wake-ups waiting")
            && refused.contains("[plugins.nudge.later] max_pending"),
        "{refused}"
    );
    assert_eq!(said["cancelled"], true);
    let listed = waiting(&setup);
    let ids: Vec<u64> = listed.iter().map(|w| w["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [kept[1]], "the cancelled one is gone");
    // The page counts what waits.
    let mut host = RunningHost::start(&setup);
    let page = crate::http_client::get(host.status_page(), "/");
    assert!(page.contains("<b>1</b> waiting"), "{page}");
    drop(host);
}

#[test]
fn later_is_denied_without_its_grant_and_refused_for_a_chat_plugin() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("nudge", guest("nudge"))]);
    let (ok, record) = setup.run_json("nudge");
    assert!(ok, "{record}");
    let refused = summary(&record)["refused"].as_str().unwrap().to_owned();
    assert!(refused.contains("no `later` grant"), "{refused}");
    assert!(waiting(&setup).is_empty());

    setup.config(vec![
        PluginSpec::chat("echo", guest("echo_chat")).with("grants = [\"later\"]")
    ]);
    let output = setup.mission(&["check"]);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        format!("{stdout}{stderr}")
            .contains("plugins.echo.grants: `later` wakes a task plugin's `run`, and this is a chat plugin"),
        "{stdout}{stderr}"
    );
}

/// The `snooze` example built as `wasm` wakes itself: its run asks for a
/// wake-up through its SDK, and the woken run says so, naming `language`.
fn wakes_itself_through_the_sdk(wasm: std::path::PathBuf, language: &str) {
    let setup = Setup::with_plugins(vec![PluginSpec::task("snooze", wasm).with("grants = [\"later\"]")]);
    let (ok, record) = setup.run_json("snooze");
    assert!(ok, "{record}");
    let asked = record["summary"].as_str().unwrap().to_owned();
    let id = asked.strip_prefix("asked ").expect("a wake-up id").to_owned();
    let host = RunningHost::start(&setup);
    let woken = wait_for("the woken run", Duration::from_secs(60), || {
        let woken = woken_runs(&setup);
        match woken.first() {
            Some(run) if run["outcome"] == "succeeded" => Ok(run.clone()),
            _ => Err(woken),
        }
    });
    assert_eq!(woken["summary"], format!("woke {id}: from {language}"));
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_python_plugin_wakes_itself_through_the_sdk() {
    wakes_itself_through_the_sdk(crate::support::python_guest("snooze"), "python");
}

#[test]
fn a_javascript_plugin_wakes_itself_through_the_sdk() {
    wakes_itself_through_the_sdk(crate::support::js_guest("snooze"), "javascript");
}
