//! The `process` capability through the shipped `run-command` plugin: only
//! listed programs, only named environment variables, no shell, the whole
//! process group killed at the deadline, the exit code as the run's outcome.

use std::time::{Duration, Instant};

use crate::support::{alive, guest, text, PluginSpec, Setup};

/// `run-command` granted `programs` (and `extra` grant lines), asked to run
/// `program` with `args` (a JSON array).
fn setup(programs: &[&str], extra: &str, program: &str, args: &str) -> Setup {
    let programs: Vec<String> = programs.iter().map(|p| format!("{p:?}")).collect();
    Setup::with_plugins(vec![PluginSpec::task("job", guest("run_command")).with(
        &format!(
        "grants = [\"process\"]\ntimeout = \"20s\"\nconfig = {{ program = {program:?}, args = {args:?} }}\n\
         [plugins.job.process]\nprograms = [{}]\n{extra}",
        programs.join(", ")
    ),
    )])
}

fn run(setup: &Setup) -> (bool, serde_json::Value) {
    let output = setup
        .command(&["run", "job", "--json"])
        .env("MISSION_TEST_VISIBLE", "granted-value")
        .env("MISSION_TEST_HIDDEN", "host-secret")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    let record = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.success(), record)
}

#[test]
fn a_listed_program_runs_with_its_arguments_as_given_and_no_shell() {
    let setup = setup(
        &["/bin/echo"],
        "",
        "/bin/echo",
        r#"["hello", "$HOME; rm -rf /", "a b"]"#,
    );
    let (succeeded, record) = run(&setup);
    assert!(succeeded, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(summary.starts_with("exit 0 in "), "{summary}");
    assert!(summary.ends_with(":\nhello $HOME; rm -rf / a b"), "{summary}");
}

#[test]
fn a_program_not_listed_is_denied() {
    let setup = setup(&["/bin/echo"], "", "/bin/sh", r#"["-c", "echo escaped"]"#);
    let (succeeded, record) = run(&setup);
    assert!(!succeeded);
    assert_eq!(
        record["error"],
        "the plugin returned an error: denied: `/bin/sh` is not in plugins.job.process.programs"
    );
}

#[test]
fn only_the_named_environment_variables_reach_the_program() {
    let setup = setup(
        &["/usr/bin/env"],
        "env = [\"MISSION_TEST_VISIBLE\"]\n",
        "/usr/bin/env",
        "[]",
    );
    let (succeeded, record) = run(&setup);
    assert!(succeeded, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(":\nMISSION_TEST_VISIBLE=granted-value"),
        "{summary}"
    );
    assert!(
        !summary.contains("host-secret") && !summary.contains("PATH="),
        "{summary}"
    );
}

#[test]
fn a_failing_exit_is_a_failed_run_with_the_end_of_stderr() {
    let setup = setup(
        &["/bin/sh"],
        "",
        "/bin/sh",
        r#"["-c", "echo working; echo 'disk full' >&2; exit 3"]"#,
    );
    let (succeeded, record) = run(&setup);
    assert!(!succeeded);
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("exit 3 in ") && error.ends_with(":\ndisk full"),
        "{error}"
    );
}

#[test]
fn at_its_deadline_the_program_and_what_it_started_are_killed() {
    let marker = tempfile::tempdir().unwrap();
    let pid_file = marker.path().join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let args = serde_json::to_string(&["-c", &script]).unwrap();
    let setup = setup(&["/bin/sh"], "timeout = \"1s\"\n", "/bin/sh", &args);
    let started = Instant::now();
    let (succeeded, record) = run(&setup);
    assert!(!succeeded);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("killed at its deadline"), "{error}");
    let child: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Killed: gone, or a zombie waiting for whoever inherited it to reap it.
    assert!(!alive(child), "the background `sleep` ({child}) outlived the run");
}

#[test]
fn check_warns_of_a_program_that_is_not_there() {
    let setup = setup(&["/bin/echo", "/opt/missing/backup.sh"], "", "/bin/echo", "[]");
    let output = setup.mission(&["check"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("plugins.job.process: ok, may run /bin/echo"),
        "{stdout}"
    );
    assert!(
        stdout.contains("warning: plugins.job.process.programs: `/opt/missing/backup.sh` is not a file here"),
        "{stdout}"
    );
    let relative = Setup::with_plugins(vec![PluginSpec::task("job", guest("run_command"))
        .with("grants = [\"process\"]\n[plugins.job.process]\nprograms = [\"backup.sh\"]\n")]);
    let output = relative.mission(&["check"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugins.job.process.programs: `backup.sh` is not an absolute path"),
        "{stderr}"
    );
}
