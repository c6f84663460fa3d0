//! The `mission` command line on the example plugins.

use mission::wasm::bindings::PACKAGE_VERSION;

use crate::support::{guest, repo_root, text, PluginSpec, RunningHost, Setup};

fn example_plugins() -> Vec<PluginSpec> {
    vec![
        PluginSpec::task("briefing", guest("briefing"))
            .with("grants = [\"state\"]\nconfig = { greeting = \"Hello\", recipient = \"Anna\" }"),
        PluginSpec::chat("echo", guest("echo_chat")).with("grants = [\"history\"]"),
    ]
}

#[test]
fn run_prints_the_outcome_and_records_every_run() {
    let setup = Setup::with_plugins(example_plugins());
    let first = setup.mission(&["run", "briefing"]);
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("briefing: succeeded"), "{stdout}");
    assert!(
        stdout.contains("Hello, Anna! Briefing #1 from `briefing`."),
        "{stdout}"
    );
    assert!(
        stderr.contains("Hello, Anna!") && stderr.contains("stream=\"stdout\""),
        "plugin stdout not logged: {stderr}"
    );

    let second = setup.mission(&["run", "briefing"]);
    let (stdout, stderr) = text(&second);
    assert!(stdout.contains("Briefing #2"), "state did not persist: {stdout}");
    assert!(
        stderr.contains("cache=Hit"),
        "the second run recompiled: {stderr}"
    );

    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let runs: Vec<(String, String, String, Option<String>)> = db
        .prepare("SELECT plugin, trigger, outcome, summary FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs.len(), 2);
    for (plugin, trigger, outcome, _) in &runs {
        assert_eq!(
            (plugin.as_str(), trigger.as_str(), outcome.as_str()),
            ("briefing", "manual", "succeeded")
        );
    }
    assert!(runs[1].3.as_deref().unwrap().contains("#2"));
}

#[test]
fn run_json_prints_the_record() {
    let setup = Setup::with_plugins(example_plugins());
    let (succeeded, record) = setup.run_json("briefing");
    assert!(succeeded);
    assert_eq!(record["outcome"], "succeeded");
    assert_eq!(record["output"], "Hello, Anna!\n");
    assert_eq!(record["output_truncated"], false);
}

#[test]
fn run_of_an_unknown_or_chat_plugin_is_an_error() {
    let setup = Setup::with_plugins(example_plugins());
    let output = setup.mission(&["run", "nope"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no plugin named `nope`") && stderr.contains("mission.toml"),
        "{stderr}"
    );

    let output = setup.mission(&["run", "echo"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugin `echo` is a chat plugin, not a task"),
        "{stderr}"
    );
}

#[test]
fn chat_answers_with_the_history_of_the_chat() {
    let setup = Setup::with_plugins(example_plugins());
    let first = setup.mission(&["chat", "echo", "hello", "--chat-id", "7", "--sender", "Anna"]);
    assert_eq!(text(&first).0, "Anna said: hello (message 1 in this chat)\n");
    let second = setup.mission(&["chat", "echo", "again", "--chat-id", "7", "--sender", "Anna"]);
    assert_eq!(text(&second).0, "Anna said: again (message 2 in this chat)\n");
    let other_chat = setup.mission(&["chat", "echo", "hi", "--chat-id", "8", "--sender", "Ben"]);
    assert_eq!(text(&other_chat).0, "Ben said: hi (message 1 in this chat)\n");
}

#[test]
fn check_passes_on_the_examples() {
    let setup = Setup::with_plugins(example_plugins());
    let output = setup.mission(&["check"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("plugin `briefing` (task): ok") && stdout.contains("plugin `echo` (chat): ok"),
        "{stdout}"
    );
}

#[test]
fn check_passes_on_the_shipped_config_without_claude_and_names_what_is_unavailable() {
    let setup = Setup::new();
    let shipped = std::fs::read_to_string(repo_root().join("mission.toml")).unwrap();
    let plugins = repo_root().join("plugins/target/");
    let config = shipped.replace("\"plugins/target/", &format!("\"{}", plugins.display()));
    // The files example's directories, beside this config: its run writes there.
    let sample = setup.dir.path().join("plugins/exports-report/sample");
    for dir in ["exports", "reports"] {
        std::fs::create_dir_all(sample.join(dir)).unwrap();
    }
    let export = "plugins/exports-report/sample/exports/leads-2026-12.csv";
    std::fs::copy(repo_root().join(export), setup.dir.path().join(export)).unwrap();
    std::fs::write(setup.config_path(), config).unwrap();
    std::fs::create_dir_all(setup.dir.path().join("schedules")).unwrap();
    for schedule in ["morning-briefing", "heartbeat"] {
        let file = format!("schedules/{schedule}.toml");
        std::fs::copy(repo_root().join(&file), setup.dir.path().join(&file)).unwrap();
    }
    let output = setup
        .command(&["check"])
        .env("PATH", "/usr/bin:/bin")
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("warning: claude.command: `claude` is not an executable file or not on PATH")
            && stdout.contains("unavailable through the CLI to plugins `assistant`, `assistant-py`"),
        "{stdout}"
    );
    assert!(stdout.contains("schedule `morning-briefing`: ok"), "{stdout}");
    // The examples of the files grant, the watch and the webhook.
    assert!(
        stdout.contains("as /read/exports") && stdout.contains("as /write/reports"),
        "{stdout}"
    );
    assert!(stdout.contains("watches.new-exports: ok"), "{stdout}");
    assert!(
        stdout.contains("webhooks.leads: ok, POST http://127.0.0.1:8641/hooks/leads runs `lead-alert`"),
        "{stdout}"
    );
    let (ok, record) = setup.run_json("exports-report");
    assert!(ok, "{record}");
    assert!(
        record["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 rows in 1 files"),
        "{record}"
    );
    let report = std::fs::read_to_string(sample.join("reports/summary.txt")).unwrap();
    assert!(
        report.contains("leads-2026-12.csv: 2 rows, amount 200.50"),
        "{report}"
    );
    // All three languages load.
    for plugin in ["assistant", "assistant-py", "tally-js"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("plugin `{plugin}` (")))
            .unwrap();
        assert!(line.contains("): ok, "), "{line}");
    }
}

#[test]
fn check_fails_on_a_real_mistake_in_the_claude_section() {
    let setup = Setup::with_plugins(vec![PluginSpec::chat("assistant", guest("assistant"))
        .with("grants = [\"claude\"]\n[plugins.assistant.claude]\nbackends = [\"api\"]\nmodels = [\"claude-unpriced\"]")]);
    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    std::fs::write(
        setup.config_path(),
        format!("{config}\n[claude]\nbackend = \"api\"\n"),
    )
    .unwrap();
    let output = setup
        .command(&["check"])
        .env("ANTHROPIC_API_KEY", "k")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("claude.prices: model `claude-unpriced` has no price"),
        "{stdout}"
    );
}

#[test]
fn check_names_the_file_and_field_of_a_config_error() {
    let setup = Setup::new();
    std::fs::write(
        setup.config_path(),
        "data_dir = \"data\"\n[plugins.a]\nworld = \"task\"\nwasm = \"a.wasm\"\ntimout = \"5s\"\n",
    )
    .unwrap();
    let output = setup.mission(&["check"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&setup.config_path().display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("unknown field `timout`"), "{stderr}");
}

#[test]
fn check_refuses_broken_plugins_by_name_and_file_and_passes_the_rest() {
    let setup = Setup::new();
    let corrupt = setup.file("corrupt.wasm", b"\0asm this is not a component");
    let truncated = {
        let bytes = std::fs::read(guest("briefing")).unwrap();
        setup.file("truncated.wasm", &bytes[..bytes.len() / 2])
    };
    setup.config(vec![
        PluginSpec::task("good", guest("briefing")),
        PluginSpec::task("wrong-world", guest("echo_chat")),
        PluginSpec::chat("also-wrong", guest("briefing")),
        PluginSpec::task("corrupt", corrupt.clone()),
        PluginSpec::task("truncated", truncated.clone()),
        PluginSpec::task("missing", setup.dir.path().join("missing.wasm")),
    ]);
    let output = setup.mission(&["check"]);
    let (stdout, _) = text(&output);
    assert!(!output.status.success());
    assert!(stdout.contains("plugin `good` (task): ok"), "{stdout}");
    let line = |plugin: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("plugin `{plugin}`")))
            .unwrap_or_else(|| panic!("no line for {plugin}: {stdout}"))
            .to_owned()
    };
    let wrong = line("wrong-world");
    assert!(wrong.contains("echo_chat.wasm is not a task plugin"), "{wrong}");
    assert!(
        wrong.contains("does not export the function `run`") && wrong.contains("`handle`"),
        "{wrong}"
    );
    let also_wrong = line("also-wrong");
    assert!(
        also_wrong.contains("is not a chat plugin") && also_wrong.contains("`handle`"),
        "{also_wrong}"
    );
    for plugin in ["corrupt", "truncated"] {
        let line = line(plugin);
        assert!(
            line.contains(&format!("{plugin}.wasm is not a valid WebAssembly component")),
            "{line}"
        );
    }
    assert!(line("missing").contains("cannot read") && line("missing").contains("missing.wasm"));
}

#[test]
fn up_serves_until_sigterm_and_exits_cleanly() {
    let setup = Setup::with_plugins(example_plugins());
    let host = RunningHost::start(&setup);
    assert!(
        host.seen.contains("plugin=briefing") && host.seen.contains("plugin=echo"),
        "{}",
        host.seen
    );
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    assert!(log.contains("shut down"), "{log}");
}

#[test]
fn a_hand_written_component_runs_like_any_other() {
    let setup = Setup::new();
    let wasm = setup.file("ok.wasm", &crate::wat::wat_task(&crate::wat::returns("ok")));
    setup.config(vec![PluginSpec::task("minimal", wasm)]);
    let (succeeded, record) = setup.run_json("minimal");
    assert!(succeeded, "{record}");
    assert_eq!(record["summary"], "ok");
}

#[test]
fn processes_opening_a_new_database_together_wait_for_each_other() {
    for _ in 0..3 {
        // A fresh data directory each round: the pollers and the host
        // race to create, switch to WAL and migrate the same new file.
        let setup = Setup::with_plugins(example_plugins());
        let polls: Vec<_> = (0..8)
            .map(|_| {
                setup
                    .command(&["plugins", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let host = RunningHost::start(&setup);
        for poll in polls {
            let output = poll.wait_with_output().unwrap();
            let (stdout, stderr) = text(&output);
            assert!(output.status.success(), "{stdout}\n{stderr}");
            assert!(!stderr.contains("database is locked"), "{stderr}");
        }
        host.signal("-TERM");
        let (clean, log) = host.wait();
        assert!(clean, "{log}");
    }
}

#[test]
fn a_printing_command_whose_reader_is_gone_ends_quietly() {
    let setup = Setup::with_plugins(example_plugins());
    for _ in 0..3 {
        assert!(setup.run_json("briefing").0);
    }
    // The reader closes before anything is written, as `| head -1` does
    // once it has its line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = setup
        .command(&["runs"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "{stderr}");
}

#[test]
fn a_schedule_name_from_the_command_line_is_checked_before_it_is_a_path() {
    let setup = Setup::with_plugins(example_plugins());
    for command in [["trigger", "../../x"], ["pause", "../../x"], ["resume", "../x"]] {
        let output = setup.mission(&command);
        let (_, stderr) = text(&output);
        assert!(!output.status.success(), "{command:?}");
        assert!(
            stderr.contains("is not a valid schedule name"),
            "{command:?}: {stderr}"
        );
    }
}

/// A task component from hand-written WAT built against wit/ with its
/// package version set to `version`, logging through that version's `log`.
fn built_against(version: &str) -> Vec<u8> {
    let wit = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("wit")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wit") {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(
                wit.path().join(path.file_name().unwrap()),
                text.replace(
                    &format!("mission:plugin@{PACKAGE_VERSION}"),
                    &format!("mission:plugin@{version}"),
                ),
            )
            .unwrap();
        }
    }
    std::os::unix::fs::symlink(repo_root().join("wit/deps"), wit.path().join("deps")).unwrap();
    crate::wat::wat_task_against(
        wit.path(),
        &format!(r#"(import "mission:plugin/log@{version}" "write" (func (param i32 i32 i32)))"#),
        &crate::wat::returns("built elsewhere"),
        "",
    )
}

#[test]
fn a_plugin_of_a_compatible_wit_version_loads_and_another_is_refused_naming_both() {
    let setup = Setup::new();
    let compatible = setup.file("compatible.wasm", &built_against("0.1.5"));
    let first = setup.file("first.wasm", &built_against("0.1.0"));
    let old = setup.file("old.wasm", &built_against("0.0.9"));
    setup.config(vec![
        PluginSpec::task("compatible", compatible),
        PluginSpec::task("first", first),
        PluginSpec::task("old", old.clone()),
    ]);
    for plugin in ["compatible", "first"] {
        let (succeeded, record) = setup.run_json(plugin);
        assert!(succeeded, "{plugin}: {record}");
        assert_eq!(record["summary"], "built elsewhere");
    }
    let output = setup.mission(&["check"]);
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        format!("{stdout}{stderr}").contains(&format!(
            "plugin `old`: {} was built against mission:plugin@0.0.9, and this host provides \
             mission:plugin@{PACKAGE_VERSION}: rebuild it against this host's wit/ (`mission build old`)",
            old.display()
        )),
        "{stdout}{stderr}"
    );
}

#[test]
fn the_plugins_table_lines_up_under_its_header_with_a_long_name() {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
        PluginSpec::task("com-acme-morning-briefing", guest("briefing")).with("grants = [\"state\"]"),
    ]);
    let host = RunningHost::start(&setup);
    let output = setup.mission(&["plugins"]);
    drop(host);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let mut lines = stdout.lines();
    let header = lines.next().unwrap();
    let columns: Vec<usize> = ["WORLD", "HASH", "LOADED AT", "LAST RELOAD"]
        .iter()
        .map(|c| header.find(c).unwrap())
        .collect();
    for line in lines {
        for &at in &columns {
            let (before, after) = line.split_at(at);
            assert!(
                before.ends_with(' ') && !after.starts_with(' '),
                "a column out of line at {at}:\n{header}\n{line}"
            );
        }
    }
}

#[test]
fn runs_are_found_by_failure_time_and_text() {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
        PluginSpec::task("job", guest("run_command")).with(
            "grants = [\"process\"]\nconfig = { program = \"/bin/sh\", args = '[\"-c\", \"echo 100% disk_full >&2; exit 3\"]' }\n\
             [plugins.job.process]\nprograms = [\"/bin/sh\"]",
        ),
    ]);
    assert!(setup.run_json("briefing").0);
    assert!(!setup.run_json("job").0);
    assert!(setup.run_json("briefing").0);
    let found = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["runs", "--json"];
        all.extend(args);
        let output = setup.mission(&all);
        assert!(output.status.success(), "{:?}", text(&output));
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        runs.iter()
            .map(|r| r["plugin"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(found(&[]), ["briefing", "job", "briefing"]);
    assert_eq!(found(&["--failed"]), ["job"]);
    assert_eq!(
        found(&["--grep", "100% DISK_full"]),
        ["job"],
        "in any case, % and _ as themselves"
    );
    assert_eq!(found(&["--grep", "10_%"]), Vec::<String>::new());
    assert_eq!(found(&["--failed", "--since", "1h"]), ["job"]);
    assert_eq!(found(&["--since", "2999-01-01"]), Vec::<String>::new());
    let output = setup.mission(&["runs", "--since", "soon"]);
    assert!(!output.status.success());
    assert!(
        text(&output).1.contains("--since: `soon` is neither a date"),
        "{:?}",
        text(&output)
    );
}

#[test]
fn a_run_is_rerun_as_a_new_run_that_names_the_first() {
    let setup = Setup::with_plugins(vec![PluginSpec::task("job", guest("run_command")).with(
        "grants = [\"process\"]\nconfig = { program = \"/bin/sh\", args = '[\"-c\", \"echo disk full >&2; exit 3\"]' }\n\
         [plugins.job.process]\nprograms = [\"/bin/sh\"]",
    )]);
    let (ok, first) = setup.run_json("job");
    assert!(!ok);
    let id = first["id"].as_i64().unwrap().to_string();
    let output = setup.mission(&["rerun", &id, "--json"]);
    assert!(
        !output.status.success(),
        "it fails again, and says so in its exit code"
    );
    let again: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(again["trigger"], "rerun");
    assert_eq!(again["rerun_of"], first["id"]);
    assert_ne!(again["id"], first["id"]);
    // The same plugin, config and input: the same failure (its time aside).
    let error = again["error"].as_str().unwrap();
    assert!(
        error.contains("exit 3") && error.ends_with("disk full"),
        "{error}"
    );
    let missing = setup.mission(&["rerun", "9999"]);
    assert!(!missing.status.success());
    assert!(text(&missing).1.contains("no run 9999"), "{:?}", text(&missing));
}
