//! Benchmark: one tool call of a tools plugin (the toolbox fixture's
//! `echo`), three ways in one run — called directly by the host
//! (`Host::call_tool`: a fresh instance, the grant check, the record), the
//! way the API backend's tool loop calls it (through the gateway), and the
//! way the CLI does over MCP (JSON-RPC on the stdio of `mission mcp-tools`,
//! the real binary, which asks the host over its Unix socket) — printing
//! the median and p99 of each and what each path adds to the direct call.
//! Then the host's own reading tools (`mission.schedules`, `mission.runs`)
//! over MCP with 50 schedules and 100,000 runs recorded, against the echo
//! over MCP measured in the same run.

#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use measure::median_and_p99;
use mission::capabilities::claude::tools::ToolCaller;
use mission::config::{Config, PluginName};
use mission::host::tool_calls::ToolRequest;
use mission::host::Host;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const CALLS: usize = 500;
const SCHEDULES: usize = 50;
const RUNS: usize = 100_000;

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let wasm = |name: &str| root.join(format!("plugins/target/wasm32-wasip2/release/{name}.wasm"));
    for name in ["toolbox", "echo_chat", "nudge"] {
        assert!(
            wasm(name).exists(),
            "{} is missing: run `./dev bench`",
            wasm(name).display()
        );
    }
    // Built by cargo with this benchmark, in the same profile.
    let mission = PathBuf::from(env!("CARGO_BIN_EXE_mission"));
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.caller]\nworld = \"chat\"\nwasm = {:?}\ngrants = [\"claude\"]\n\
             [plugins.caller.claude]\ntools_from = [\"toolbox\", \"mission\"]\n\
             [plugins.toolbox]\nworld = \"tools\"\nwasm = {:?}\n\
             [plugins.nudge]\nworld = \"task\"\nwasm = {:?}\n",
            wasm("echo_chat"),
            wasm("toolbox"),
            wasm("nudge")
        ),
    )
    .unwrap();
    let host = Arc::new(Host::open(Config::load(&config_path).unwrap()).await.unwrap());
    a_busy_business(dir.path());
    assert!(host.load_all().await.is_empty());
    let broker = mission::serve::tool_gateway::install(&host, mission);
    let caller = ToolCaller {
        plugin: PluginName::parse("caller").unwrap(),
        tools_from: vec![
            PluginName::parse("toolbox").unwrap(),
            PluginName::parse("mission").unwrap(),
        ],
        chat: None,
        run: None,
        shadow: false,
    };
    let input = || json!({"text": "hello"}).as_object().unwrap().clone();

    let mut direct = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let answer = host
            .call_tool(ToolRequest {
                caller: &caller.plugin,
                plugin: "toolbox",
                tool: "echo",
                input: input(),
                chat: None,
                run: None,
                shadow: false,
            })
            .await;
        direct.push(started.elapsed());
        assert!(!answer.is_error, "{}", answer.text);
    }

    let mut api_loop = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let (text, is_error) = broker.call(&caller, "toolbox.echo", input()).await;
        api_loop.push(started.elapsed());
        assert!(!is_error, "{text}");
    }

    // The MCP path, as the CLI drives it: the servers its config names.
    let pass = broker.pass(&caller).unwrap();
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&pass.mcp_config).unwrap()).unwrap();
    let echo = json!({"text": "hello"});
    let mcp = mcp_calls(&config["mcpServers"]["toolbox"], "echo", &echo).await;
    let schedules = mcp_calls(&config["mcpServers"]["mission"], "schedules", &json!({})).await;
    let failed = json!({"failed": true, "limit": 10});
    let runs = mcp_calls(&config["mcpServers"]["mission"], "runs", &failed).await;

    let (direct_median, direct_p99) = median_and_p99(direct);
    println!("tools: the toolbox's echo, {CALLS} calls each way, one after another");
    println!("  called directly by the host: median {direct_median:.2?}, p99 {direct_p99:.2?}");
    for (label, samples) in [
        ("the API backend's tool loop (gateway)", api_loop),
        ("MCP (stdio JSON-RPC, rmcp, Unix socket)", mcp.clone()),
    ] {
        let (median, p99) = median_and_p99(samples);
        println!(
            "  {label}: median {median:.2?}, p99 {p99:.2?}; adds {:.2?} at the median, {:.2?} at p99",
            median.saturating_sub(direct_median),
            p99.saturating_sub(direct_p99)
        );
    }
    let (mcp_median, mcp_p99) = median_and_p99(mcp);
    println!(
        "the host's own reading tools over MCP, {SCHEDULES} schedules and {RUNS} runs recorded, \
         against the toolbox's echo over MCP above:"
    );
    for (label, samples) in [
        (
            "mission.schedules (each with its next runs, paused, last run)",
            schedules,
        ),
        ("mission.runs (the latest 10 failed)", runs),
    ] {
        let (median, p99) = median_and_p99(samples);
        println!(
            "  {label}: median {median:.2?}, p99 {p99:.2?}; adds {:.2?} at the median, {:.2?} at p99",
            median.saturating_sub(mcp_median),
            p99.saturating_sub(mcp_p99)
        );
    }
}

/// `CALLS` calls of `tool` with `arguments` through the MCP server
/// `server` (an `--mcp-config` entry), as the CLI makes them, after its
/// handshake; each call's time.
async fn mcp_calls(server: &Value, tool: &str, arguments: &Value) -> Vec<std::time::Duration> {
    let mut command = tokio::process::Command::new(server["command"].as_str().unwrap());
    for arg in server["args"].as_array().unwrap() {
        command.arg(arg.as_str().unwrap());
    }
    for (key, value) in server["env"].as_object().unwrap() {
        command.env(key, value.as_str().unwrap());
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut id = 0u64;
    let mut request = async |method: &str, params: Value| -> Value {
        // A notification (no params here) is sent without an id and answers nothing.
        if params.is_null() {
            let line = format!("{}\n", json!({"jsonrpc": "2.0", "method": method}));
            stdin.write_all(line.as_bytes()).await.unwrap();
            return Value::Null;
        }
        id += 1;
        let mut line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes()).await.unwrap();
        loop {
            let line = stdout.next_line().await.unwrap().expect("the MCP server ended");
            let answer: Value = serde_json::from_str(&line).unwrap();
            if answer["id"] == json!(id) {
                return answer;
            }
        }
    };
    let init = json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}});
    request("initialize", init).await;
    request("notifications/initialized", Value::Null).await;
    request("tools/list", json!({})).await;
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let answer = request("tools/call", json!({"name": tool, "arguments": arguments})).await;
        times.push(started.elapsed());
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    drop(child);
    times
}

/// `SCHEDULES` schedule files of the task `nudge` and `RUNS`
/// runs recorded across them (a tenth failed), as a year of a busy
/// business leaves them.
fn a_busy_business(dir: &Path) {
    let schedules = dir.join("schedules");
    std::fs::create_dir_all(&schedules).unwrap();
    for n in 0..SCHEDULES {
        std::fs::write(
            schedules.join(format!("job-{n:02}.toml")),
            format!(
                "plugin = \"nudge\"\ncron = \"{} {} * * 1-5\"\ntimezone = \"Europe/Berlin\"\n",
                n % 60,
                n % 24
            ),
        )
        .unwrap();
    }
    let db = rusqlite::Connection::open(dir.join("data/mission.db")).unwrap();
    let transaction = db.unchecked_transaction().unwrap();
    {
        let mut insert = transaction
            .prepare(
                "INSERT INTO runs (plugin, schedule, trigger, scheduled_at, attempt, started_at, finished_at, outcome, error)
                 VALUES ('nudge', ?1, 'schedule', ?2, 1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        let start = chrono::Utc::now().timestamp_millis() - RUNS as i64 * 300_000;
        for n in 0..RUNS {
            let at = start + n as i64 * 300_000;
            let failed = n % 10 == 0;
            insert
                .execute(rusqlite::params![
                    format!("job-{:02}", n % SCHEDULES),
                    at,
                    at + 1_500,
                    if failed { "failed" } else { "succeeded" },
                    failed.then_some("the CRM answered 401")
                ])
                .unwrap();
        }
    }
    transaction.commit().unwrap();
}
