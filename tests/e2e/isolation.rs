//! A plugin sees only what it was granted: no environment, arguments,
//! files, network or other plugins' data.

use std::net::TcpListener;

use crate::support::{guest, PluginSpec, Setup};

/// The `name=result` lines of the snoop fixture's report.
fn report_line<'a>(summary: &'a str, name: &str) -> &'a str {
    summary
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}

#[test]
fn a_plugin_sees_no_environment_files_network_or_ungranted_capabilities() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap();
    let setup =
        Setup::with_plugins(vec![PluginSpec::task("snoop", guest("snoop"))
            .with(&format!("config = {{ connect = \"{address}\" }}"))]);
    let output = setup
        .command(&["run", "--json", "snoop"])
        .env("MISSION_TEST_SECRET", "hunter2-secret")
        .output()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(record["outcome"], "succeeded", "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        !summary.contains("hunter2"),
        "the host's secret leaked: {summary}"
    );
    assert_eq!(report_line(summary, "env"), "[]");
    assert_eq!(report_line(summary, "args"), "[]");
    for name in ["read_root", "read_passwd", "read_dot", "tcp"] {
        assert!(report_line(summary, name).starts_with("err"), "{name}: {summary}");
    }
    assert!(report_line(summary, "history").contains("Denied"), "{summary}");
    assert!(
        report_line(summary, "state_other").contains("Denied"),
        "{summary}"
    );
    assert!(listener.accept().is_err(), "the plugin opened a connection");
}

#[test]
fn a_plugin_cannot_read_another_plugins_state() {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
        PluginSpec::task("snoop", guest("snoop")).with("grants = [\"state\", \"history\"]"),
    ]);
    assert!(setup.run_json("briefing").0);
    let (succeeded, record) = setup.run_json("snoop");
    assert!(succeeded, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert_eq!(report_line(summary, "state_other"), "ok None", "{summary}");
    assert_eq!(report_line(summary, "history"), "ok []", "{summary}");
}
