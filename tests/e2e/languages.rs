//! Plugins in Python and JavaScript through the real host: the shipped
//! examples (a Python chat plugin with history and Claude, a JavaScript task
//! plugin with state), a capability denied when not granted, and the
//! sandbox as a Python guest sees it. Each component is 12-18 MB: the first
//! compile in a test takes a while, later ones hit the compile cache.

use crate::support::{fake_claude, js_guest, python_guest, text, PluginSpec, Setup};

#[test]
fn a_javascript_task_keeps_state_and_its_runs_are_recorded() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("tally", js_guest("tally"))
        .with("grants = [\"state\"]\nconfig = { greeting = \"Morning\" }")]);
    let (ok, first) = setup.run_json("tally");
    assert!(ok, "{first}");
    assert_eq!(first["summary"], "Morning from JavaScript: run #1, first run");
    let (ok, second) = setup.run_json("tally");
    assert!(ok, "{second}");
    let summary = second["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("Morning from JavaScript: run #2, previous at "),
        "{summary}"
    );
    let output = setup.mission(&["runs", "--json"]);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&text(&output).0).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r["plugin"] == "tally" && r["outcome"] == "succeeded"));
}

#[test]
fn a_javascript_task_without_the_state_grant_is_denied() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("tally", js_guest("tally"))]);
    let (ok, record) = setup.run_json("tally");
    assert!(!ok);
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("denied") && error.contains("state"), "{error}");
}

#[test]
fn the_python_assistant_answers_with_the_chats_history() {
    let setup = Setup::new();
    setup.config_with(
        &format!(
            "[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\nenv = [\"HOME\"]\n",
            fake_claude()
        ),
        vec![PluginSpec::chat("assistant", python_guest("assistant"))
            .with("grants = [\"claude\", \"history\"]\nconfig = { system = \"Be brief.\" }")],
    );
    let chat = |text: &str| {
        let output = setup.mission(&["chat", "assistant", text, "--chat-id", "42", "--json"]);
        let (stdout, stderr) = crate::support::text(&output);
        assert!(output.status.success(), "{stdout}{stderr}");
        let reply: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        reply["reply"].as_str().unwrap().to_owned()
    };
    let first = chat("Which invoices are open?");
    assert_eq!(
        first,
        "fake claude heard \"Which invoices are open?\"; earlier: []"
    );
    let second = chat("And the oldest?");
    assert!(
        second
            .starts_with("fake claude heard \"User: Which invoices are open?\\nAssistant: fake claude heard"),
        "the first exchange is in the second prompt: {second}"
    );
    assert!(second.contains("User: And the oldest?"), "{second}");
    // Another chat starts with no history.
    let output = setup.mission(&["chat", "assistant", "Hello", "--chat-id", "7", "--json"]);
    let reply: serde_json::Value = serde_json::from_str(&text(&output).0).unwrap();
    assert_eq!(reply["reply"], "fake claude heard \"Hello\"; earlier: []");
}

#[test]
fn the_python_assistant_without_the_claude_grant_tells_the_user() {
    let setup = Setup::with_plugins(vec![
        PluginSpec::chat("assistant", python_guest("assistant")).with("grants = [\"history\"]")
    ]);
    let output = setup.mission(&["chat", "assistant", "hi", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let reply: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let text = reply["reply"].as_str().unwrap();
    assert!(text.starts_with("I'm not allowed to ask Claude: "), "{text}");
}

#[test]
fn a_python_guest_reaches_no_files_no_environment_and_no_sockets() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("probe", python_guest("probe"))]);
    let output = setup
        .command(&["run", "probe", "--json"])
        .env("MISSION_TEST_HOST_SECRET", "must-not-leak")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let summary = record["summary"].as_str().unwrap();
    let line = |key: &str| {
        summary
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {summary}"))
            .to_owned()
    };
    for key in ["root", "passwd", "cwd", "socket"] {
        assert!(line(key).starts_with("refused "), "{key}: {}", line(key));
    }
    assert_eq!(line("env"), "[]");
    assert_eq!(line("argv"), "[]");
    assert!(!summary.contains("must-not-leak"));
}

#[test]
fn a_javascript_task_reaches_a_granted_origin_over_http_and_no_other() {
    let url = crate::loopback::serve(|_request| async {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_owned()
    });
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("tally", js_guest("tally")).with(&format!(
            "grants = [\"state\", \"http\"]\nconfig = {{ url = \"{url}/feed\" }}\n[plugins.tally.http]\nallowed = [\"{url}\"]"
        )),
        PluginSpec::task("stranger", js_guest("tally")).with(&format!(
            "grants = [\"state\", \"http\"]\nconfig = {{ url = \"{url}/feed\" }}\n[plugins.stranger.http]\nallowed = [\"https://example.com\"]"
        )),
    ]);
    let (ok, record) = setup.run_json("tally");
    assert!(ok, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.ends_with(&format!("; GET {url}/feed: 200, 5 bytes")),
        "{summary}"
    );
    let (ok, record) = setup.run_json("stranger");
    assert!(!ok);
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("GET {url}/feed: HTTP-request-denied")),
        "{error}"
    );
}

#[test]
fn a_javascript_tools_plugin_offers_its_tools_and_answers_claude_s_call() {
    let setup = Setup::new();
    setup.config_with(
        &format!(
            "[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\nenv = [\"HOME\"]\n",
            fake_claude()
        ),
        vec![
            PluginSpec::tools("dates", js_guest("dates")),
            PluginSpec::task("planner", crate::support::guest("ask"))
                .with("grants = [\"claude\"]")
                .with(r#"config = { prompt = "plan #tool:dates.days_between {\"from\": \"2026-12-07\", \"to\": \"2026-12-21\"}" }"#)
                .with("[plugins.planner.claude]\nbackends = [\"cli\"]\ntools_from = [\"dates\"]"),
        ],
    );
    let output = setup.mission(&["tools", "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let listing: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let tools = &listing["plugins"][0]["tools"];
    assert_eq!(tools[0]["name"], "weekday");
    assert_eq!(
        tools[1]["input_schema"]["required"],
        serde_json::json!(["from", "to"])
    );
    let (ok, record) = setup.run_json("planner");
    assert!(ok, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            r#"text=fake claude ran mcp__dates__days_between and got: {"days":14,"working_days":10}"#
        ),
        "{summary}"
    );
}
