//! What a plugin hands back or writes, past any sense: a 30 MB summary or
//! error, a state filler, a log flood. Each is cut or refused at its limit,
//! and the page stays small.

use super::{hostile, on_demand, Siege};
use crate::support::text;

/// What the host keeps of a summary or an error: 64 KiB and a note.
const KEPT: usize = 64 << 10;

#[test]
fn a_huge_summary_or_error_is_cut_everywhere_it_goes() {
    let siege = Siege::start(
        vec![hostile("memory = \"128MiB\"\ntimeout = \"20s\"")],
        &[
            ("summary", &on_demand("hostile", "attack = \"summary\"")),
            ("error", &on_demand("hostile", "attack = \"error\"")),
        ],
    );
    let summary = siege.trigger("summary");
    assert_eq!(summary["outcome"], "succeeded", "{}", &summary.to_string()[..500]);
    let text = summary["summary"].as_str().unwrap();
    assert!(text.len() < KEPT + 100, "{} bytes kept", text.len());
    assert!(
        text.ends_with(&format!(" [cut: {} bytes in all]", 30 << 20)),
        "{}",
        &text[text.len() - 80..]
    );

    let mut failed = Vec::new();
    for _ in 0..3 {
        let error = siege.trigger("error");
        assert_eq!(error["outcome"], "failed");
        let text = error["error"].as_str().unwrap();
        assert!(text.len() < KEPT + 200, "{} bytes kept", text.len());
        failed.push(error["id"].as_i64().unwrap());
    }
    // The page and its JSON show each error in brief, pointing to the rest.
    for path in ["/", "/api/status"] {
        let (status, _, body) = siege.get(path, &siege.page.to_string());
        assert_eq!(status, 200);
        assert!(body.len() < 200 << 10, "{path} is {} bytes", body.len());
        assert!(
            body.contains(&format!("mission runs --id {}", failed[2])),
            "{path}"
        );
    }
    let whole = siege.setup.mission(&["runs", "--id", &failed[0].to_string()]);
    let shown = String::from_utf8_lossy(&whole.stdout);
    assert!(
        shown.contains(&"e".repeat(KEPT - 100)),
        "mission runs --id shows the whole kept error"
    );
    siege.assert_serving();
    let log = siege.stop();
    // No line of the log holds the 30 MB either.
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < KEPT + 1000, "a log line of {longest} bytes");
}

#[test]
fn a_state_filler_stops_at_its_quota_with_a_typed_error() {
    let siege = Siege::start(
        vec![hostile("grants = [\"state\"]\ntimeout = \"20s\"")],
        &[("fill", &on_demand("hostile", "attack = \"state\""))],
    );
    let run = siege.trigger("fill");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    // 16 MiB by default: 15 values of 1 MiB and their keys fit, not 16.
    let summary = run["summary"].as_str().unwrap();
    assert!(summary.starts_with("stored 15 then over-budget: "), "{summary}");
    assert!(
        summary.contains("may keep 10000 keys in 16MiB (state_keys, state_bytes)"),
        "{summary}"
    );
    let db = siege.setup.mission(&["db"]);
    let shown = String::from_utf8_lossy(&db.stdout);
    let line = shown
        .lines()
        .find(|l| l.starts_with("hostile "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains("15 of 10000") && line.contains("15.0 MiB of 16.0 MiB"),
        "{line}"
    );
    siege.assert_serving();
    siege.stop();
}

#[test]
fn a_log_flood_is_cut_at_the_calls_output_limit() {
    let siege = Siege::start(
        vec![hostile("timeout = \"20s\"")],
        &[("flood", &on_demand("hostile", "attack = \"log\""))],
    );
    let before = siege.host.seen.len();
    let run = siege.trigger("flood");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["summary"], "logged 20000 lines");
    siege.assert_serving();
    let log = siege.stop();
    // 20,000 lines of 8 KiB asked for (165 MB); the call's 64 KiB passed.
    let flood: usize = log[before..]
        .lines()
        .filter(|l| l.contains("llllllll"))
        .map(str::len)
        .sum();
    assert!(
        flood > 40 << 10 && flood < 100 << 10,
        "{flood} bytes of the flood logged"
    );
    assert!(log.contains("output limit reached: the rest of this call's stdout, stderr and log is dropped"));
}

#[test]
fn denied_calls_in_a_loop_are_logged_within_the_plugin_s_log_rate_and_summed_up() {
    let siege = Siege::start(
        vec![hostile("timeout = \"20s\"")],
        &[(
            "deny",
            &on_demand("hostile", "attack = \"denied\", seconds = \"3\""),
        )],
    );
    let before = siege.host.seen.len();
    let run = siege.trigger("deny");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    let calls: u64 = run["summary"]
        .as_str()
        .and_then(|s| s.strip_suffix(" denied calls"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{run}"));
    siege.assert_serving();
    let log = siege.stop();
    let log = &log[before..];
    let denied: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("capability call denied"))
        .collect();
    let bytes: usize = denied.iter().map(|l| l.len()).sum();
    // Each denied call once caused a line: now the plugin's rate holds
    // them (256 KiB at once), and one line sums up the rest.
    assert!(calls > 10_000, "only {calls} calls: the loop did not run");
    assert!(
        bytes < 400 << 10,
        "{bytes} bytes of denials logged for {calls} calls"
    );
    let summary = log
        .lines()
        .find(|l| l.contains("more denied capability calls"))
        .unwrap_or_else(|| panic!("no summary line in:\n{}", &log[log.len().saturating_sub(2000)..]));
    let more: u64 = summary
        .split("… and ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(more + denied.len() as u64, calls, "{summary}");
}

#[test]
fn a_plugin_s_text_cannot_forge_a_log_line_or_reach_the_terminal_as_escapes() {
    let siege = Siege::start(
        vec![hostile("timeout = \"20s\"")],
        &[("forge", &on_demand("hostile", "attack = \"forge\""))],
    );
    let before = siege.host.seen.len();
    let run = siege.trigger("forge");
    assert_eq!(run["outcome"], "failed", "{run}");
    // `mission runs --failed` prints the error's first line for a terminal.
    let output = siege.setup.mission(&["runs", "--failed"]);
    let (stdout, _) = text(&output);
    assert!(stdout.contains("failed \\u{1b}]0;owned\\u{7}"), "{stdout:?}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    let output = siege.setup.mission(&["rerun", run["id"].to_string().as_str()]);
    let (stdout, stderr) = text(&output);
    assert!(
        stdout.contains("error: the plugin returned an error: failed \\u{1b}]0;owned\\u{7}\\u{1b}]52;c;ZXZpbA==\\u{7}\n2026-12-07T02:00:00.000000Z ERROR mission::host: the database is corrupt"),
        "{stdout:?}\n{stderr}"
    );
    let log = siege.stop();
    let log = &log[before..];
    // Every line of the host's log is a line the host began: the forged
    // one is inside another, escaped.
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-07T02:00:00.000000Z")),
        "{log}"
    );
    assert!(
        log.contains("innocent\\n2026-12-07T02:00:00.000000Z ERROR mission::host: the database is corrupt"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "{log:?}");
}
