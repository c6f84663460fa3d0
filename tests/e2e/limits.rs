//! Misbehaving plugins get a typed outcome within their limits, and the host
//! goes on serving the next call.

use std::time::Duration;

use mission::host::runs::{RunOutcome, StartedBy};
use mission::host::Host;
use mission::plugin::call::CallError;

use crate::support::{call_task, guest, wat_task, PluginSpec, Setup};

const TRAP: &str = "unreachable";
const SPIN: &str = "(loop $spin (br $spin)) unreachable";
const GROW: &str = "(loop $grow (drop (memory.grow (i32.const 16))) (br $grow)) unreachable";

fn briefing() -> PluginSpec {
    PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")
}

/// The next call after a misbehaving one still works.
async fn assert_host_still_serves(host: &Host) {
    let record = host.run_task("briefing", StartedBy::Manual).await.unwrap();
    assert_eq!(record.outcome, RunOutcome::Succeeded, "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_is_reported_as_trapped() {
    let setup = Setup::new();
    let trap = setup.file("trap.wasm", &wat_task(TRAP));
    setup.config(vec![PluginSpec::task("trap", trap), briefing()]);
    let host = setup.host().await;

    let report = call_task(&host, "trap").await;
    match report.result {
        Err(CallError::Trapped { trap }) => assert!(trap.contains("unreachable"), "{trap}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_host_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_times_out_at_its_deadline() {
    let setup = Setup::new();
    let spin = setup.file("spin.wasm", &wat_task(SPIN));
    setup.config(vec![
        PluginSpec::task("spin", spin).with("timeout = \"300ms\""),
        briefing(),
    ]);
    let host = setup.host().await;

    let report = call_task(&host, "spin").await;
    assert_eq!(
        report.result,
        Err(CallError::TimedOut {
            after: Duration::from_millis(300)
        })
    );
    assert!(
        report.duration >= Duration::from_millis(300),
        "{:?}",
        report.duration
    );
    assert!(
        report.duration < Duration::from_secs(10),
        "not interrupted: {:?}",
        report.duration
    );
    assert_host_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_growing_memory_without_end_is_out_of_memory() {
    let setup = Setup::new();
    let grow = setup.file("grow.wasm", &wat_task(GROW));
    setup.config(vec![
        PluginSpec::task("grow", grow).with("memory = \"8MiB\"\ntimeout = \"20s\""),
        briefing(),
    ]);
    let host = setup.host().await;

    let report = call_task(&host, "grow").await;
    assert_eq!(report.result, Err(CallError::OutOfMemory { limit: 8 << 20 }));
    assert_host_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_is_truncated_at_the_limit() {
    let setup = Setup::with_plugins(vec![
        PluginSpec::task("flood", guest("flood")).with("output = \"4KiB\"\nconfig = { lines = 100000 }"),
        briefing(),
    ]);
    let host = setup.host().await;

    let record = host.run_task("flood", StartedBy::Manual).await.unwrap();
    assert_eq!(record.outcome, RunOutcome::Succeeded, "{record:?}");
    assert_eq!(record.summary.as_deref(), Some("printed 100000 lines"));
    assert!(record.output_truncated);
    assert!(record.output.len() <= 4096, "kept {} bytes", record.output.len());
    assert!(
        record.output.starts_with("flood line 0: "),
        "{}",
        &record.output[..40]
    );
    assert!(
        record.output_bytes > 5_000_000,
        "counted {} bytes",
        record.output_bytes
    );
    assert_host_still_serves(&host).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_plugin_does_not_starve_other_calls_on_the_same_thread() {
    let setup = Setup::new();
    let spin = setup.file("spin.wasm", &wat_task(SPIN));
    setup.config(vec![
        PluginSpec::task("spin", spin).with("timeout = \"3s\""),
        briefing(),
    ]);
    let host = setup.host().await;

    let spinning = host.run_task("spin", StartedBy::Manual);
    let briefing = host.run_task("briefing", StartedBy::Manual);
    tokio::pin!(spinning);
    let finished_first = tokio::select! {
        biased;
        record = &mut spinning => record.unwrap(),
        record = briefing => record.unwrap(),
    };
    assert_eq!(
        finished_first.plugin, "briefing",
        "the spinning plugin held the thread"
    );
    assert_eq!(spinning.await.unwrap().outcome, RunOutcome::TimedOut);
}

#[test]
fn mission_run_reports_each_limit_and_exits_non_zero() {
    let setup = Setup::new();
    let trap = setup.file("trap.wasm", &wat_task(TRAP));
    let spin = setup.file("spin.wasm", &wat_task(SPIN));
    let grow = setup.file("grow.wasm", &wat_task(GROW));
    setup.config(vec![
        PluginSpec::task("trap", trap),
        PluginSpec::task("spin", spin).with("timeout = \"200ms\""),
        PluginSpec::task("grow", grow).with("memory = \"4MiB\""),
    ]);
    for (plugin, outcome, error) in [
        ("trap", "trapped", "unreachable"),
        ("spin", "timed_out", "timed out after 200ms"),
        ("grow", "out_of_memory", "its limit is 4MiB"),
    ] {
        let (succeeded, record) = setup.run_json(plugin);
        assert!(!succeeded, "{plugin} exited 0");
        assert_eq!(record["outcome"], outcome, "{record}");
        assert!(record["error"].as_str().unwrap().contains(error), "{record}");
    }
}
