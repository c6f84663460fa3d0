//! Watches on real directories with a real `mission up`: a burst of
//! changes is one run told what changed (through `event::watch`), changes
//! made while the host was down start one run at start, and a queue
//! directory runs until empty, stopping at its bound.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{guest, wait_for, PluginSpec, RunningHost, Setup};

/// The `files` fixture granted `exports/` to read and `inbox/` to write,
/// doing `ops`, and the watch `watch` (TOML lines) on them.
fn setup(ops: &str, watch: &str) -> Setup {
    let setup = Setup::new();
    for dir in ["exports", "inbox"] {
        std::fs::create_dir_all(setup.dir.path().join(dir)).unwrap();
    }
    setup.config_with(
        &format!("[web]\nlisten = \"127.0.0.1:0\"\n[watches.w]\nplugin = \"files\"\n{watch}\n"),
        vec![PluginSpec::task("files", guest("files")).with(&format!(
            "grants = [\"files\"]\nconfig = {{ ops = {ops:?} }}\n\
             [plugins.files.files]\nread = [\"exports\"]\nwrite = [\"inbox\"]"
        ))],
    );
    setup
}

/// The watch's runs so far, oldest first.
fn runs(setup: &Setup) -> Vec<Value> {
    let output = setup.mission(&["runs", "--json", "--limit", "100"]);
    let mut runs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    runs.retain(|r| r["trigger"] == "watch");
    runs.reverse();
    runs
}

/// Waits (up to 30 s) until there are `count` watch runs, all finished.
fn wait_runs(setup: &Setup, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} finished runs"), Duration::from_secs(30), || {
        let all = runs(setup);
        match all.len() >= count && all.iter().all(|r| r["outcome"] != "running") {
            true => Ok(all),
            false => Err(all),
        }
    })
}

/// What the run was told: `(kind, directory/path)`, sorted.
fn told(run: &Value) -> Vec<(String, String)> {
    let summary: Vec<Value> = serde_json::from_str(run["summary"].as_str().unwrap()).unwrap();
    let mut changes: Vec<(String, String)> = summary[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                format!(
                    "{}/{}",
                    c["directory"].as_str().unwrap(),
                    c["path"].as_str().unwrap()
                ),
            )
        })
        .collect();
    changes.sort();
    changes
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_burst_of_changes_is_one_run_told_what_changed() {
    let setup = setup(
        "",
        "paths = [\"exports\"]\npattern = \"*.csv\"\ndebounce = \"400ms\"",
    );
    let exports = setup.dir.path().join("exports");
    write(&exports, "old.csv", "there before");
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]); // it has taken stock
    for name in ["a.csv", "b.csv", "notes.txt"] {
        write(&exports, name, "new");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::create_dir(exports.join("2026")).unwrap();
    write(&exports.join("2026"), "c.csv", "nested");
    let first = wait_runs(&setup, 1);
    assert_eq!(
        told(&first[0]),
        [
            ("created".to_owned(), "/read/exports/2026/c.csv".to_owned()),
            ("created".to_owned(), "/read/exports/a.csv".to_owned()),
            ("created".to_owned(), "/read/exports/b.csv".to_owned()),
        ],
        "one run for the burst, the .txt and the file there before left out"
    );
    write(&exports, "a.csv", "changed, and longer");
    std::fs::remove_file(exports.join("old.csv")).unwrap();
    let second = wait_runs(&setup, 2);
    assert_eq!(
        told(&second[1]),
        [
            ("modified".to_owned(), "/read/exports/a.csv".to_owned()),
            ("removed".to_owned(), "/read/exports/old.csv".to_owned()),
        ]
    );
    // Kept: a quiet wake (no change) leaves no trace to wait for; 1 s > its debounce.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs(&setup).len(), 2, "no run without a change");
    let listed: Vec<Value> = serde_json::from_slice(&setup.mission(&["watches", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["name"], "w");
    assert_eq!(listed[0]["record"]["runs"], 2);
    assert_eq!(
        listed[0]["record"]["files"], 3,
        "a, b and 2026/c: what it saw after its last run"
    );
    assert_eq!(listed[0]["record"]["last_outcome"], "succeeded");
    let page = crate::http_client::get(host.status_page(), "/");
    assert!(
        page.contains("Watches") && page.contains("*.csv in ") && page.contains("2 run(s), latest succeeded"),
        "{page}"
    );
    drop(host);
}

#[test]
fn changes_made_while_the_host_was_down_start_one_run_at_start() {
    let setup = setup("", "paths = [\"exports\"]\ndebounce = \"200ms\"");
    let exports = setup.dir.path().join("exports");
    write(&exports, "kept.csv", "seen at the first start");
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    host.signal("-TERM");
    assert!(host.wait().0);
    assert!(runs(&setup).is_empty(), "a first start takes stock without a run");

    write(&exports, "while-down.csv", "new");
    std::fs::remove_file(exports.join("kept.csv")).unwrap();
    let host = RunningHost::start(&setup);
    let all = wait_runs(&setup, 1);
    assert_eq!(
        told(&all[0]),
        [
            ("created".to_owned(), "/read/exports/while-down.csv".to_owned()),
            ("removed".to_owned(), "/read/exports/kept.csv".to_owned()),
        ]
    );
    host.signal("-TERM");
    assert!(host.wait().0);
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    // A change after the start runs after any run the start would make: it
    // is the second run, so the start made none.
    write(&exports, "after.csv", "new");
    let all = wait_runs(&setup, 2);
    assert_eq!(
        told(&all[1]),
        [("created".to_owned(), "/read/exports/after.csv".to_owned())],
        "nothing changed since: no run at start"
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    drop(host);
}

#[test]
fn a_queue_directory_runs_until_empty_and_stops_at_its_bound() {
    let setup = setup(
        "pop /write/inbox",
        "paths = [\"inbox\"]\ndebounce = \"200ms\"\nuntil_empty = true\nmax_runs = 3",
    );
    let inbox = setup.dir.path().join("inbox");
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    for i in 0..2 {
        write(&inbox, &format!("job-{i}"), "work");
    }
    let all = wait_runs(&setup, 2);
    // Kept: the wakes its own runs caused end quietly, leaving no trace to wait for.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs(&setup).len(), 2, "{all:#?}");
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        0,
        "emptied, one file a run"
    );
    // Five files, three runs in a row at most: two stay, and it says so.
    for i in 0..5 {
        write(&inbox, &format!("batch-{i}"), "work");
    }
    host.wait_for_log("the queue is not empty after max_runs runs in a row");
    wait_runs(&setup, 5);
    // Kept: the wakes its own runs caused end quietly, leaving no trace to wait for.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(runs(&setup).len(), 5);
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 2);
    drop(host);
}

#[test]
fn a_changed_watch_applies_without_a_restart() {
    let setup = setup("", "paths = [\"exports\"]\ndebounce = \"200ms\"");
    write(
        &setup.dir.path().join("exports"),
        "there.csv",
        "seen at the start",
    );
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    let text = std::fs::read_to_string(setup.config_path()).unwrap();
    std::fs::write(
        setup.config_path(),
        text.replace("paths = [\"exports\"]", "paths = [\"inbox\"]"),
    )
    .unwrap();
    host.wait_for_log("the watches start again");
    host.wait_for_log_line(&["watching", "watch=\"w\"", "inbox"]);
    write(
        &setup.dir.path().join("exports"),
        "ignored.csv",
        "no longer watched",
    );
    write(&setup.dir.path().join("inbox"), "seen.csv", "watched now");
    let all = wait_runs(&setup, 1);
    // Only the new directory's file: the old one's are forgotten, not removed.
    assert_eq!(
        told(&all[0]),
        [("created".to_owned(), "/write/inbox/seen.csv".to_owned())]
    );
    drop(host);
}

#[test]
fn names_that_are_not_utf8_are_left_out_of_a_watch_and_the_log_says_so() {
    use std::os::unix::ffi::OsStrExt;
    let setup = setup(
        "",
        "paths = [\"exports\"]\npattern = \"*.csv\"\ndebounce = \"200ms\"",
    );
    let exports = setup.dir.path().join("exports");
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    let latin1 = |name: &[u8]| exports.join(std::ffi::OsStr::from_bytes(name));
    std::fs::create_dir(latin1(b"ann\xe9e")).unwrap();
    write(
        &latin1(b"ann\xe9e"),
        "inside.csv",
        "in a directory the plugin cannot name",
    );
    std::fs::write(latin1(b"r\xe9sum\xe9.csv"), "latin-1").unwrap();
    std::fs::write(latin1(b"notes-\xe9.txt"), "not a *.csv").unwrap();
    write(&exports, "good.csv", "new");
    let all = wait_runs(&setup, 1);
    // Before, the file in the directory was told by a name with U+FFFD in
    // it, which the plugin could not open.
    assert_eq!(
        told(&all[0]),
        [("created".to_owned(), "/read/exports/good.csv".to_owned())]
    );
    // The directory and the .csv; the .txt would not match anyway.
    host.wait_for_logged(&["files left out of the watch", "watch=\"w\"", "left_out=2"]);
    drop(host);
}

#[test]
fn a_watch_whose_directory_is_deleted_and_made_again_says_so_and_watches_again() {
    const ANNA: i64 = 100;
    let fake = crate::fake_telegram::FakeTelegram::start();
    let setup = Setup::new();
    let exports = setup.dir.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    setup.config_with(
        &crate::bot_host::BotHost::on(&fake)
            .users(&[ANNA as u64])
            .poll_timeout("1s")
            .tables(&format!(
                "[web]\nlisten = \"127.0.0.1:0\"\n[alerts]\nchat = {ANNA}\n\
                 [watches.w]\nplugin = \"files\"\npaths = [\"exports\"]\ndebounce = \"200ms\""
            ))
            .toml(),
        vec![
            PluginSpec::chat("chat", guest("chat_fixture")),
            PluginSpec::task("files", guest("files"))
                .with("grants = [\"files\"]\n[plugins.files.files]\nread = [\"exports\"]"),
        ],
    );
    let mut host = RunningHost::spawn(crate::bot_host::up_command(&setup));
    host.wait_for_logged(&["watching", "watch=\"w\""]);
    write(&exports, "a.csv", "first");
    wait_runs(&setup, 1);

    // Gone: the watch says so in the log, `mission watches`, the page and
    // an alert, rather than showing its last run as if all were well.
    std::fs::remove_dir_all(&exports).unwrap();
    host.wait_for_log_line(&["the watch is not watching", "watch=\"w\"", "exports is gone"]);
    let listed: Vec<Value> = serde_json::from_slice(&setup.mission(&["watches", "--json"]).stdout).unwrap();
    let broken = listed[0]["record"]["broken"].as_str().unwrap();
    assert!(broken.ends_with("exports is gone"), "{broken}");
    let text = String::from_utf8(setup.mission(&["watches"]).stdout).unwrap();
    assert!(text.contains("BROKEN, not watching since"), "{text}");
    let page = crate::http_client::get(host.status_page(), "/");
    assert!(page.contains("not watching since"), "{page}");
    let alerts = fake.wait_for_texts(ANNA, 1);
    assert!(alerts[0].contains("Watch w stopped watching"), "{alerts:?}");

    // Back: watched again, and what it holds now is one run.
    std::fs::create_dir(&exports).unwrap();
    write(&exports, "b.csv", "after");
    let all = wait_runs(&setup, 2);
    assert_eq!(
        told(&all[1]),
        [
            ("created".to_owned(), "/read/exports/b.csv".to_owned()),
            ("removed".to_owned(), "/read/exports/a.csv".to_owned()),
        ]
    );
    host.wait_for_logged(&["the watch is watching again", "watch=\"w\""]);
    let alerts = fake.wait_for_texts(ANNA, 2);
    assert!(alerts[1].contains("Watch w is watching again"), "{alerts:?}");
    let listed: Vec<Value> = serde_json::from_slice(&setup.mission(&["watches", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["record"]["broken"], Value::Null);
    // Later files start runs, as they never did before.
    write(&exports, "c.csv", "later");
    let all = wait_runs(&setup, 3);
    assert_eq!(
        told(&all[2]),
        [("created".to_owned(), "/read/exports/c.csv".to_owned())]
    );

    // Deleted and made again at once (the inode may even be the same): no
    // alert, and the new directory is watched.
    std::fs::remove_dir_all(&exports).unwrap();
    std::fs::create_dir(&exports).unwrap();
    write(&exports, "d.csv", "replaced");
    let all = wait_runs(&setup, 4);
    assert!(
        told(&all[3]).contains(&("created".to_owned(), "/read/exports/d.csv".to_owned())),
        "{:?}",
        told(&all[3])
    );
    write(&exports, "e.csv", "still watched");
    let all = wait_runs(&setup, 5);
    assert_eq!(
        told(&all[4]),
        [("created".to_owned(), "/read/exports/e.csv".to_owned())]
    );
    assert_eq!(fake.texts(ANNA).len(), 2, "{:?}", fake.texts(ANNA));
    drop(host);
}
