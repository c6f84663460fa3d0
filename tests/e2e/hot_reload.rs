//! Hot reload on a serving host: plugins swapped under load without losing
//! a call, calls in flight finishing on the old version, broken files
//! refused while the old version serves, and schedule and config changes
//! taking effect without a restart.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mission::host::Host;
use mission::plugin::hash::ContentHash;
use mission::plugin::loads::{self, LoadOutcome, PluginLoad};
use mission::serve::control;
use tokio::sync::oneshot;

use crate::support::{call_task, guest, text, wait_for_async, wat_task, PluginSpec, RunningHost, Setup};
use crate::wat::{returns, spins_then_returns};

/// A host serving `setup` in this process, hot reload running.
struct Serving {
    host: Arc<Host>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Serving {
    async fn start(setup: &Setup) -> Serving {
        let host = Arc::new(setup.host().await);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mission::serve::serve(host.clone(), async {
            let _ = stopped.await;
        }));
        // The heartbeat is written once the scheduler runs, after hot reload
        // has started watching.
        wait_for_async("the host serving", LIMIT, || async {
            control::running_host(host.db())
                .await
                .unwrap()
                .ok_or("no heartbeat")
        })
        .await;
        Serving {
            host,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the plugin `name` serves the component `bytes`.
    async fn wait_for_version(&self, name: &str, bytes: &[u8]) {
        let hash = ContentHash::of(bytes);
        wait_for_async("the new version serving", LIMIT, || async {
            let serving = self.host.registry().get(name).unwrap().hash.clone();
            if serving == hash {
                Ok(())
            } else {
                Err(serving)
            }
        })
        .await;
    }

    /// Waits for the next load record after `after` and returns it.
    async fn next_load(&self, after: &mut i64) -> PluginLoad {
        let since = *after;
        let load = wait_for_async("a plugin load record", LIMIT, || async {
            let next = loads::since(self.host.db(), since)
                .await
                .unwrap()
                .into_iter()
                .next();
            next.ok_or(format!("none after load {since}"))
        })
        .await;
        *after = load.id;
        load
    }

    async fn summary(&self, name: &str) -> String {
        call_task(&self.host, name)
            .await
            .result
            .expect("the call succeeds")
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// How long a serving host gets to show a change.
const LIMIT: Duration = Duration::from_secs(20);

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_during_repeated_swaps_is_answered_by_the_old_or_the_new_version() {
    let setup = Setup::new();
    let (v1, v2) = (wat_task(&returns("v1")), wat_task(&returns("v2")));
    let path = setup.file("p.wasm", &v1);
    setup.config(vec![PluginSpec::task("p", path.clone())]);
    let serving = Serving::start(&setup).await;

    let done = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (host, done, answers) = (serving.host.clone(), done.clone(), answers.clone());
            tokio::spawn(async move {
                let mut results = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    results.push(call_task(&host, "p").await.result);
                    answers.fetch_add(1, Ordering::Relaxed);
                }
                results
            })
        })
        .collect();
    for swap in 0..6 {
        let next = if swap % 2 == 0 { &v2 } else { &v1 };
        write(&path, next);
        serving.wait_for_version("p", next).await;
        // Calls land on this version: of three more answers from two
        // callers, one was to a call made after it served.
        let before = answers.load(Ordering::Relaxed);
        wait_for_async("three more answers", LIMIT, || async {
            let now = answers.load(Ordering::Relaxed);
            if now >= before + 3 {
                Ok(())
            } else {
                Err(now - before)
            }
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for caller in callers {
        answered.extend(caller.await.unwrap());
    }
    assert!(answered.len() > 50, "only {} calls made", answered.len());
    let v1_calls = answered.iter().filter(|r| r.as_deref() == Ok("v1")).count();
    let v2_calls = answered.iter().filter(|r| r.as_deref() == Ok("v2")).count();
    assert_eq!(
        v1_calls + v2_calls,
        answered.len(),
        "a call failed or got something else: {answered:?}"
    );
    assert!(v1_calls > 0 && v2_calls > 0);
    // Every call after the last swap gets the last version.
    assert_eq!(serving.summary("p").await, "v1");
    let loads = loads::since(serving.host.db(), 0).await.unwrap();
    assert_eq!(
        loads
            .iter()
            .filter(|l| l.outcome == LoadOutcome::Reloaded)
            .count(),
        6,
        "{loads:#?}"
    );
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_running_across_a_swap_finishes_on_the_old_version() {
    let setup = Setup::new();
    let slow_old = wat_task(&spins_then_returns(3_000_000_000, "old"));
    let new = wat_task(&returns("new"));
    let path = setup.file("p.wasm", &slow_old);
    setup.config(vec![PluginSpec::task("p", path.clone())]);
    let serving = Serving::start(&setup).await;

    let old = serving.host.registry().get("p").unwrap();
    let holders = Arc::strong_count(&old);
    let host = serving.host.clone();
    let running = tokio::spawn(async move { call_task(&host, "p").await.result });
    // The call has taken the old version when it holds one more reference.
    wait_for_async("the call to take the old version", LIMIT, || async {
        match Arc::strong_count(&old) {
            held if held > holders => Ok(()),
            held => Err(held),
        }
    })
    .await;
    drop(old);
    write(&path, &new);
    serving.wait_for_version("p", &new).await;
    assert!(
        !running.is_finished(),
        "the slow call ended before the swap: make it slower"
    );
    assert_eq!(serving.summary("p").await, "new");
    assert_eq!(running.await.unwrap().as_deref(), Ok("old"));
    serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_are_refused_while_the_old_version_serves() {
    let setup = Setup::new();
    let (v1, v2) = (wat_task(&returns("v1")), wat_task(&returns("v2")));
    let path = setup.file("p.wasm", &v1);
    setup.config(vec![PluginSpec::task("p", path.clone())]);
    let serving = Serving::start(&setup).await;
    let mut after = loads::newest_id(serving.host.db()).await.unwrap();

    let chat_component = std::fs::read(guest("echo_chat")).unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        (
            "corrupt",
            b"\0asm\x0d\0\x01\0 garbage",
            "is not a valid WebAssembly component",
        ),
        (
            "truncated",
            &v2[..v2.len() / 2],
            "is not a valid WebAssembly component",
        ),
        (
            "wrong world",
            &chat_component,
            "is not a task plugin: it does not export the function `run`",
        ),
    ];
    for (case, bytes, reason) in cases {
        write(&path, bytes);
        let load = serving.next_load(&mut after).await;
        assert_eq!(load.outcome, LoadOutcome::Refused, "{case}: {load:?}");
        let error = load.error.unwrap();
        assert!(
            error.contains("p.wasm") && error.contains(reason),
            "{case}: {error}"
        );
        assert_eq!(
            serving.summary("p").await,
            "v1",
            "{case}: the old version stopped serving"
        );
    }

    std::fs::remove_file(&path).unwrap();
    assert_eq!(serving.next_load(&mut after).await.outcome, LoadOutcome::Missing);
    assert_eq!(serving.summary("p").await, "v1");

    write(&path, &v2);
    serving.wait_for_version("p", &v2).await;
    assert_eq!(serving.summary("p").await, "v2");
    serving.stop().await;
}

fn schedule_setup() -> Setup {
    let setup = Setup::new();
    setup.config_with(
        "",
        vec![PluginSpec::task("briefing", guest("briefing"))
            .with("grants = [\"state\"]\nconfig = { greeting = \"Hello\", recipient = \"team\" }")],
    );
    setup
}

/// Triggers `schedule` through the running host and returns its summary.
fn trigger(setup: &Setup, schedule: &str) -> String {
    let output = setup.mission(&["trigger", schedule, "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("asked the running host"), "{stderr}");
    let record: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    record["summary"].as_str().unwrap().to_owned()
}

#[test]
fn schedule_files_added_edited_and_deleted_take_effect_and_a_bad_edit_is_refused() {
    let setup = schedule_setup();
    let mut host = RunningHost::start(&setup);

    setup.schedule(
        "news",
        "plugin = \"briefing\"\ncron = \"@daily\"\nconfig = { recipient = \"Anna\" }\n",
    );
    host.wait_for_log_line(&["schedule added", "news"]);
    assert!(trigger(&setup, "news").contains("Hello, Anna!"));

    setup.schedule(
        "news",
        "plugin = \"briefing\"\ncron = \"@daily\"\nconfig = { recipient = \"Ben\" }\n",
    );
    host.wait_for_log_line(&["schedule updated", "news"]);
    assert!(trigger(&setup, "news").contains("Hello, Ben!"));

    setup.schedule(
        "news",
        "plugin = \"briefing\"\ncron = \"every day\"\nconfig = { recipient = \"Cleo\" }\n",
    );
    let refusal = host.wait_for_log_line(&["schedule refused"]);
    assert!(
        refusal.contains("news.toml") && refusal.contains("cron"),
        "{refusal}"
    );
    assert!(
        trigger(&setup, "news").contains("Hello, Ben!"),
        "the previous version stopped"
    );

    std::fs::remove_file(setup.dir.path().join("schedules/news.toml")).unwrap();
    host.wait_for_log_line(&["schedule removed", "news"]);
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn config_changes_apply_to_the_next_call_and_restart_only_settings_are_reported() {
    let setup = schedule_setup();
    setup.schedule("news", "plugin = \"briefing\"\ncron = \"@daily\"\n");
    let mut host = RunningHost::start(&setup);
    assert!(trigger(&setup, "news").contains("Hello, team!"));

    let original = std::fs::read_to_string(setup.config_path()).unwrap();
    let bonjour = original.replace("greeting = \"Hello\"", "greeting = \"Bonjour\"");
    std::fs::write(setup.config_path(), &bonjour).unwrap();
    host.wait_for_log_line(&["schedule updated", "news"]);
    assert!(trigger(&setup, "news").contains("Bonjour, team!"));

    std::fs::write(
        setup.config_path(),
        bonjour.replace("data_dir = \"data\"", "data_dir = \"elsewhere\""),
    )
    .unwrap();
    host.wait_for_log_line(&["config reloaded", "data_dir changed", "restart to apply"]);
    assert!(
        !setup.dir.path().join("elsewhere").exists(),
        "data_dir was half-applied"
    );
    std::fs::write(setup.config_path(), &bonjour).unwrap();
    host.wait_for_log_line(&["schedule updated", "news"]);

    std::fs::write(
        setup.config_path(),
        "data_dir = \"data\"\n[plugins.briefing]\nworld = \"cron\"\n",
    )
    .unwrap();
    let refusal = host.wait_for_log_line(&["config change refused"]);
    assert!(refusal.contains("mission.toml"), "{refusal}");
    std::fs::write(setup.config_path(), &bonjour).unwrap();
    host.wait_for_log_line(&["schedule updated", "news"]);
    assert!(trigger(&setup, "news").contains("Bonjour, team!"));
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn plugins_lists_versions_and_reload_forces_one() {
    let setup = schedule_setup();
    let host = RunningHost::start(&setup);
    let output = setup.mission(&["reload", "briefing"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("briefing: unchanged"), "{stdout}");

    let rows: serde_json::Value =
        serde_json::from_slice(&setup.mission(&["plugins", "--json"]).stdout).unwrap();
    let hash = ContentHash::of(&std::fs::read(guest("briefing")).unwrap()).to_string();
    assert_eq!(rows[0]["name"], "briefing");
    assert_eq!(rows[0]["hash"], hash.as_str());
    assert_eq!(rows[0]["last_outcome"], "unchanged");
    assert!(rows[0]["loaded_at"].is_string());
    host.signal("-TERM");
    assert!(host.wait().0);

    let output = setup.mission(&["reload"]);
    assert!(!output.status.success());
    assert!(text(&output).1.contains("no host is running"));
}
