//! Benchmark: hot reload latency on a serving host, from the moment a new
//! component file is completely written to the first call served by the new
//! version (debounce, read, hash, compile, world check, swap), for a small
//! and a ~1 MB component; beside it, compiling the same component alone,
//! measured in the same run. Every swap writes a version never seen before,
//! so the compile cache never helps.
//!
//! Then the Python example (an 18 MB componentize-py component), swapped
//! two ways: a plain write of a new version (the host compiles it), and the
//! way `mission build` puts one in place (compiled into the cache from a
//! staged file, then renamed), so the host loads it from the cache.

#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;
#[path = "../../tests/e2e/wat.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod wat;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::median_and_p99;
use mission::capabilities::http::records::Origin;
use mission::config::Config;
use mission::host::Host;
use mission::plugin::call::Invocation;
use mission::plugin::loader::PluginLoader;
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
                .run_task(
                    host.services(),
                    &invocation,
                    Default::default(),
                    plugin_timeout,
                    Origin::Unrecorded,
                )
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

/// `bytes` with a custom section holding `version`: a new file (and hash)
/// that behaves the same.
fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
    let name = b"mission-bench-version";
    let payload = version.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    out.push((1 + name.len() + payload.len()) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

/// Time from the file landing at `path` to the registry serving its hash.
async fn wait_for_hash(host: &Host, name: &str, bytes: &[u8], landed: Instant) -> Duration {
    let hash = mission::plugin::hash::ContentHash::of(bytes);
    while host.registry().get(name).unwrap().hash != hash {
        assert!(
            landed.elapsed() < Duration::from_secs(120),
            "{name} never swapped"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    landed.elapsed()
}

/// Swaps the Python example `swaps` times each way; the latencies of plain
/// writes and of `mission build`'s staged, precompiled writes.
async fn measure_python(
    host: &Host,
    config: &Config,
    path: &Path,
    swaps: u32,
) -> (Vec<Duration>, Vec<Duration>) {
    let original = std::fs::read(path).unwrap();
    let mut plain = Vec::new();
    let mut built = Vec::new();
    let loader = PluginLoader::open(config).unwrap();
    for swap in 0..swaps {
        let bytes = with_version(&original, swap * 2 + 1);
        std::fs::write(path, &bytes).unwrap();
        plain.push(wait_for_hash(host, "python", &bytes, Instant::now()).await);
        tokio::time::sleep(DEBOUNCE * 2).await;

        let bytes = with_version(&original, swap * 2 + 2);
        let staged = path.with_extension("wasm.building");
        std::fs::write(&staged, &bytes).unwrap();
        let mut staged_config = config.plugin("python").unwrap().clone();
        staged_config.wasm = staged.clone();
        loader.load(staged_config).await.unwrap();
        mission::plugin::cache::wait_for_writes();
        std::fs::rename(&staged, path).unwrap();
        built.push(wait_for_hash(host, "python", &bytes, Instant::now()).await);
        tokio::time::sleep(DEBOUNCE * 2).await;
    }
    (plain, built)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (small, big) = (dir.path().join("small.wasm"), dir.path().join("big.wasm"));
    std::fs::write(&small, component("start", 0)).unwrap();
    let big_functions = 30_000;
    std::fs::write(&big, component("start", big_functions)).unwrap();
    let python = dir.path().join("python.wasm");
    let python_example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/python/assistant_py.wasm");
    std::fs::copy(&python_example, &python).expect("the Python example is missing: run `./dev bench`");
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.small]\nworld = \"task\"\nwasm = {:?}\n[plugins.big]\nworld = \"task\"\nwasm = {:?}\n\
             [plugins.python]\nworld = \"chat\"\nwasm = {:?}\ngrants = [\"history\"]\n",
            small, big, python
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
    let python_bytes = std::fs::read(&python).unwrap();
    let python_compile = {
        let started = Instant::now();
        Component::new(&engine, with_version(&python_bytes, 999)).unwrap();
        started.elapsed()
    };
    let (python_plain, python_built) =
        measure_python(&host, &Config::load(&config_path).unwrap(), &python, 3).await;
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
    println!(
        "Python example, {} MB (compile alone {python_compile:.1?}); file in place -> new version serving:",
        python_bytes.len() / 1_000_000
    );
    for (label, latencies) in [
        ("written as is (host compiles)", python_plain),
        ("by `mission build` (cache)", python_built),
    ] {
        let shown: Vec<String> = latencies.iter().map(|d| format!("{d:.2?}")).collect();
        println!("  {label:<31} {}", shown.join(", "));
    }
}
