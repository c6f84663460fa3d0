//! `mission import launchd` on a set of realistic LaunchAgents
//! (tests/fixtures/launchd): every key the import maps, the jobs it leaves
//! with their reasons, the cron each produces read back by `mission
//! schedule next`, and an imported job run through the host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{guest, repo_root, text, wait_for, Setup};

/// The fixtures copied to a directory of their own, the morning briefing
/// as a binary plist (as `defaults write` leaves them).
fn launch_agents() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("tests/fixtures/launchd")).unwrap() {
        let path = entry.unwrap().path();
        let target = dir.path().join(path.file_name().unwrap());
        if path.ends_with("com.acme.morning-briefing.plist") {
            plist::Value::from_file(&path)
                .unwrap()
                .to_file_binary(&target)
                .unwrap();
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
    dir
}

fn import(setup: &Setup, agents: &Path, extra: &[&str]) -> (bool, String, String) {
    let wasm = guest("run_command");
    let mut args = vec![
        "import",
        "launchd",
        agents.to_str().unwrap(),
        "--wasm",
        wasm.to_str().unwrap(),
    ];
    args.extend(extra);
    let output = setup.mission(&args);
    let (stdout, stderr) = text(&output);
    (output.status.success(), stdout, stderr)
}

/// `mission schedule next EXPR` from Sunday 2026-12-06 12:00 UTC.
fn next_times(expr: &str, count: usize) -> Vec<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mission"))
        .args([
            "schedule",
            "next",
            expr,
            "--tz",
            "UTC",
            "--from",
            "2026-12-06T12:00:00Z",
        ])
        .args(["--count", &count.to_string()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    stdout.lines().map(str::to_owned).collect()
}

#[test]
fn launch_agents_on_a_schedule_become_schedules_and_the_others_are_listed() {
    let setup = Setup::new();
    setup.config(vec![]);
    let agents = launch_agents();
    let (ok, stdout, stderr) = import(&setup, agents.path(), &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.starts_with("imported 8 of 11 jobs"), "{stdout}");
    assert!(
        stdout.contains("watch `com-acme-inbox-watcher`: /Users/anna/Scans  (WatchPaths)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "watch `com-acme-outbox`: /Users/anna/Outbox, run until it is empty  (QueueDirectories)"
        ),
        "{stdout}"
    );
    for (label, reason) in [
        ("com.acme.proxy", "KeepAlive: a daemon launchd keeps running"),
        (
            "com.acme.camera-import",
            "StartOnMount: it runs when a volume mounts",
        ),
        ("com.acme.login-greeting", "RunAtLoad only: it runs once at login"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{label} (")))
            .unwrap_or_else(|| panic!("{label} not reported:\n{stdout}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(
        stdout.contains("launchctl bootout gui/$(id -u)/com.acme.crm-sync"),
        "{stdout}"
    );

    // What each job became, as the host reads it.
    let output = setup.mission(&["schedules", "--json"]);
    let (json, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let schedules: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let when = |name: &str| {
        let schedule = schedules
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no schedule {name}: {json}"));
        (
            schedule["when"].as_str().unwrap().to_owned(),
            schedule["paused"] == true,
        )
    };
    let expected = [
        // StartCalendarInterval as one dictionary.
        ("com-acme-morning-briefing", "30 7 * * *"),
        // An array differing only in Weekday: one list.
        ("com-acme-crm-sync", "0 9 * * 1,3,5"),
        // An array that no list can say: two schedules; Weekday 7 is Sunday.
        ("com-acme-invoices", "0 8 1 * *"),
        ("com-acme-invoices-2", "30 18 * * 0"),
        // A missing Minute is every minute, as in launchd.
        ("com-acme-month-report", "* 10 15 1 *"),
        // StartInterval dividing the hour, the day, or neither.
        ("com-acme-lead-alerts", "*/15 * * * *"),
        ("com-acme-month-report-2", "0 */2 * * *"),
        ("com-acme-backup", "every 90m"),
    ];
    for (name, cron) in expected {
        assert_eq!(when(name).0, cron, "{name}");
    }
    assert_eq!(schedules.len(), expected.len(), "{json}");
    // Disabled: paused; the others not.
    assert!(when("com-acme-backup").1);
    assert!(!when("com-acme-crm-sync").1);

    // The crons fire when launchd would have (from Sunday 6 December, noon).
    assert_eq!(
        next_times("0 9 * * 1,3,5", 3),
        [
            "2026-12-07T09:00:00+00:00",
            "2026-12-09T09:00:00+00:00",
            "2026-12-11T09:00:00+00:00"
        ]
    );
    assert_eq!(
        next_times("30 18 * * 0", 2),
        ["2026-12-06T18:30:00+00:00", "2026-12-13T18:30:00+00:00"]
    );
    assert_eq!(next_times("0 8 1 * *", 1), ["2027-01-01T08:00:00+00:00"]);
    assert_eq!(
        next_times("* 10 15 1 *", 2),
        ["2027-01-15T10:00:00+00:00", "2027-01-15T10:01:00+00:00"]
    );
    assert_eq!(
        next_times("*/15 * * * *", 2),
        ["2026-12-06T12:15:00+00:00", "2026-12-06T12:30:00+00:00"]
    );

    // The program, arguments, environment and working directory of the
    // (binary) plist, run through `run-command`; the host's own variables
    // stay out.
    let output = setup
        .command(&["trigger", "com-acme-morning-briefing", "--json"])
        .env("MISSION_TEST_HOST_SECRET", "host-only")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let summary = record["summary"].as_str().unwrap();
    assert!(summary.contains("briefing for sales & ops in /tmp"), "{summary}");
    assert!(
        summary.contains("path /usr/bin:/bin:/usr/sbin:/sbin"),
        "{summary}"
    );
    assert!(summary.contains("no host secret"), "{summary}");

    // Importing again changes nothing.
    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    let (ok, stdout, stderr) = import(&setup, agents.path(), &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("imported 0 of 11 jobs"), "{stdout}");
    assert_eq!(
        stdout.matches("already imported: plugins.com-acme-").count(),
        8,
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(setup.config_path()).unwrap(), config);
}

#[test]
fn a_dry_run_prints_the_files_and_writes_nothing() {
    let setup = Setup::new();
    setup.config(vec![]);
    let before = std::fs::read_to_string(setup.config_path()).unwrap();
    let agents = launch_agents();
    let file: PathBuf = agents.path().join("com.acme.lead-alerts.plist");
    let (ok, stdout, stderr) = import(&setup, &file, &["--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("[plugins.com-acme-lead-alerts]"), "{stdout}");
    // `Program` is what runs; ProgramArguments[0] is only its name for itself.
    assert!(
        stdout.contains(r#"config = { program = "/usr/local/bin/lead-alerts", args = '["--quiet"]' }"#),
        "{stdout}"
    );
    assert!(stdout.contains("cron = \"*/15 * * * *\"\n"), "{stdout}");
    assert!(stdout.contains("catch_up = \"once\""), "{stdout}");
    assert!(stdout.contains("not carried over: Nice"), "{stdout}");
    assert!(stdout.contains("would import 1 of 1 jobs"), "{stdout}");
    assert_eq!(std::fs::read_to_string(setup.config_path()).unwrap(), before);
    assert!(!setup.dir.path().join("schedules").exists());
}

#[test]
fn a_file_that_is_not_a_launch_agent_is_named_with_why() {
    let setup = Setup::new();
    setup.config(vec![]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("garbage.plist"), "not a plist at all").unwrap();
    std::fs::write(
        dir.path().join("nolabel.plist"),
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Program</key><string>/bin/true</string></dict></plist>"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("badhour.plist"),
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Label</key><string>x.bad</string><key>Program</key><string>/bin/true</string><key>StartCalendarInterval</key><dict><key>Hour</key><integer>25</integer></dict></dict></plist>"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = import(&setup, dir.path(), &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("imported 0 of 3 jobs"), "{stdout}");
    assert!(
        stdout.contains("garbage.plist): not a readable plist"),
        "{stdout}"
    );
    assert!(stdout.contains("nolabel.plist): Label: missing"), "{stdout}");
    assert!(
        stdout.contains("x.bad")
            && stdout.contains("StartCalendarInterval.Hour: must be a number from 0 to 23"),
        "{stdout}"
    );
}

/// An executable shell script at `path`.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Waits (up to 30 s) until `path` holds `part`.
fn wait_for_text(what: &str, path: &Path, part: &str) {
    wait_for(what, Duration::from_secs(30), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(part) {
            Ok(())
        } else {
            Err(text)
        }
    });
}

#[test]
fn imported_watch_paths_and_queue_directories_jobs_run_when_their_files_change() {
    let setup = Setup::new();
    setup.config(vec![]);
    let root = setup.dir.path().canonicalize().unwrap();
    for dir in ["Scans", "Outbox", "sent", "bin"] {
        std::fs::create_dir(root.join(dir)).unwrap();
    }
    // The realistic plists, pointed at this test's directories.
    let agents = tempfile::tempdir().unwrap();
    for label in ["com.acme.inbox-watcher", "com.acme.outbox"] {
        let text = std::fs::read_to_string(repo_root().join(format!("tests/fixtures/launchd/{label}.plist")))
            .unwrap();
        let text = text.replace("/Users/anna", root.to_str().unwrap());
        std::fs::write(agents.path().join(format!("{label}.plist")), text).unwrap();
    }
    // file-scans records what it is told; send-outbox sends one file a run.
    script(
        &root.join("bin/file-scans"),
        &format!("cat >> {}/told.txt", root.display()),
    );
    script(
        &root.join("bin/send-outbox"),
        &format!(
            "IFS=\"$(printf '\\t')\" read -r kind path; mv \"$path\" {}/sent/",
            root.display()
        ),
    );
    let (ok, stdout, stderr) = import(&setup, agents.path(), &[]);
    assert!(
        ok && stdout.starts_with("imported 2 of 2 jobs"),
        "{stdout}{stderr}"
    );

    let mut host = crate::support::RunningHost::start(&setup);
    // Both watches have taken stock.
    host.wait_for_log("watch=\"com-acme-inbox-watcher\"");
    host.wait_for_log("watch=\"com-acme-outbox\"");
    std::fs::write(root.join("Scans/receipt.pdf"), "scanned").unwrap();
    for i in 0..3 {
        std::fs::write(root.join(format!("Outbox/mail-{i}.eml")), "to send").unwrap();
    }
    let told = root.join("told.txt");
    wait_for_text("file-scans to be told of the scan", &told, "receipt.pdf");
    assert_eq!(
        std::fs::read_to_string(&told).unwrap(),
        format!("created\t{}/Scans/receipt.pdf\n", root.display())
    );
    // A name holding a line break and a tab is still one line, escaped: it
    // cannot tell the program of a removal that did not happen.
    std::fs::write(root.join("Scans/scan2.pdf\nremoved\tIMPORTANT.db"), "scanned").unwrap();
    wait_for_text("file-scans to be told of the second scan", &told, "IMPORTANT.db");
    assert_eq!(
        std::fs::read_to_string(&told).unwrap(),
        format!(
            "created\t{0}/Scans/receipt.pdf\ncreated\t{0}/Scans/scan2.pdf\\nremoved\\tIMPORTANT.db\n",
            root.display()
        )
    );
    wait_for(
        "the outbox to empty, one file a run",
        Duration::from_secs(30),
        || {
            let sent = std::fs::read_dir(root.join("sent")).unwrap().count();
            if sent == 3 {
                Ok(())
            } else {
                Err(format!("{sent} sent"))
            }
        },
    );
    assert_eq!(std::fs::read_dir(root.join("Outbox")).unwrap().count(), 0);
    drop(host);
}
