//! `mission service`: the LaunchAgent and systemd unit it writes (parsed
//! back), only the environment the config names, and install, status and
//! uninstall driving the service manager. systemd's user manager is not
//! reachable here, so a `systemctl` on PATH stands in: it records its
//! arguments and answers `show` as systemd does.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

/// A config that names a bot token, an HTTP secret and a process variable.
fn setup() -> Setup {
    let setup = Setup::new();
    setup.config_with(
        "[telegram]\ntoken_env = \"MISSION_TEST_BOT_TOKEN\"\nallowed_users = [1]\nhandler = \"echo\"\n",
        vec![
            PluginSpec::chat("echo", guest("echo_chat")).with("grants = [\"history\"]"),
            PluginSpec::task("job", guest("run_command")).with(
                "grants = [\"process\"]\nconfig = { program = \"/bin/true\" }\n\
                 [plugins.job.process]\nprograms = [\"/bin/true\"]\nenv = [\"MISSION_TEST_JOB_VAR\"]",
            ),
        ],
    );
    setup
}

fn dry_run(setup: &Setup, manager: &str) -> String {
    let output = setup
        .command(&["service", "install", "--dry-run", "--manager", manager])
        .env("MISSION_TEST_BOT_TOKEN", "123:tok%en$x\"y")
        .env("MISSION_TEST_JOB_VAR", "job-value")
        .env("MISSION_TEST_UNNAMED_SECRET", "must-not-leak")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    stdout
}

#[test]
fn the_launch_agent_runs_the_host_with_only_the_named_environment() {
    let setup = setup();
    let xml = dry_run(&setup, "launchd");
    let agent = plist::Value::from_reader_xml(xml.as_bytes()).unwrap();
    let agent = agent.as_dictionary().unwrap();
    assert_eq!(agent["Label"].as_string(), Some("local.mission-control"));
    let arguments: Vec<&str> = agent["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_string().unwrap())
        .collect();
    let config = setup.config_path();
    assert_eq!(
        arguments,
        [
            env!("CARGO_BIN_EXE_mission"),
            "up",
            "--config",
            config.to_str().unwrap()
        ]
    );
    assert_eq!(agent["RunAtLoad"].as_boolean(), Some(true));
    assert_eq!(agent["KeepAlive"].as_boolean(), Some(true));
    assert_eq!(
        agent["WorkingDirectory"].as_string().map(Path::new),
        Some(setup.dir.path())
    );
    let log = Path::new(agent["StandardErrorPath"].as_string().unwrap());
    assert!(log.starts_with(setup.dir.path().join("data")), "{log:?}");
    let env = agent["EnvironmentVariables"].as_dictionary().unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(names, ["MISSION_TEST_BOT_TOKEN", "MISSION_TEST_JOB_VAR", "PATH"]);
    assert_eq!(env["MISSION_TEST_BOT_TOKEN"].as_string(), Some("123:tok%en$x\"y"));
    assert!(!xml.contains("must-not-leak"));
}

#[test]
fn the_systemd_unit_restarts_on_failure_with_only_the_named_environment() {
    let setup = setup();
    let unit = dry_run(&setup, "systemd");
    let config = setup.config_path();
    let lines: Vec<&str> = unit.lines().collect();
    let exec = format!(
        "ExecStart=\"{}\" \"up\" \"--config\" \"{}\"",
        env!("CARGO_BIN_EXE_mission"),
        config.display()
    );
    for wanted in [
        "[Service]",
        exec.as_str(),
        "Restart=on-failure",
        // systemd would expand `%` and `$`: doubled; `"` escaped.
        r#"Environment="MISSION_TEST_BOT_TOKEN=123:tok%%en$$x\"y""#,
        r#"Environment="MISSION_TEST_JOB_VAR=job-value""#,
        "[Install]",
        "WantedBy=default.target",
    ] {
        assert!(lines.contains(&wanted), "no line `{wanted}` in:\n{unit}");
    }
    let env_lines = lines.iter().filter(|l| l.starts_with("Environment=")).count();
    assert_eq!(env_lines, 3, "{unit}");
    assert!(!unit.contains("must-not-leak"));
}

#[test]
fn a_variable_the_config_names_but_that_is_unset_is_a_warning() {
    let setup = setup();
    let output = setup
        .command(&["service", "install", "--dry-run", "--manager", "systemd"])
        .env_remove("MISSION_TEST_BOT_TOKEN")
        .env("MISSION_TEST_JOB_VAR", "x")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: MISSION_TEST_BOT_TOKEN is named in") && stderr.contains("mission.toml"),
        "{stderr}"
    );
    assert!(!stdout.contains("MISSION_TEST_BOT_TOKEN"), "{stdout}");
}

/// A `systemctl` that appends its arguments to `calls.log` beside it, fails
/// while `fail` exists there, and answers `show` from `state` (written by
/// `restart` and `disable`).
fn fake_systemctl(dir: &Path) {
    let script = format!(
        r#"#!/bin/sh
d={dir}
echo "$*" >> "$d/calls.log"
if [ -e "$d/fail" ]; then echo "Failed to connect to bus: No medium found" >&2; exit 1; fi
case "$*" in
  *restart*) printf 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=4242\nActiveEnterTimestamp=Tue 2026-12-01 06:00:00 UTC\n' > "$d/state" ;;
  *disable*) printf 'LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\nActiveEnterTimestamp=\n' > "$d/state" ;;
  *show*) cat "$d/state" 2>/dev/null || printf 'LoadState=not-found\nActiveState=inactive\n' ;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("systemctl");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn install_status_and_uninstall_drive_the_service_manager() {
    let setup = setup();
    let home = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    fake_systemctl(bin.path());
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let mission = |args: &[&str]| {
        setup
            .command(args)
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env("PATH", &path)
            .env("MISSION_TEST_BOT_TOKEN", "123:abc")
            .output()
            .unwrap()
    };
    let unit = home.path().join(".config/systemd/user/mission-control.service");

    // The manager unreachable: the file is written, the failure named.
    std::fs::write(bin.path().join("fail"), "").unwrap();
    let output = mission(&["service", "install", "--manager", "systemd"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the service did not start") && stderr.contains("Failed to connect to bus"),
        "{stderr}"
    );
    std::fs::remove_file(bin.path().join("fail")).unwrap();

    let output = mission(&["service", "install", "--manager", "systemd"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("journalctl --user -u mission-control.service"),
        "{stdout}"
    );
    let mode = std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the unit holds the bot token: owner only");
    assert!(std::fs::read_to_string(&unit)
        .unwrap()
        .contains("MISSION_TEST_BOT_TOKEN=123:abc"));
    let calls = std::fs::read_to_string(bin.path().join("calls.log")).unwrap();
    assert!(
        calls.contains("--user daemon-reload\n--user enable mission-control.service\n--user restart mission-control.service"),
        "{calls}"
    );

    // Installed, the manager says running, but no host has beaten: exit 3.
    let output = mission(&["service", "status", "--manager", "systemd"]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("service: installed"), "{stdout}");
    assert!(
        stdout.contains("manager: active (running), pid 4242, since Tue 2026-12-01 06:00:00 UTC"),
        "{stdout}"
    );
    assert!(stdout.contains("host: not running"), "{stdout}");

    // With a host up, its heartbeat answers for it.
    let host = RunningHost::start(&setup);
    let stdout = wait_for(
        "the host's heartbeat in the status",
        Duration::from_secs(10),
        || {
            let output = mission(&["service", "status", "--manager", "systemd", "--json"]);
            let (stdout, stderr) = text(&output);
            if output.status.success() {
                Ok(stdout)
            } else {
                Err(stdout + &stderr)
            }
        },
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["installed"], true);
    assert_eq!(json["host"]["running"], true);
    assert!(json["host"]["pid"].as_u64().unwrap() > 0);
    host.signal("-TERM");
    assert!(host.wait().0);

    let output = mission(&["service", "uninstall", "--manager", "systemd"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(!unit.exists());
    let calls = std::fs::read_to_string(bin.path().join("calls.log")).unwrap();
    assert!(
        calls.contains("--user disable --now mission-control.service"),
        "{calls}"
    );
    let output = mission(&["service", "status", "--manager", "systemd"]);
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stdout.contains("service: not installed") && stdout.contains("manager: not loaded"),
        "{stdout}"
    );
}

/// Starts `command` with open-file limits `soft` and `hard`, as a
/// LaunchAgent (256) or a login shell (1,024) would.
pub fn limit_open_files(command: &mut std::process::Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the struct.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// The soft and hard open-file limits of process `pid`, from `/proc`.
pub fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_service_files_ask_for_an_open_file_limit_above_launchd_s_256() {
    let setup = setup();
    let xml = dry_run(&setup, "launchd");
    let agent = plist::Value::from_reader_xml(xml.as_bytes()).unwrap();
    let agent = agent.as_dictionary().unwrap();
    for limits in ["SoftResourceLimits", "HardResourceLimits"] {
        let files = agent[limits].as_dictionary().unwrap()["NumberOfFiles"]
            .as_unsigned_integer()
            .unwrap();
        assert_eq!(files, 8192, "{limits} in:\n{xml}");
    }
    let unit = dry_run(&setup, "systemd");
    assert!(
        unit.lines().any(|l| l == "LimitNOFILE=8192"),
        "no LimitNOFILE in:\n{unit}"
    );
}

#[test]
fn mission_up_raises_its_soft_open_file_limit_to_the_hard_one() {
    let setup = setup();
    let mut command = setup.command(&["up"]);
    command.env("MISSION_TEST_BOT_TOKEN", "123:abc");
    limit_open_files(&mut command, 256, 4096);
    let mut host = RunningHost::spawn(command);
    let line = host.wait_for_logged(&["raised the open-file limit"]);
    assert!(line.contains("from=256") && line.contains("to=4096"), "{line}");
    assert_eq!(open_file_limits(host.pid()), (4096, 4096));
    host.signal("-TERM");
    assert!(host.wait().0);
}
