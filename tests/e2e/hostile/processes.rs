//! Programs that try to outlive their run: a child in a session of its own
//! (`setsid`, out of the process group the host kills), and one that keeps
//! the run's stdout open. The run ends at its deadline and takes them with
//! it.

use std::time::{Duration, Instant};

use super::{on_demand, Siege};
use crate::support::{alive, guest, wait_for, PluginSpec};

/// `run-command` allowed `/bin/sh`, with `process.timeout` `timeout` and a
/// longer plugin deadline.
fn shell(timeout: &str) -> PluginSpec {
    PluginSpec::task("job", guest("run_command")).with(&format!(
        "grants = [\"process\"]\ntimeout = \"15s\"\n[plugins.job.process]\nprograms = [\"/bin/sh\"]\ntimeout = \"{timeout}\"\n"
    ))
}

/// A schedule running `sh -c SCRIPT`.
fn script(script: &str) -> String {
    let args = serde_json::to_string(&["-c", script]).unwrap();
    on_demand("job", &format!("program = \"/bin/sh\", args = {args:?}"))
}

fn pid_in(file: &std::path::Path) -> i32 {
    std::fs::read_to_string(file).unwrap().trim().parse().unwrap()
}

#[test]
fn a_child_in_a_session_of_its_own_dies_with_the_run() {
    let marker = tempfile::tempdir().unwrap();
    let pid_file = marker.path().join("escaped.pid");
    let siege = Siege::start(
        vec![shell("5s")],
        &[(
            "escape",
            &script(&format!(
                "setsid sleep 47 & echo $! > {}; sleep 0.5",
                pid_file.display()
            )),
        )],
    );
    let run = siege.trigger("escape");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    let escaped = pid_in(&pid_file);
    wait_for(
        &format!("`setsid sleep 47` ({escaped}) to end with its run"),
        Duration::from_secs(2),
        || {
            if alive(escaped) {
                Err("still running")
            } else {
                Ok(())
            }
        },
    );
    siege.assert_serving();
    let log = siege.stop();
    assert!(
        log.contains("killed processes the program left running outside its group"),
        "{log}"
    );
}

#[test]
fn a_child_holding_stdout_open_cannot_stretch_the_run_past_its_deadline() {
    let marker = tempfile::tempdir().unwrap();
    let pid_file = marker.path().join("holder.pid");
    let siege = Siege::start(
        vec![shell("2s")],
        &[(
            "holder",
            // The program outlives its deadline, and a child of its own
            // session holds the pipe besides.
            &script(&format!(
                "setsid sleep 60 & echo $! > {}; echo started; sleep 30",
                pid_file.display()
            )),
        )],
    );
    let started = Instant::now();
    let run = siege.trigger("holder");
    let took = started.elapsed();
    assert_eq!(run["outcome"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("killed at its deadline"),
        "{run}"
    );
    // The process deadline (2 s), not the plugin's (15 s).
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    assert!(!alive(pid_in(&pid_file)), "the pipe's holder outlived the run");
    siege.assert_serving();
    siege.stop();
}
