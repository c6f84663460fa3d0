//! `mission new` then `mission build` then a call, in each language, in a
//! directory laid out as a user's would be (the WIT package, the Rust SDK
//! and the tools `./dev` installs, linked from this repository).

use std::path::Path;

use crate::support::{repo_root, text, Setup};

fn project() -> Setup {
    let setup = Setup::new();
    std::fs::write(setup.config_path(), "data_dir = \"data\"\n").unwrap();
    let dir = setup.dir.path();
    let root = repo_root();
    let link = |from: &str, to: &str| {
        let target = dir.join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(root.join(from), target).unwrap();
    };
    link("wit", "wit");
    link("plugins/sdk", "plugins/sdk");
    link("target/python", "target/python");
    link("target/js", "target/js");
    setup
}

/// `mission ARGS` in `setup`, which must succeed; its stdout.
fn mission(setup: &Setup, args: &[&str]) -> String {
    let output = setup
        .command(args)
        // Rust plugins reuse the compiled SDK of the plugins workspace.
        .env("CARGO_TARGET_DIR", repo_root().join("plugins/target"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "mission {args:?}:\n{stdout}\n{stderr}");
    stdout
}

fn new_build_and(setup: &Setup, world: &str, name: &str, lang: &str) -> String {
    let created = mission(setup, &["new", world, name, "--lang", lang, "--add"]);
    assert!(
        created.contains(&format!("build: mission build {name}")),
        "{created}"
    );
    let built = mission(setup, &["build", name]);
    assert!(
        built.contains(&format!("{name}: built ({lang}) with `")) && built.contains("(cached)"),
        "{built}"
    );
    let wasm = setup
        .dir
        .path()
        .join(format!("plugins/target/{lang}/{name}.wasm"));
    assert!(wasm.is_file(), "{built}");
    assert!(!Path::new(&format!("{}.building", wasm.display())).exists());
    built
}

#[test]
fn a_new_rust_task_builds_and_runs() {
    let setup = project();
    new_build_and(&setup, "task", "rusty", "rust");
    assert!(setup.dir.path().join("plugins/rusty/Cargo.toml").is_file());
    for run in 1..=2 {
        let (ok, record) = setup.run_json("rusty");
        assert!(ok, "{record}");
        assert_eq!(record["summary"], format!("Hello from rusty: run #{run}"));
    }
}

#[test]
fn a_new_python_task_builds_and_runs() {
    let setup = project();
    new_build_and(&setup, "task", "ticker", "python");
    let (ok, record) = setup.run_json("ticker");
    assert!(ok, "{record}");
    assert_eq!(record["summary"], "Hello from ticker: run #1");
}

#[test]
fn a_new_javascript_chat_builds_and_answers_with_history() {
    let setup = project();
    new_build_and(&setup, "chat", "talk", "js");
    let reply = |text: &str| {
        let stdout = mission(&setup, &["chat", "talk", text, "--json"]);
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["reply"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        reply("hello"),
        "talk heard: hello (0 earlier in this chat, 1 answered in all)"
    );
    assert_eq!(
        reply("again"),
        "talk heard: again (1 earlier in this chat, 2 answered in all)"
    );
}

#[test]
fn new_refuses_a_taken_name_and_build_names_a_missing_toolchain() {
    let setup = project();
    mission(&setup, &["new", "task", "first", "--lang", "python", "--add"]);
    let output = setup.mission(&["new", "task", "first"]);
    assert!(!output.status.success());
    assert!(
        text(&output).1.contains("a plugin named `first` is already in"),
        "{}",
        text(&output).1
    );

    // Without the tools ./dev installs, the error says how to get them.
    std::fs::remove_file(setup.dir.path().join("target/python")).unwrap();
    let output = setup
        .command(&["build", "first"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugin `first` is Python: it needs componentize-py 0.25.1")
            && stderr.contains("./dev plugins"),
        "{stderr}"
    );
}

#[test]
fn mission_init_sets_up_a_folder_of_ones_own_where_a_new_rust_plugin_builds_and_runs() {
    let home = tempfile::tempdir().unwrap();
    let setup = Setup::new();
    let folder = setup.dir.path().to_owned();
    // Only the binary: run from an empty directory, nothing of this repository linked.
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_mission"))
        .arg("init")
        .arg(&folder)
        .current_dir(home.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&init);
    assert!(init.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("mission new task hello --add"), "{stdout}");
    for file in [
        "mission.toml",
        "wit/worlds.wit",
        "plugins/sdk/task/wit/deps/http.wit",
        "plugins/sdk/common/src/lib.rs",
    ] {
        let path = folder.join(file);
        assert!(path.is_file() && !path.is_symlink(), "{file}");
    }
    assert!(folder.join("schedules").is_dir());

    mission(&setup, &["check"]);
    new_build_and(&setup, "task", "hello", "rust");
    let (ok, record) = setup.run_json("hello");
    assert!(ok, "{record}");
    assert_eq!(record["summary"], "Hello from hello: run #1");

    let again = setup.mission(&["init", folder.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        text(&again).1.contains("mission.toml already exists"),
        "{:?}",
        text(&again)
    );
}

#[test]
fn a_new_python_tools_plugin_builds_and_answers_claude_s_call() {
    let setup = project();
    new_build_and(&setup, "tools", "counter", "python");
    // A task whose Claude may call it, through the fake CLI.
    let mut config = std::fs::read_to_string(setup.config_path()).unwrap();
    config.push_str(&format!(
        "\n[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\nenv = [\"HOME\"]\n\
         [plugins.caller]\nworld = \"task\"\nwasm = {:?}\ngrants = [\"claude\"]\n\
         config = {{ prompt = \"#tool:counter.count_words {{\\\"text\\\": \\\"one two three\\\"}}\" }}\n\
         [plugins.caller.claude]\nbackends = [\"cli\"]\ntools_from = [\"counter\"]\n",
        crate::support::fake_claude(),
        crate::support::guest("ask")
    ));
    std::fs::write(setup.config_path(), config).unwrap();
    let listing: serde_json::Value = serde_json::from_str(&mission(&setup, &["tools", "--json"])).unwrap();
    assert_eq!(listing["plugins"][0]["tools"][0]["name"], "count_words");
    for (run, total) in [(1, 3), (2, 6)] {
        let (ok, record) = setup.run_json("caller");
        assert!(ok, "run {run}: {record}");
        let summary = record["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!(
                "text=fake claude ran mcp__counter__count_words and got: 3 words ({total} counted in all)"
            )),
            "{summary}"
        );
    }
}
