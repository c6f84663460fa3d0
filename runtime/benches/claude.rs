//! Benchmark: per-message cost of asking Claude through each backend, side
//! by side in one run, against the fake `claude` (answers at once) and the
//! fake Messages API on loopback. For each backend the raw exchange without
//! the host is measured too — the same child started and read by hand, the
//! same process fed by hand, the same HTTP request — so the host's own
//! overhead (grant and budget checks, ledger and session writes, the
//! process group, the line) shows as the difference.

#[path = "../../tests/e2e/fake_anthropic.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod fake_anthropic;
#[path = "../../tests/e2e/loopback.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod loopback;
#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use measure::fake_claude;
use mission::capabilities::claude::{CallScope, Claude};
use mission::config::claude::ClaudeGrant;
use mission::config::{Config, HistoryPolicy, PluginName};
use mission::db::Database;
use mission::wasm::bindings::task::mission::plugin::claude::{Backend, Options};

const MESSAGES: usize = 40;
const KEY_ENV: &str = "MISSION_BENCH_ANTHROPIC_KEY";

struct Figures {
    median: Duration,
    p90: Duration,
}

fn figures(mut samples: Vec<Duration>) -> Figures {
    samples.sort();
    Figures {
        median: samples[samples.len() / 2],
        p90: samples[((samples.len() - 1) as f64 * 0.9).round() as usize],
    }
}

fn time(mut f: impl FnMut(usize)) -> Figures {
    f(usize::MAX); // warm up
    figures(
        (0..MESSAGES)
            .map(|i| {
                let started = Instant::now();
                f(i);
                started.elapsed()
            })
            .collect(),
    )
}

fn main() {
    // Set before any thread starts: the host reads the key by name.
    std::env::set_var(KEY_ENV, fake_anthropic::API_KEY);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let fake = fake_claude(&root);
    let api = fake_anthropic::FakeAnthropic::start();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let start = |args: &[&str]| {
        Command::new(&fake)
            .args(args)
            .current_dir(&work)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // Raw: a fresh child per message, prompt on stdin, read to the end.
    let raw_oneshot = time(|_| {
        let mut child = start(&["-p", "--output-format=json"]);
        child.stdin.take().unwrap().write_all(b"hello").unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert!(child.wait().unwrap().success() && out.contains("\"result\""));
    });

    // Raw: one stream-json process, a line in, events out to `result`.
    let mut child = start(&[
        "-p",
        "--input-format=stream-json",
        "--output-format=stream-json",
        "--verbose",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let raw_persistent = time(|_| {
        writeln!(
            stdin,
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"text","text":"hello"}}]}}}}"#
        )
        .unwrap();
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0);
            if line.starts_with("{\"api_error_status\"") || line.contains("\"type\":\"result\"") {
                break;
            }
        }
    });
    drop(stdin);
    child.wait().unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Raw: the same HTTP request the api backend makes.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", api.url);
    let raw_api = time(|_| {
        runtime.block_on(async {
            let response = http
                .post(&url)
                .header("x-api-key", fake_anthropic::API_KEY)
                .header("anthropic-version", "2023-06-01")
                .header("content-type", "application/json")
                .body(r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hello"}]}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        })
    });

    // Through the host: `Claude::ask`, as the capability calls it, with a
    // session key (so the session store and transcript are in play).
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[claude]\ncommand = {fake:?}\nworkdir = \"work\"\nenv = []\nmodel = \"claude-sonnet-4-5\"\n\
             [claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\n\
             [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30\n",
            api.url
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let db = Database::open(&config.data_dir.join("mission.db")).unwrap();
    let claude = Claude::new(config.claude.clone(), None, db);
    let plugin = PluginName::parse("bench").unwrap();
    let grant = ClaudeGrant {
        backends: vec![
            mission::config::claude::Backend::Cli,
            mission::config::claude::Backend::Persistent,
            mission::config::claude::Backend::Api,
        ],
        ..ClaudeGrant::default()
    };
    // The API transcript grows with each message; keep the context small
    // so the figure is the per-message cost, not the conversation's size.
    let history = HistoryPolicy {
        ttl: Duration::from_secs(3600),
        max_exchanges: 2,
    };
    let host = |backend: Backend| {
        time(|i| {
            runtime.block_on(async {
                let scope = CallScope {
                    plugin: &plugin,
                    grant: &grant,
                    history,
                    chat: None,
                    run: None,
                    shadow: false,
                    draft: None,
                    on_behalf_of: None,
                };
                let options = Options {
                    system: None,
                    model: None,
                    max_turns: None,
                    // One-shot: a fresh session each message, as a resumed one
                    // would make the fake reread a growing file.
                    session_key: Some(match backend {
                        Backend::Cli => format!("cli-{i}"),
                        _ => "chat".into(),
                    }),
                    allowed_tools: Vec::new(),
                    timeout_ms: None,
                    backend: Some(backend),
                };
                let answer = claude.ask(scope, "hello".into(), options, Vec::new()).await;
                assert!(answer.is_ok(), "{backend:?}: {answer:?}");
            })
        })
    };
    let host_oneshot = host(Backend::Cli);
    let host_persistent = host(Backend::Persistent);
    let host_api = host(Backend::Api);
    runtime.block_on(claude.shutdown());

    println!("claude backends, {MESSAGES} messages each, fake claude answering at once (median / p90):");
    let row = |name: &str, raw: &Figures, host: &Figures| {
        let overhead = host.median.saturating_sub(raw.median);
        println!(
            "  {name:<11} raw {:>9.2?} / {:>9.2?}   through the host {:>9.2?} / {:>9.2?}   host overhead {:>8.2?} [{:.2}x raw]",
            raw.median,
            raw.p90,
            host.median,
            host.p90,
            overhead,
            host.median.as_secs_f64() / raw.median.as_secs_f64()
        );
    };
    row("one-shot", &raw_oneshot, &host_oneshot);
    row("persistent", &raw_persistent, &host_persistent);
    row("api", &raw_api, &host_api);
    println!(
        "  per message through the host: one-shot {:.1}x persistent, {:.1}x api",
        host_oneshot.median.as_secs_f64() / host_persistent.median.as_secs_f64(),
        host_oneshot.median.as_secs_f64() / host_api.median.as_secs_f64()
    );
}
