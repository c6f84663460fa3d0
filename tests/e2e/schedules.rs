//! Schedules through the `mission` binary: listing, pausing, triggering
//! through a running host or in-process, bad files, and runs interrupted by
//! shutdown or by a killed host.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{guest, text, wait_for, wat_task, PluginSpec, RunningHost, Setup};

const SPIN: &str = "(loop $spin (br $spin)) unreachable";

fn briefing_setup() -> Setup {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")
    ]);
    setup.schedule(
        "morning",
        "plugin = \"briefing\"\ncron = \"0 7 * * mon-fri\"\ntimezone = \"Europe/Berlin\"\n",
    );
    setup
}

fn spin_setup(top: &str) -> Setup {
    let setup = Setup::new();
    let spin = setup.file("spin.wasm", &wat_task(SPIN));
    setup.config_with(
        top,
        vec![PluginSpec::task("spin", spin).with("timeout = \"60s\"")],
    );
    setup.schedule("spinner", "plugin = \"spin\"\ncron = \"0 0 1 1 *\"\n");
    setup
}

#[test]
fn schedules_lists_next_fire_time_in_its_zone_and_pause_state() {
    let setup = briefing_setup();
    let output = setup.mission(&["schedules", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(rows[0]["name"], "morning");
    assert_eq!(rows[0]["timezone"], "Europe/Berlin");
    let next = rows[0]["next"].as_str().unwrap();
    assert!(
        next.contains("T07:00:00+01:00") || next.contains("T07:00:00+02:00"),
        "{next}"
    );
    assert_eq!(rows[0]["paused"], false);

    assert!(setup.mission(&["pause", "morning"]).status.success());
    let rows: serde_json::Value =
        serde_json::from_slice(&setup.mission(&["schedules", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["paused"], true);
    assert!(setup.mission(&["resume", "morning"]).status.success());
    let rows: serde_json::Value =
        serde_json::from_slice(&setup.mission(&["schedules", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["paused"], false);

    let output = setup.mission(&["pause", "nope"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("no schedule named `nope`"));
}

#[test]
fn schedule_next_prints_fire_times_with_offsets() {
    let setup = Setup::new();
    let output = setup.mission(&[
        "schedule",
        "next",
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-03-28T12:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(
        text(&output).0,
        "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n"
    );
    let output = setup.mission(&["schedule", "next", "0 7 * *"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("has 4 fields"));
}

#[test]
fn trigger_without_a_host_runs_in_process_and_records_the_run() {
    let setup = briefing_setup();
    let output = setup.mission(&["trigger", "morning", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["schedule"], "morning");
    assert_eq!(record["trigger"], "trigger");
    assert_eq!(record["request"], serde_json::Value::Null);
    assert_eq!(record["outcome"], "succeeded");

    let runs: serde_json::Value =
        serde_json::from_slice(&setup.mission(&["runs", "--schedule", "morning", "--json"]).stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["id"], record["id"]);
    let table = text(&setup.mission(&["runs"])).0;
    assert!(
        table.contains("morning") && table.contains("succeeded"),
        "{table}"
    );
}

#[test]
fn trigger_goes_through_the_running_host() {
    let setup = briefing_setup();
    let host = RunningHost::start(&setup);
    let output = setup.mission(&["trigger", "morning", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("asked the running host"), "{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(record["request"].is_i64(), "{record}");
    assert_eq!(record["outcome"], "succeeded");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    assert!(log.contains("triggered"), "{log}");
}

#[test]
fn a_bad_schedule_file_is_named_and_the_others_keep_running() {
    let setup = briefing_setup();
    setup.schedule("broken", "plugin = \"briefing\"\ncron = \"0 25 * * *\"\n");
    setup.schedule("typo", "plugin = \"briefing\"\ncron = \"@daily\"\nretires = 2\n");
    let output = setup.mission(&["check"]);
    let (stdout, _) = text(&output);
    assert!(!output.status.success());
    assert!(stdout.contains("schedule `morning`: ok"), "{stdout}");
    assert!(
        stdout.contains("broken.toml: cron: `0 25 * * *` is not a valid cron expression"),
        "{stdout}"
    );
    assert!(
        stdout.contains("typo.toml: ") && stdout.contains("unknown field `retires`"),
        "{stdout}"
    );

    let host = RunningHost::start(&setup);
    assert!(
        host.seen.contains("schedule refused") && host.seen.contains("broken.toml"),
        "{}",
        host.seen
    );
    let output = setup.mission(&["trigger", "morning", "--json"]);
    assert!(output.status.success(), "{}", text(&output).1);
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn shutdown_interrupts_a_run_after_the_grace_period() {
    let setup = spin_setup("shutdown_grace = \"300ms\"");
    let host = RunningHost::start(&setup);
    let mut trigger = setup
        .command(&["trigger", "spinner", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_run(&setup, "running");
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    assert!(log.contains("grace period over"), "{log}");
    let mut stdout = String::new();
    trigger
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    trigger.wait().unwrap();
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(record["outcome"], "interrupted", "{record}");
}

#[test]
fn a_run_left_by_a_killed_host_is_recorded_as_interrupted_on_restart() {
    let setup = spin_setup("");
    let host = RunningHost::start(&setup);
    let mut trigger = setup
        .command(&["trigger", "spinner"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_run(&setup, "running");
    host.signal("-KILL");
    host.wait();
    trigger.kill().unwrap();
    trigger.wait().unwrap();

    let host = RunningHost::start(&setup);
    assert!(host.seen.contains("recorded as interrupted"), "{}", host.seen);
    let runs: serde_json::Value = serde_json::from_slice(&setup.mission(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "interrupted", "{runs}");
    host.signal("-TERM");
    assert!(host.wait().0);
}

/// Waits until the latest run has `outcome`.
fn wait_for_run(setup: &Setup, outcome: &str) {
    wait_for(&format!("a run {outcome}"), Duration::from_secs(30), || {
        let output = setup.mission(&["runs", "--limit", "1", "--json"]);
        let runs: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if runs[0]["outcome"] == outcome {
            Ok(())
        } else {
            Err(runs)
        }
    });
}
