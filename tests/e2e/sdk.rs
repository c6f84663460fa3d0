//! The Rust SDK as a plugin author outside this repository uses it: the SDK
//! crates copied on their own (links resolved, as `cargo package` does), a
//! plugin with the `Cargo.toml` `mission new` writes, built for wasm32-wasip2 and
//! run by the host. Its capability errors reach it as sentences through `?`.

use std::path::Path;
use std::process::Command;

use crate::support::{repo_root, text, PluginSpec, Setup};

/// The plugin's `Cargo.toml`, as `mission new` writes it (runtime/scaffold/).
const MANIFEST: &str = r#"[package]
name = "hello-task"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
mission-task-sdk = { path = "../sdk/task" }

[profile.release]
opt-level = "s"
strip = true
lto = true
codegen-units = 1
"#;

const SOURCE: &str = r#"
use mission_task_sdk::mission::plugin::state;
use mission_task_sdk::{config_value, export_task, Guest, Invocation, Outcome};

struct Hello;

impl Guest for Hello {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let who = config_value(&invocation.config, "who").unwrap_or("world");
        // Without the `state` grant this is a `denied` error, and `?` makes
        // it the run's error text.
        let runs = state::get("runs")?;
        Ok(Outcome { summary: format!("hello, {who} (runs before: {runs:?})") })
    }
}

export_task!(Hello);
"#;

/// Copies `from` to `to`, following links.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if std::fs::metadata(&path).unwrap().is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn a_plugin_outside_the_repository_builds_on_the_sdk_and_runs() {
    let outside = tempfile::tempdir().unwrap();
    for crate_dir in ["task", "common"] {
        copy_tree(
            &repo_root().join("plugins/sdk").join(crate_dir),
            &outside.path().join("sdk").join(crate_dir),
        );
    }
    let plugin = outside.path().join("hello");
    std::fs::create_dir_all(plugin.join("src")).unwrap();
    std::fs::write(plugin.join("Cargo.toml"), MANIFEST).unwrap();
    std::fs::write(plugin.join("src/lib.rs"), SOURCE).unwrap();
    // The guest workspace's lock file pins the same versions, and its target
    // directory already holds them compiled: no download, little to build.
    std::fs::copy(repo_root().join("plugins/Cargo.lock"), plugin.join("Cargo.lock")).unwrap();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--release", "--offline", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", repo_root().join("plugins/target"))
        .current_dir(&plugin)
        .output()
        .unwrap();
    let (_, stderr) = text(&build);
    assert!(build.status.success(), "{stderr}");
    let wasm = repo_root().join("plugins/target/wasm32-wasip2/release/hello_task.wasm");

    let granted = Setup::with_plugins(vec![
        PluginSpec::task("hello", wasm.clone()).with("grants = [\"state\"]\nconfig = { who = \"Anna\" }")
    ]);
    let (succeeded, record) = granted.run_json("hello");
    assert!(succeeded, "{record}");
    assert_eq!(record["summary"], "hello, Anna (runs before: None)");

    let denied = Setup::with_plugins(vec![PluginSpec::task("hello", wasm)]);
    let (succeeded, record) = denied.run_json("hello");
    assert!(!succeeded);
    assert_eq!(
        record["error"],
        "the plugin returned an error: denied: plugin `hello` has no `state` grant in its config"
    );
}
