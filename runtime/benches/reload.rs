//! Benchmark: hot reload latency on a serving host, from the moment a new
//! component file is completely written to the first call served by the new
//! version (debounce, read, hash, compile, world check, swap), for a small
//! and a ~1 MB component; beside it, compiling the same component alone,
//! measured in the same run. Every swap writes a version never seen before,
//! so the compile cache never helps.

#[path = "../../tests/e2e/wat.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod wat;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mission::capabilities::http::records::Origin;
use mission::config::Config;
use mission::host::Host;
use mission::plugin::call::Invocation;
use mission::serve::watcher::DEBOUNCE;
use wasmtime::component::Component;

const SMALL_SWAPS: usize = 40;
const BIG_SWAPS: usize = 12;

/// A task component whose `run` returns `summary`, padded with `functions`
/// extra functions so it has the size of a real plugin.
fn component(summary: &str, functions: usize) -> Vec<u8> {
    let padding: String = (0..functions)
        .map(|i| {
            format!(
                "(func $pad{i} (param i32) (result i32)
                    (i32.add (i32.mul (local.get 0) (i32.const {i})) (i32.xor (local.get 0) (i32.const {})))
                    (i32.sub (i32.const 7))
                    (i32.rotl (i32.const 3)))\n",
                i * 31
            )
        })
        .collect();
    wat::wat_task_with(&wat::returns(summary), &padding)
}

fn median_and_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p99 = samples[((samples.len() - 1) as f64 * 0.99).round() as usize];
    (samples[samples.len() / 2], p99)
}

async fn measure(
    host: &Host,
    path: &Path,
    name: &str,
    swaps: usize,
    functions: usize,
) -> (u64, Vec<Duration>) {
    let mut latencies = Vec::with_capacity(swaps);
    let mut size = 0;
    for swap in 0..swaps {
        let summary = format!("{name}{swap:04}");
        let bytes = component(&summary, functions);
        size = bytes.len() as u64;
        std::fs::write(path, &bytes).unwrap();
        let written = Instant::now();
        let plugin_timeout = Duration::from_secs(30);
        loop {
            let plugin = host.registry().get(name).unwrap();
            let invocation = Invocation {
                name: name.into(),
                scheduled_at: 0,
                attempt: 1,
                config: Vec::new(),
            };
            let report = plugin
                .run_task(host.services(), &invocation, plugin_timeout, Origin::Unrecorded)
                .await
                .unwrap();
            if report.result.as_deref() == Ok(summary.as_str()) {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(30),
                "swap {swap} of {name} never served"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(written.elapsed());
        tokio::time::sleep(DEBOUNCE * 2).await; // keep swaps apart
    }
    (size, latencies)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.wasm"), dir.path().join("big.wasm"));
    std::fs::write(&small, component("start", 0)).unwrap();
    let big_functions = 30_000;
    std::fs::write(&big, component("start", big_functions)).unwrap();
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.small]\nworld = \"task\"\nwasm = {:?}\n[plugins.big]\nworld = \"task\"\nwasm = {:?}\n",
            small, big
        ),
    )
    .unwrap();
    let host = Arc::new(Host::open(Config::load(&config_path).unwrap()).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(mission::serve::serve(host.clone(), async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let engine = mission::wasm::engine::new_engine().unwrap();
    let compile_alone = |functions: usize| {
        let samples: Vec<Duration> = (0..10)
            .map(|i| {
                let bytes = component(&format!("c{i:05}"), functions);
                let started = Instant::now();
                Component::new(&engine, &bytes).unwrap();
                started.elapsed()
            })
            .collect();
        median_and_p99(samples).0
    };
    let (small_compile, big_compile) = (compile_alone(0), compile_alone(big_functions));
    let (small_size, small_latency) = measure(&host, &small, "small", SMALL_SWAPS, 0).await;
    let (big_size, big_latency) = measure(&host, &big, "big", BIG_SWAPS, big_functions).await;
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    println!("reload: file complete -> first call on the new version (debounce {DEBOUNCE:?} included)");
    for (label, size, latency, compile) in [
        ("small", small_size, small_latency, small_compile),
        ("big", big_size, big_latency, big_compile),
    ] {
        let swaps = latency.len();
        let (median, p99) = median_and_p99(latency);
        println!(
            "  {label:<5} {:>7} KB, {swaps} swaps: median {median:>8.1?}, p99 {p99:>8.1?}; compile alone {compile:>8.1?} (median of 10); reload minus debounce and compile: {:.1?}",
            size / 1000,
            median.saturating_sub(DEBOUNCE + compile)
        );
    }
}
