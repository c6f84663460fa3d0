//! Benchmark: what a plugin costs the host. For the example plugins and a
//! minimal hand-written component (the baseline, measured in the same run),
//! prints the median of many runs of: compiling, loading from the compile
//! cache, instantiating, and one full call as the host makes it (fresh store
//! and instance, then the export), each with its ratio to the baseline.
//!
//! The Python and JavaScript examples (componentize-py and componentize-js
//! components of 12-18 MB) are measured beside the Rust ones; their
//! compiles and cache loads are repeated fewer times.
//!
//! Run with `./dev bench` (builds the guest plugins first).

#[path = "../../tests/e2e/wat.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod wat;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mission::capabilities::claude::Claude;
use mission::capabilities::http::records::Origin;
use mission::capabilities::Services;
use mission::config::claude::ClaudeGrant;
use mission::config::{Grant, HistoryPolicy, Limits, PluginConfig, PluginName, World};
use mission::db::Database;
use mission::plugin::cache::CompileCache;
use mission::plugin::call::{HandlerRole, Invocation, Message};
use mission::plugin::store::HostState;
use mission::plugin::Plugin;
use mission::wasm::bindings::{chat, task};
use wasmtime::component::Component;
use wasmtime::Store;

const COMPILES: usize = 10;
const LOADS: usize = 200;
const CALLS: usize = 2000;

struct Subject {
    label: &'static str,
    world: World,
    wasm: PathBuf,
    grants: BTreeSet<Grant>,
}

struct Figures {
    compile: Duration,
    cached_load: Duration,
    instantiate: Duration,
    call: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let guests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release");
    let baseline = dir.path().join("baseline.wasm");
    std::fs::write(&baseline, wat::wat_task(&wat::returns("ok"))).unwrap();
    let subjects = [
        Subject {
            label: "baseline (WAT, returns at once)",
            world: World::Task,
            wasm: baseline,
            grants: BTreeSet::new(),
        },
        Subject {
            label: "briefing (Rust task, 2 state calls)",
            world: World::Task,
            wasm: guests.join("briefing.wasm"),
            grants: [Grant::State].into(),
        },
        Subject {
            label: "echo-chat (Rust chat, 1 history read)",
            world: World::Chat,
            wasm: guests.join("echo_chat.wasm"),
            grants: [Grant::History].into(),
        },
        Subject {
            label: "assistant (Python chat, history read, Claude unavailable)",
            world: World::Chat,
            wasm: guests.join("../../python/assistant_py.wasm"),
            grants: [Grant::History, Grant::Claude].into(),
        },
        Subject {
            label: "tally (JavaScript task, 4 state calls)",
            world: World::Task,
            wasm: guests.join("../../js/tally_js.wasm"),
            grants: [Grant::State].into(),
        },
    ];
    for subject in &subjects {
        assert!(
            subject.wasm.exists(),
            "{} is missing: run `./dev bench`",
            subject.wasm.display()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = mission::wasm::engine::new_engine().unwrap();
    let linker = mission::plugin::linker::linker(&engine).unwrap();
    let db = Database::open(&dir.path().join("bench.db")).unwrap();
    let services = Services {
        claude: Arc::new(Claude::new(None, None, db.clone())),
        db,
        telegram: None,
        log_rates: Arc::default(),
        wakeups: Arc::default(),
        presses: Arc::default(),
    };
    let figures: Vec<Figures> = subjects
        .iter()
        .enumerate()
        .map(|(i, subject)| {
            let bytes = std::fs::read(&subject.wasm).unwrap();
            // Seconds for a big component: fewer repetitions.
            let big = bytes.len() > 1 << 20;
            let compile = time(if big { 2 } else { COMPILES }, || {
                Component::new(&engine, &bytes).unwrap()
            });
            let cache = CompileCache::open(&dir.path().join(format!("cache-{i}")), &engine).unwrap();
            let config = PluginConfig {
                name: PluginName::parse(&format!("bench-{i}")).unwrap(),
                world: subject.world,
                wasm: subject.wasm.clone(),
                source: PathBuf::new(),
                grants: subject.grants.clone(),
                limits: Limits::default(),
                values: Vec::new(),
                history: HistoryPolicy::default(),
                claude: ClaudeGrant::default(),
                notify_chats: BTreeSet::new(),
                button_expiry: std::time::Duration::from_secs(7 * 86_400),
                http: None,
                process: None,
                files: None,
                attachment_bytes: 20 << 20,
                later_pending: 1_000,
                record_contents: false,
                after: Vec::new(),
            };
            Plugin::load(&engine, &linker, &cache, config.clone()).unwrap(); // fills the cache
            let cached_load = time(if big { 20 } else { LOADS }, || {
                Plugin::load(&engine, &linker, &cache, config.clone()).unwrap()
            });
            let plugin = Plugin::load(&engine, &linker, &cache, config.clone()).unwrap();

            let component = Component::new(&engine, &bytes).unwrap();
            let pre = linker.instantiate_pre(&component).unwrap();
            let instantiate = runtime.block_on(async {
                let mut samples = Vec::with_capacity(CALLS);
                for _ in 0..CALLS {
                    let mut store = Store::new(&engine, HostState::new(&plugin.config, &services));
                    store.set_epoch_deadline(1 << 32);
                    let started = Instant::now();
                    match subject.world {
                        World::Task => drop(
                            task::TaskPre::new(pre.clone())
                                .unwrap()
                                .instantiate_async(&mut store)
                                .await
                                .unwrap(),
                        ),
                        World::Chat => drop(
                            chat::ChatPre::new(pre.clone())
                                .unwrap()
                                .instantiate_async(&mut store)
                                .await
                                .unwrap(),
                        ),
                        World::Tools => unreachable!("the tools world is measured in benches/tools.rs"),
                    }
                    samples.push(started.elapsed());
                }
                median(samples)
            });

            let call = runtime.block_on(async {
                let invocation = Invocation {
                    name: "bench".into(),
                    scheduled_at: 0,
                    attempt: 1,
                    config: Vec::new(),
                };
                let message = Message {
                    chat_id: 1,
                    sender_id: 1,
                    sender_name: "bench".into(),
                    text: "hello".into(),
                    sent_at: 0,
                    config: Vec::new(),
                };
                let mut samples = Vec::with_capacity(CALLS);
                for _ in 0..CALLS {
                    let started = Instant::now();
                    let ok = match subject.world {
                        World::Task => plugin
                            .run_task(
                                &services,
                                &invocation,
                                Default::default(),
                                Limits::default().timeout,
                                Origin::Unrecorded,
                            )
                            .await
                            .unwrap()
                            .result
                            .is_ok(),
                        World::Chat => plugin
                            .handle_message(&services, &message, Default::default(), HandlerRole::Live, None)
                            .await
                            .unwrap()
                            .result
                            .is_ok(),
                        World::Tools => unreachable!("the tools world is measured in benches/tools.rs"),
                    };
                    samples.push(started.elapsed());
                    assert!(ok, "{} failed during the benchmark", subject.label);
                }
                median(samples)
            });
            Figures {
                compile,
                cached_load,
                instantiate,
                call,
            }
        })
        .collect();

    let base = &figures[0];
    let ratio = |value: Duration, base: Duration| value.as_secs_f64() / base.as_secs_f64();
    println!(
        "plugin_calls: medians (compile of {COMPILES}, cached load of {LOADS}, instantiate and call of {CALLS}); ratio to the baseline in brackets"
    );
    println!(
        "{:<44} {:>10} {:>7}   {:>11} {:>7}   {:>11} {:>7}   {:>11} {:>7}",
        "component", "compile", "", "cached load", "", "instantiate", "", "full call", ""
    );
    for (subject, f) in subjects.iter().zip(&figures) {
        let size = std::fs::metadata(&subject.wasm).unwrap().len();
        println!(
            "{:<44} {:>10.2?} {:>7} {:>13.2?} {:>7} {:>13.2?} {:>7} {:>13.2?} {:>7}",
            format!("{} {}KB", subject.label, size / 1000),
            f.compile,
            format!("[{:.1}x]", ratio(f.compile, base.compile)),
            f.cached_load,
            format!("[{:.1}x]", ratio(f.cached_load, base.cached_load)),
            f.instantiate,
            format!("[{:.1}x]", ratio(f.instantiate, base.instantiate)),
            f.call,
            format!("[{:.1}x]", ratio(f.call, base.call)),
        );
    }
    println!("cached load = read + deserialize + world check + pre-instantiate; full call = fresh store, instance, limits and the export, as every run gets");
}
