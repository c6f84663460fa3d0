//! Asking Claude: a task plugin (`ask`) and the chat plugin (`assistant`)
//! through each backend, against the fake `claude` CLI (tests/fake-claude)
//! and the fake Messages API; sessions, a persistent process reused and
//! restarted, deadlines killing the process group, budgets, the ledger and
//! `mission cost`, grants and the child's environment.

use std::path::PathBuf;
use std::time::Duration;

use mission::host::runs::{RunOutcome, RunRecord, StartedBy};
use mission::host::Host;
use mission::plugin::call::Message;
use serde_json::Value;

use crate::bot_host::{api_chat_host, assistant, chat_host, chat_host_with, claude_bot, up, BotHost};
use crate::fake_anthropic::{FakeAnthropic, Fault, API_KEY, KEY_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{fake_claude, guest, text, wait_for, wait_for_async, PluginSpec, Setup};

/// A setup whose `[claude]` runs the fake CLI in `claude-work/`, plus
/// `claude` (more `[claude]` lines), with `plugins`.
fn claude_setup(claude: &str, plugins: Vec<PluginSpec>) -> Setup {
    let setup = Setup::new();
    write_config(&setup, claude, plugins);
    setup
}

/// Writes a config whose `[claude]` runs the fake CLI in `claude-work/`,
/// plus `claude` (more `[claude]` lines, or further tables), with `plugins`.
fn write_config(setup: &Setup, claude: &str, plugins: Vec<PluginSpec>) {
    let top = format!(
        "[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\nenv = [\"HOME\"]\n{claude}\n",
        fake_claude()
    );
    setup.config_with(&top, plugins);
}

/// The `ask` fixture with the claude grant, `grant` lines for its
/// `[plugins.NAME.claude]` and `config` as its config table.
fn ask(name: &str, grant: &str, config: &str) -> PluginSpec {
    PluginSpec::task(name, guest("ask"))
        .with("grants = [\"claude\"]")
        .with(&format!("config = {{ {config} }}"))
        .with(&format!("[plugins.{name}.claude]\n{grant}"))
}

fn workdir(setup: &Setup) -> PathBuf {
    setup.dir.path().join("claude-work/.fake-claude")
}

/// Every start of the fake CLI: its arguments.
fn spawns(setup: &Setup) -> Vec<Vec<String>> {
    std::fs::read_to_string(workdir(setup).join("spawns.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let spawn: Value = serde_json::from_str(line).unwrap();
            serde_json::from_value(spawn["args"].clone()).unwrap()
        })
        .collect()
}

/// Waits (up to 30 s) until the fake CLI has started `count` times.
fn wait_for_spawns(setup: &Setup, count: usize) {
    wait_for(
        &format!("{count} start(s) of the CLI"),
        Duration::from_secs(30),
        || {
            let spawns = spawns(setup);
            if spawns.len() >= count {
                Ok(())
            } else {
                Err(spawns)
            }
        },
    );
}

/// The `key=value` fields of the ask fixture's summary.
fn field<'a>(record: &'a RunRecord, name: &str) -> &'a str {
    let summary = record
        .summary
        .as_deref()
        .unwrap_or_else(|| panic!("the run failed: {:?}", record.error));
    summary
        .split('|')
        .find_map(|f| f.strip_prefix(name).and_then(|f| f.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}

async fn run(host: &Host, plugin: &str) -> RunRecord {
    host.run_task(plugin, StartedBy::Manual).await.unwrap()
}

fn message(chat_id: i64, text: &str) -> Message {
    Message {
        chat_id,
        sender_id: 100,
        sender_name: "Anna".into(),
        text: text.into(),
        sent_at: 0,
        config: Vec::new(),
    }
}

async fn chat(host: &Host, chat_id: i64, text: &str) -> String {
    let report = host
        .chat(
            "assistant",
            &message(chat_id, text),
            Default::default(),
            None,
            None,
        )
        .await
        .unwrap();
    report.result.unwrap().unwrap().text
}

fn cost_json(setup: &Setup, args: &[&str]) -> Value {
    let mut all = vec!["cost", "--json"];
    all.extend_from_slice(args);
    let output = setup.mission(&all);
    assert!(output.status.success(), "{:?}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_task_continues_its_cli_session_and_another_plugins_same_key_does_not() {
    let setup = claude_setup(
        "model = \"claude-sonnet-4-5\"",
        vec![
            ask("first", "", "prompt = \"my name is Anna\", session_key = \"s\""),
            ask("other", "", "prompt = \"what is my name?\", session_key = \"s\""),
        ],
    );
    let host = setup.host().await;
    let first = run(&host, "first").await;
    assert_eq!(first.outcome, RunOutcome::Succeeded, "{:?}", first.error);
    assert_eq!(
        field(&first, "text"),
        "fake claude heard \"my name is Anna\"; earlier: []"
    );
    let session = field(&first, "session").to_owned();
    assert_eq!(session.len(), 36);
    assert_eq!(field(&first, "cost"), "0.0125");
    // Same key in another plugin: another session.
    let other = run(&host, "other").await;
    assert!(field(&other, "text").ends_with("earlier: []"), "{other:?}");
    assert_ne!(field(&other, "session"), session);
    // The same plugin again: resumed, with the first exchange as context.
    let again = run(&host, "first").await;
    assert_eq!(
        field(&again, "text"),
        "fake claude heard \"my name is Anna\"; earlier: [\"my name is Anna\"]"
    );
    assert_eq!(field(&again, "session"), session);
    let args = spawns(&setup);
    assert_eq!(args.len(), 3);
    assert!(
        args[0].contains(&"--model=claude-sonnet-4-5".to_owned()),
        "{args:?}"
    );
    assert!(
        args[0].contains(&"--tools=".to_owned()),
        "no tools unless granted: {args:?}"
    );
    assert!(!args[0].iter().any(|a| a.starts_with("--resume")), "{args:?}");
    assert!(args[2].contains(&format!("--resume={session}")), "{args:?}");
    // The ledger has all three, by plugin and by model.
    let report = cost_json(&setup, &[]);
    assert_eq!(report["total"]["calls"], 3);
    assert!(
        (report["total"]["cost_usd"].as_f64().unwrap() - 0.0375).abs() < 1e-9,
        "{report}"
    );
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(lines[0]["key"], "first");
    assert_eq!(lines[0]["calls"], 2);
    let by_model = cost_json(&setup, &["--by", "model"]);
    assert_eq!(by_model["lines"][0]["key"], "claude-sonnet-4-5");
}

#[tokio::test]
async fn the_chat_plugin_keeps_one_persistent_process_and_restarts_it_after_a_crash() {
    let setup = claude_setup(
        "",
        vec![assistant(
            "backend = \"persistent\"",
            "backends = [\"persistent\", \"cli\"]",
        )],
    );
    let host = setup.host().await;
    assert_eq!(
        chat(&host, 7, "hello").await,
        "fake claude heard \"hello\"; earlier: []"
    );
    assert_eq!(
        chat(&host, 7, "how are you?").await,
        "fake claude heard \"how are you?\"; earlier: [\"hello\"]"
    );
    assert_eq!(spawns(&setup).len(), 1, "one process for the chat");
    let pids = host.claude().live_processes().await;
    assert_eq!(pids.len(), 1);
    // The process dies mid-turn: started again on its session, asked again.
    assert_eq!(
        chat(&host, 7, "#die-once then answer").await,
        "fake claude heard \"#die-once then answer\"; earlier: [\"hello\", \"how are you?\"]"
    );
    let args = spawns(&setup);
    assert_eq!(args.len(), 2);
    assert!(args[1].iter().any(|a| a.starts_with("--resume=")), "{args:?}");
    assert!(
        args[1].contains(&"--input-format=stream-json".to_owned()),
        "{args:?}"
    );
    assert!(!alive(pids[0]), "the dead process was reaped");
    // A process that prints garbage and exits is restarted once, then failed.
    let report = host
        .chat(
            "assistant",
            &message(9, "#garbage"),
            Default::default(),
            None,
            None,
        )
        .await
        .unwrap();
    let reply = report.result.unwrap().unwrap().text;
    assert!(
        reply.starts_with("Claude could not answer: claude died twice: it ended without a result; it printed: Error: something unexpected happened"),
        "{reply}"
    );
    // Another chat is another session and process.
    assert!(chat(&host, 8, "hi").await.ends_with("earlier: []"));
    assert_eq!(host.claude().live_processes().await.len(), 2);
    host.claude().shutdown().await;
    for pid in pids {
        assert!(!alive(pid));
    }
}

#[tokio::test]
async fn the_chat_plugin_through_one_shot_cli_continues_the_chat_and_says_when_over_budget() {
    let setup = claude_setup("", vec![assistant("", "backends = [\"cli\"]\ndaily_usd = 0.02")]);
    let host = setup.host().await;
    assert_eq!(
        chat(&host, 4, "hello").await,
        "fake claude heard \"hello\"; earlier: []"
    );
    assert_eq!(
        chat(&host, 4, "and you?").await,
        "fake claude heard \"and you?\"; earlier: [\"hello\"]"
    );
    assert_eq!(
        chat(&host, 4, "one more").await,
        "I can't ask Claude right now: plugin `assistant`'s daily budget of $0.02 is spent ($0.0250 today)."
    );
    let args = spawns(&setup);
    assert_eq!(
        args.len(),
        2,
        "one process per answered message, none for the refused one"
    );
    assert!(
        args.iter()
            .all(|a| a.contains(&"--output-format=json".to_owned())),
        "{args:?}"
    );
}

#[tokio::test]
async fn persistent_processes_are_capped_and_stopped_when_idle_then_resumed() {
    let setup = claude_setup(
        "max_concurrent = 1\n[claude.persistent]\nidle = \"400ms\"\nmax_processes = 1",
        vec![assistant("", "backends = [\"persistent\"]")],
    );
    let host = setup.host().await;
    chat(&host, 1, "one").await;
    let first = host.claude().live_processes().await;
    chat(&host, 2, "two").await;
    let second = host.claude().live_processes().await;
    assert_eq!(second.len(), 1, "the cap is one process");
    assert_ne!(first, second, "chat 1's process made room for chat 2's");
    assert!(!alive(first[0]));
    // Idle past `idle`: stopped.
    let claude = host.claude();
    wait_for_async("the idle process stopped", Duration::from_secs(10), || async {
        let live = claude.live_processes().await;
        if live.is_empty() {
            Ok(())
        } else {
            Err(live)
        }
    })
    .await;
    // Chat 1 comes back: its session is resumed in a new process.
    assert_eq!(
        chat(&host, 1, "still there?").await,
        "fake claude heard \"still there?\"; earlier: [\"one\"]"
    );
    assert_eq!(spawns(&setup).len(), 3);
}

#[tokio::test]
async fn a_session_the_cli_lost_is_started_afresh_for_both_cli_backends() {
    for backend in ["cli", "persistent"] {
        let setup = claude_setup(
            "",
            vec![ask(
                "ask",
                "backends = [\"cli\", \"persistent\"]",
                &format!("prompt = \"hi\", backend = \"{backend}\", session_key = \"k\""),
            )],
        );
        let host = setup.host().await;
        let first = run(&host, "ask").await;
        let session = field(&first, "session").to_owned();
        host.claude().shutdown().await;
        std::fs::remove_file(workdir(&setup).join("sessions").join(&session)).unwrap();
        let again = run(&host, "ask").await;
        assert_eq!(
            field(&again, "text"),
            "fake claude heard \"hi\"; earlier: []",
            "{backend}"
        );
        assert_ne!(field(&again, "session"), session);
        let third = run(&host, "ask").await;
        assert!(
            field(&third, "text").ends_with("earlier: [\"hi\"]"),
            "{backend}: {third:?}"
        );
    }
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_wait_their_turn() {
    let setup = claude_setup(
        "max_concurrent = 1",
        vec![
            ask("one", "", "prompt = \"#sleep=300\""),
            ask("two", "", "prompt = \"#sleep=300\""),
        ],
    );
    let host = setup.host().await;
    let (one, two) = tokio::join!(run(&host, "one"), run(&host, "two"));
    assert_eq!(
        (one.outcome.as_str(), two.outcome.as_str()),
        ("succeeded", "succeeded")
    );
    let starts: Vec<u64> = std::fs::read_to_string(workdir(&setup).join("spawns.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["at_ms"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(
        starts[1] >= starts[0] + 300,
        "the second started before the first ended: {starts:?}"
    );
}

#[tokio::test]
async fn a_call_waiting_in_line_sees_what_the_call_ahead_spent() {
    let setup = claude_setup(
        "max_concurrent = 1\n[claude.budget]\ndaily_usd = 0.01",
        vec![
            ask("one", "", "prompt = \"#sleep=300\""),
            ask("two", "", "prompt = \"#sleep=300\""),
        ],
    );
    let host = setup.host().await;
    let (one, two) = tokio::join!(run(&host, "one"), run(&host, "two"));
    let mut outcomes = [one.outcome.as_str(), two.outcome.as_str()];
    outcomes.sort();
    assert_eq!(outcomes, ["failed", "succeeded"], "{one:?} {two:?}");
    let refused = if one.outcome == RunOutcome::Failed {
        &one
    } else {
        &two
    };
    assert!(
        refused.error.as_deref().unwrap().contains("over budget: "),
        "{refused:?}"
    );
    assert_eq!(spawns(&setup).len(), 1);
}

#[tokio::test]
async fn a_changed_claude_section_applies_to_the_next_call() {
    let plugins = || vec![ask("ask", "", "prompt = \"hi\"")];
    let setup = claude_setup("model = \"claude-haiku-4-5\"", plugins());
    let host = setup.host().await;
    run(&host, "ask").await;
    write_config(&setup, "model = \"claude-sonnet-4-5\"", plugins());
    let notes = host
        .apply_config(mission::config::Config::load(&setup.config_path()).unwrap())
        .await;
    assert!(notes.iter().any(|n| n.contains("[claude] changed")), "{notes:?}");
    run(&host, "ask").await;
    let models: Vec<_> = spawns(&setup)
        .into_iter()
        .map(|args| args.into_iter().find(|a| a.starts_with("--model=")).unwrap())
        .collect();
    assert_eq!(models, ["--model=claude-haiku-4-5", "--model=claude-sonnet-4-5"]);
}

#[tokio::test]
async fn granted_tools_turns_and_mcp_servers_reach_the_cli_as_single_flags() {
    let setup = claude_setup(
        "",
        vec![ask(
            "ask",
            "tools = [\"WebSearch\", \"Read\"]\nmax_turns = 4\nmcp_config = \"mcp.json\"",
            "prompt = \"hi\", tools = \"WebSearch,Read\", max_turns = 9, system = \"--dangerously-skip-permissions\"",
        )],
    );
    // The CLI reads the file at start, as the real one does.
    setup.file("mcp.json", br#"{"mcpServers": {}}"#);
    let host = setup.host().await;
    assert_eq!(run(&host, "ask").await.outcome, RunOutcome::Succeeded);
    let args = spawns(&setup).remove(0);
    let mcp = format!("--mcp-config={}", setup.dir.path().join("mcp.json").display());
    for expected in [
        "--tools=WebSearch,Read",
        "--allowed-tools=WebSearch,Read",
        "--max-turns=4",
        "--strict-mcp-config",
        "--system-prompt=--dangerously-skip-permissions",
        mcp.as_str(),
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} not in {args:?}");
    }
    assert!(
        !args.iter().any(|a| a == "--dangerously-skip-permissions"),
        "{args:?}"
    );
}

#[tokio::test]
async fn a_hanging_claude_is_killed_with_its_process_group_at_the_deadline() {
    for backend in ["cli", "persistent"] {
        let setup = claude_setup(
            "",
            vec![ask(
                "ask",
                "backends = [\"cli\", \"persistent\"]\ntimeout = \"1s\"",
                &format!(
                    "prompt = \"#hang\", backend = \"{backend}\", session_key = \"k\", timeout_ms = 60000"
                ),
            )],
        );
        let host = setup.host().await;
        let record = run(&host, "ask").await;
        assert_eq!(record.outcome, RunOutcome::Failed);
        assert_eq!(
            record.error.as_deref(),
            Some("the plugin returned an error: timed out"),
            "{backend}"
        );
        let pids = std::fs::read_to_string(workdir(&setup).join("hang.pids")).unwrap();
        let pids: Vec<u32> = pids.split(' ').map(|p| p.parse().unwrap()).collect();
        assert!(!exists(pids[0]), "{backend}: the CLI was not reaped");
        // The grandchild is no longer ours to reap, but it must not run.
        wait_until_not_alive(pids[1]);
        // The host serves the next call.
        assert!(host.claude().live_processes().await.is_empty());
    }
}

#[tokio::test]
async fn a_plugin_cut_off_by_its_own_deadline_leaves_no_claude_behind() {
    for backend in ["cli", "persistent"] {
        let setup = claude_setup(
            "",
            vec![PluginSpec::task("ask", guest("ask"))
                .with("grants = [\"claude\"]\ntimeout = \"1s\"")
                .with(&format!(
                    "config = {{ prompt = \"#hang\", backend = \"{backend}\", session_key = \"k\" }}"
                ))
                .with("[plugins.ask.claude]\nbackends = [\"cli\", \"persistent\"]")],
        );
        let host = setup.host().await;
        let record = run(&host, "ask").await;
        assert_eq!(record.outcome, RunOutcome::TimedOut, "{backend}: {record:?}");
        let pids = std::fs::read_to_string(workdir(&setup).join("hang.pids")).unwrap();
        for pid in pids.split(' ').map(|p| p.parse::<u32>().unwrap()) {
            wait_until_not_alive(pid);
        }
        // The dropped call's process was not kept for the session.
        assert!(host.claude().live_processes().await.is_empty(), "{backend}");
        // The ledger has the call, as cancelled.
        let setup = &setup;
        wait_for_async(
            &format!("{backend}: the cancelled call in the ledger"),
            Duration::from_secs(5),
            || async move {
                let cost = cost_json(setup, &[]);
                if cost["total"]["failed"] == 1 {
                    Ok(())
                } else {
                    Err(cost)
                }
            },
        )
        .await;
        let cli = pids.split(' ').next().unwrap().parse::<u32>().unwrap();
        wait_for_async(
            &format!("{backend}: the CLI reaped"),
            Duration::from_secs(5),
            || async move {
                if exists(cli) {
                    Err(cli)
                } else {
                    Ok(())
                }
            },
        )
        .await;
    }
}

#[tokio::test]
async fn an_answer_is_taken_at_its_result_even_if_the_cli_leaves_a_process_behind() {
    let setup = claude_setup("timeout = \"20s\"", vec![ask("ask", "", "prompt = \"#linger\"")]);
    let host = setup.host().await;
    let record = run(&host, "ask").await;
    assert_eq!(record.outcome, RunOutcome::Succeeded, "{record:?}");
    let lingering: u32 = std::fs::read_to_string(workdir(&setup).join("linger.pid"))
        .unwrap()
        .parse()
        .unwrap();
    wait_until_not_alive(lingering);
}

#[tokio::test]
async fn garbage_errors_and_crashes_are_failures_that_say_why() {
    let cases = [
        (
            "#garbage",
            "claude gave no result (exit status: 0): Error: something unexpected happened",
        ),
        (
            "#error",
            "the API answered 400: API Error: 400 fake invalid_request_error",
        ),
        ("#die", "claude gave no result (exit status: 3)"),
        ("#flood", "claude printed more than 64KiB and was stopped"),
        ("#turns=5", "the CLI reported `error_max_turns`"),
    ];
    let plugins = cases
        .iter()
        .enumerate()
        .map(|(i, (prompt, _))| {
            ask(
                &format!("ask{i}"),
                "max_turns = 2",
                &format!("prompt = {prompt:?}"),
            )
        })
        .collect();
    let setup = claude_setup("max_output = \"64KiB\"", plugins);
    let host = setup.host().await;
    for (i, (prompt, reason)) in cases.iter().enumerate() {
        let record = run(&host, &format!("ask{i}")).await;
        let error = record.error.unwrap_or_default();
        assert!(error.contains(&format!("failed: {reason}")), "{prompt}: {error}");
    }
    let report = cost_json(&setup, &[]);
    assert_eq!(report["total"]["failed"], cases.len());
}

#[tokio::test]
async fn a_spent_budget_refuses_the_call_before_spawning() {
    let setup = claude_setup(
        "[claude.budget]\nmonthly_usd = 100.0",
        vec![ask("ask", "daily_usd = 0.02", "prompt = \"hi\"")],
    );
    let host = setup.host().await;
    assert_eq!(run(&host, "ask").await.outcome, RunOutcome::Succeeded);
    assert_eq!(run(&host, "ask").await.outcome, RunOutcome::Succeeded);
    let refused = run(&host, "ask").await;
    assert_eq!(
        refused.error.as_deref(),
        Some("the plugin returned an error: over budget: plugin `ask`'s daily budget of $0.02 is spent ($0.0250 today)")
    );
    let args = spawns(&setup);
    assert_eq!(args.len(), 2, "no process for the refused call");
    assert!(
        args[1].contains(&"--max-budget-usd=0.0075".to_owned()),
        "the CLI is capped at what is left: {args:?}"
    );
    let report = cost_json(&setup, &["--since", "1d"]);
    assert_eq!(report["total"]["calls"], 2);
    assert_eq!(report["total"]["refused"], 1);
    assert!((report["today_usd"].as_f64().unwrap() - 0.025).abs() < 1e-9);
    let table = text(&setup.mission(&["cost", "--by", "day"])).0;
    assert!(
        table.contains("today $0.0") && table.contains("month projected $"),
        "{table}"
    );
}

#[tokio::test]
async fn a_plugin_without_the_grant_or_asking_past_it_is_denied_without_a_process() {
    let setup = claude_setup(
        "",
        vec![
            PluginSpec::task("nogrant", guest("ask")).with("grants = [\"state\"]"),
            ask(
                "ask",
                "models = [\"claude-haiku-4-5\"]",
                "model = \"claude-opus-4-8\"",
            ),
            ask("tools", "", "tools = \"Bash\""),
        ],
    );
    let host = setup.host().await;
    let record = run(&host, "nogrant").await;
    assert_eq!(
        record.error.as_deref(),
        Some("the plugin returned an error: denied: plugin `nogrant` has no `claude` grant in its config")
    );
    let record = run(&host, "ask").await;
    assert!(record
        .error
        .unwrap()
        .contains("model `claude-opus-4-8` is not granted (allowed: `claude-haiku-4-5`)"));
    let record = run(&host, "tools").await;
    assert!(record
        .error
        .unwrap()
        .contains("tool `Bash` is not granted (allowed: none)"));
    assert!(spawns(&setup).is_empty());
}

#[test]
fn the_cli_gets_only_the_environment_the_config_names() {
    let setup = claude_setup("", vec![ask("ask", "", "prompt = \"#env\"")]);
    let output = setup
        .command(&["run", "--json", "ask"])
        .env("MISSION_TEST_SECRET", "hunter2")
        .env("HOME", setup.dir.path())
        .output()
        .unwrap();
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary = record["summary"].as_str().unwrap_or_else(|| panic!("{record}"));
    assert!(summary.starts_with("text=env: HOME|"), "{summary}");
}

#[test]
fn the_api_backend_carries_the_conversation_and_caches_the_system_prompt() {
    let api = FakeAnthropic::start();
    let setup = Setup::new();
    let claude = format!(
        "backend = \"api\"\nmodel = \"claude-sonnet-4-5\"\n[claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\n\
         [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30",
        api.url
    );
    write_config(
        &setup,
        &claude,
        vec![assistant(
            "system = \"You are a terse assistant for a small business.\"",
            "",
        )],
    );
    let say = |text: &str| {
        let output = setup
            .command(&["chat", "assistant", text, "--chat-id", "5"])
            .env(KEY_ENV, API_KEY)
            .output()
            .unwrap();
        assert!(output.status.success(), "{:?}", crate::support::text(&output));
        crate::support::text(&output).0.trim().to_owned()
    };
    assert_eq!(say("hi"), "fake api heard \"hi\"; messages: 1");
    assert_eq!(say("and now?"), "fake api heard \"and now?\"; messages: 3");
    let requests = api.requests();
    assert_eq!(requests[1]["messages"][0]["content"], "hi");
    assert_eq!(requests[1]["messages"][1]["role"], "assistant");
    assert_eq!(requests[1]["system"][0]["cache_control"]["type"], "ephemeral");
    let report = cost_json(&setup, &[]);
    let total = &report["total"];
    assert_eq!(total["calls"], 2);
    assert!(total["cache_write_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        total["cache_read_tokens"], total["cache_write_tokens"],
        "written once, read once"
    );
    assert!(total["cost_usd"].as_f64().unwrap() > 0.0);
}

#[test]
fn the_api_backend_streams_and_retries_429_and_529_after_retry_after() {
    let api = FakeAnthropic::start();
    let setup = Setup::new();
    let claude = format!(
        "backend = \"api\"\nmodel = \"claude-sonnet-4-5\"\n[claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\nstream = true\n\
         [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30",
        api.url
    );
    write_config(&setup, &claude, vec![ask("ask", "", "prompt = \"streamed\"")]);
    let run = || {
        let output = setup
            .command(&["run", "--json", "ask"])
            .env(KEY_ENV, API_KEY)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    api.fail_next(Fault::Status(429, "rate_limit_error", Some("1")));
    api.fail_next(Fault::Status(529, "overloaded_error", None));
    let record = run();
    let summary = record["summary"].as_str().unwrap_or_else(|| panic!("{record}"));
    assert!(
        summary.starts_with("text=fake api heard \"streamed\"; messages: 1|"),
        "{summary}"
    );
    assert_eq!(api.requests().len(), 3);
    assert_eq!(api.requests()[2]["stream"], true);
    // An error event inside a 200 stream, then a request the API refuses.
    api.fail_next(Fault::StreamError);
    let record = run();
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("the API sent an error mid-answer: overloaded_error"),
        "{record}"
    );
    api.fail_next(Fault::Status(400, "invalid_request_error", None));
    let record = run();
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("the API answered 400 invalid_request_error"),
        "{record}"
    );
    // An API that cannot be reached.
    let unreachable = claude.replace(&api.url, "http://127.0.0.1:9");
    write_config(
        &setup,
        &unreachable,
        vec![ask("ask", "", "prompt = \"streamed\"")],
    );
    let record = run();
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("the API could not be reached"),
        "{record}"
    );
    write_config(&setup, &claude, vec![ask("ask", "", "prompt = \"streamed\"")]);
    // Without the key in the environment nothing is sent.
    let sent = api.requests().len();
    let output = setup.mission(&["run", "--json", "ask"]);
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(record["error"].as_str().unwrap().contains(KEY_ENV), "{record}");
    assert_eq!(api.requests().len(), sent);
}

#[test]
fn over_telegram_the_chat_keeps_its_session_reports_cost_and_reset_starts_afresh() {
    let telegram = FakeTelegram::start();
    let (setup, host) = BotHost::on(&telegram)
        .handler("assistant")
        .claude("[claude.budget]\nmonthly_usd = 10.0")
        .up(vec![assistant("", "backends = [\"persistent\"]")]);
    telegram.send_text(3, 100, "hi");
    telegram.send_text(3, 100, "again");
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(replies[1], "fake claude heard \"again\"; earlier: [\"hi\"]");
    telegram.send_text(3, 100, "/cost");
    let cost = &telegram.wait_for_messages(3, 3)[2];
    assert!(
        cost.starts_with("Claude: today $0.0")
            && cost.contains("this month $0.03 of $10.00 (0%) (2 calls")
            && cost.contains("the month ends near $"),
        "{cost}"
    );
    telegram.send_text(3, 100, "/status");
    let status = &telegram.wait_for_messages(3, 4)[3];
    assert!(
        status.contains("Claude: 1 persistent session process(es) running."),
        "{status}"
    );
    telegram.send_text(3, 100, "/reset");
    telegram.send_text(3, 100, "fresh");
    let replies = telegram.wait_for_messages(3, 6);
    assert_eq!(replies[4], "History cleared: I start afresh.");
    assert_eq!(replies[5], "fake claude heard \"fresh\"; earlier: []");
    assert_eq!(spawns(&setup).len(), 2, "reset stopped the session's process");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn check_names_a_missing_cli_api_key_and_price() {
    let setup = Setup::new();
    setup.config_with(
        &format!(
            "[claude]\ncommand = \"no-such-claude-cli\"\nmodel = \"claude-sonnet-4-5\"\n[claude.api]\nkey_env = \"{KEY_ENV}\""
        ),
        vec![ask("ask", "backends = [\"cli\", \"api\"]", "prompt = \"hi\"")],
    );
    let output = setup.mission(&["check"]);
    let (stdout, _) = text(&output);
    assert!(!output.status.success());
    assert!(
        stdout.contains("claude.command: `no-such-claude-cli` is not an executable file or not on PATH"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "claude.api.key_env: the environment variable `{KEY_ENV}` is not set"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("claude.prices: model `claude-sonnet-4-5` has no price"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: plugins.ask.timeout (30s) is shorter than its Claude deadline (2m)"),
        "{stdout}"
    );
    let setup = claude_setup("", vec![ask("ask", "", "prompt = \"hi\"")]);
    let output = setup.mission(&["check"]);
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(
        text(&output).0.contains("claude: ok, the CLI is "),
        "{:?}",
        text(&output)
    );
}

#[test]
fn a_reply_given_before_a_crash_is_sent_after_restart_without_asking_claude_again() {
    let telegram = FakeTelegram::start();
    let setup = claude_bot(&telegram).setup(vec![assistant("", "backends = [\"cli\"]")]);
    // Telegram fails the first two sends; the host dies after the first.
    let bad_gateway = serde_json::json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
    telegram.fail_next("sendMessage", 502, bad_gateway.clone());
    telegram.fail_next("sendMessage", 502, bad_gateway);
    let host = up(&setup);
    telegram.send_text(3, 100, "hello");
    telegram.wait_for(|c| c.method == "sendMessage" && c.failed); // a send was tried
    host.signal("-KILL");
    host.wait();
    assert!(telegram.messages(3).is_empty());
    let host = up(&setup);
    assert_eq!(
        telegram.wait_for_messages(3, 1),
        ["fake claude heard \"hello\"; earlier: []"]
    );
    assert_eq!(spawns(&setup).len(), 1, "Claude was asked once");
    drop(host);
}

/// Whether `pid` exists at all (a zombie exists).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit(')')
                .next()
                .map(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Waits (up to 5 s) until `pid` no longer runs.
fn wait_until_not_alive(pid: u32) {
    wait_for(&format!("process {pid} to end"), Duration::from_secs(5), || {
        if alive(pid) {
            Err("still runs")
        } else {
            Ok(())
        }
    });
}

/// The texts the host queued for Telegram itself (alerts), oldest first.
fn queued_alerts(setup: &Setup) -> Vec<String> {
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let mut statement = db.prepare("SELECT text FROM outbox ORDER BY id").unwrap();
    let texts = statement.query_map([], |row| row.get(0)).unwrap();
    texts.map(Result::unwrap).collect()
}

/// `[claude.credit]` of $0.03 (each fake call costs $0.0125) with `then`,
/// alerts queued for chat 100, and the `ask` task through `backends`.
fn credit_setup(then: &str, backends: &str, api: &FakeAnthropic) -> Setup {
    BotHost::offline()
        .claude(&format!(
            "model = \"claude-sonnet-4-5\"\n[claude.budget]\ndaily_usd = 0.04\n\
             [claude.credit]\nmonthly_usd = 0.03\nthen = \"{then}\"\n\
             [claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\n\
             [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30",
            api.url
        ))
        .tables("[alerts]\nchat = 100")
        .setup(vec![
            ask("ask", &format!("backends = [{backends}]"), "prompt = \"hi\""),
            PluginSpec::chat("chat", guest("chat_fixture")),
        ])
}

fn run_with_key(setup: &Setup) -> (bool, Value) {
    let output = setup
        .command(&["run", "--json", "ask"])
        .env(KEY_ENV, API_KEY)
        .output()
        .unwrap();
    let record = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no record ({e}): {:?}", text(&output)));
    (output.status.success(), record)
}

#[test]
fn a_spent_agent_sdk_credit_stops_cli_calls_before_spawning_and_is_told_at_50_80_and_100_percent() {
    let api = FakeAnthropic::start();
    let setup = credit_setup("stop", "\"cli\"", &api);
    for _ in 0..3 {
        assert!(run_with_key(&setup).0);
    }
    let (ok, refused) = run_with_key(&setup);
    assert!(!ok);
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("over budget: the Agent SDK credit of $0.03 is spent until ")
            && error.contains("calls through the claude CLI stop until then (claude.credit.then = \"stop\")"),
        "{error}"
    );
    assert_eq!(spawns(&setup).len(), 3, "no process for the refused call");
    let report = cost_json(&setup, &[]);
    let credit = &report["credit"];
    assert!(
        (credit["used_usd"].as_f64().unwrap() - 0.0375).abs() < 1e-9,
        "{credit}"
    );
    assert_eq!(credit["left_usd"], 0.0);
    assert_eq!(credit["by_plugin"][0]["plugin"], "ask");
    let table = text(&setup.mission(&["cost"])).0;
    assert!(
        table.contains("Agent SDK credit: $0.04 of $0.03 used (125%), $0.00 left until "),
        "{table}"
    );

    // The second call crossed 50 and 80 % of the credit at once: only 80 %
    // is told. The third crossed the daily budget's 80 % ($0.0375 of $0.04)
    // and the credit's 100 %.
    let alerts = queued_alerts(&setup);
    assert_eq!(alerts.len(), 3, "the highest level crossed, once: {alerts:?}");
    assert!(
        alerts[0].starts_with("💳 80 % of the Agent SDK credit is used. Agent SDK credit: ")
            && alerts[0].contains("used (83%)"),
        "{alerts:?}"
    );
    assert_eq!(
        alerts[1],
        "💸 Claude: the daily budget of all plugins of $0.04 is 80 % spent ($0.04 today)."
    );
    assert!(
        alerts[2].starts_with("💳 The Agent SDK credit is spent. ")
            && alerts[2].contains("used (125%)")
            && alerts[2].ends_with("Calls through the claude CLI stop until it resets."),
        "{alerts:?}"
    );
}

#[test]
fn a_spent_credit_sends_calls_to_the_api_where_the_grant_allows_it_or_lets_them_continue() {
    let api = FakeAnthropic::start();
    let setup = credit_setup("api", "\"cli\", \"api\"", &api);
    for _ in 0..3 {
        assert!(run_with_key(&setup).0);
    }
    assert!(api.requests().is_empty());
    let (ok, record) = run_with_key(&setup);
    assert!(ok, "{record}");
    assert_eq!(api.requests().len(), 1, "the fourth call went to the API");
    assert_eq!(spawns(&setup).len(), 3);
    assert_eq!(cost_json(&setup, &["--by", "plugin"])["total"]["calls"], 4);

    // Without the api backend in the grant, `api` refuses by name.
    let api = FakeAnthropic::start();
    let setup = credit_setup("api", "\"cli\"", &api);
    for _ in 0..3 {
        assert!(run_with_key(&setup).0);
    }
    let (ok, refused) = run_with_key(&setup);
    assert!(!ok);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("and plugin `ask`'s grant does not allow the api backend to take over"),
        "{refused}"
    );

    // `continue`: extra usage, the CLI goes on.
    let setup = credit_setup("continue", "\"cli\"", &api);
    for _ in 0..4 {
        assert!(run_with_key(&setup).0);
    }
    assert_eq!(spawns(&setup).len(), 4);
    let alerts = queued_alerts(&setup);
    assert!(
        alerts
            .iter()
            .any(|a| a.contains("used (125%)") && a.ends_with("Calls go on as extra usage at API rates.")),
        "{alerts:?}"
    );
}

#[test]
fn stop_interrupts_the_persistent_turn_and_the_chat_goes_on_with_the_next_message() {
    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"persistent\"");
    telegram.send_text(3, 100, "a long job #work");
    telegram.send_text(3, 100, "then this");
    wait_for_spawns(&setup, 1); // the turn runs: its /stop is registered before the spawn
    telegram.send_text(3, 100, "/stop");
    let replies = telegram.wait_for_messages(3, 3);
    assert_eq!(
        replies[0],
        "⏹ Stopping Claude's answer. Messages you sent meanwhile are answered next."
    );
    assert_eq!(
        replies[1],
        "Claude could not answer: stopped by /stop in the chat"
    );
    // The process was interrupted, not killed: the same one answers next,
    // in the same session.
    assert!(
        replies[2].starts_with("fake claude heard \"then this\"; earlier: "),
        "{replies:?}"
    );
    assert_eq!(spawns(&setup).len(), 1, "{:?}", spawns(&setup));
    let calls = cost_json(&setup, &[]);
    assert_eq!(calls["total"]["calls"], 2);
    assert!(calls["total"]["failed"].as_u64().unwrap() >= 1, "{calls}");
    telegram.send_text(3, 100, "/stop");
    assert_eq!(
        telegram.wait_for_messages(3, 4)[3],
        "Nothing is running here to stop."
    );
    drop(host);
}

#[test]
fn stop_kills_a_one_shot_cli_and_a_persistent_one_deaf_to_its_interrupt() {
    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"cli\"");
    telegram.send_text(3, 100, "wait forever #hang");
    let pids = workdir(&setup).join("hang.pids");
    wait_for("the CLI to start", Duration::from_secs(20), || {
        match pids.exists() {
            true => Ok(()),
            false => Err(spawns(&setup)),
        }
    });
    telegram.send_text(3, 100, "/stop");
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(
        replies[1],
        "Claude could not answer: stopped by /stop in the chat"
    );
    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    wait_for(
        "the CLI and its child gone",
        Duration::from_secs(5),
        || match pids.iter().filter(|pid| alive(**pid)).collect::<Vec<_>>() {
            running if running.is_empty() => Ok(()),
            running => Err(running),
        },
    );
    drop(host);

    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"persistent\"");
    telegram.send_text(3, 100, "ignore me #work-deaf");
    wait_for_spawns(&setup, 1); // the turn runs: its /stop is registered before the spawn
    telegram.send_text(3, 100, "/stop");
    let replies = telegram.wait_for_messages(3, 2);
    assert_eq!(
        replies[1],
        "Claude could not answer: stopped by /stop in the chat"
    );
    telegram.send_text(3, 100, "still there?");
    let replies = telegram.wait_for_messages(3, 3);
    assert!(
        replies[2].starts_with("fake claude heard \"still there?\""),
        "{replies:?}"
    );
    assert_eq!(
        spawns(&setup).len(),
        2,
        "the deaf process was killed and a new one started"
    );
    drop(host);
}

/// What the fake answers to `#long=N`.
fn long_answer(n: usize) -> String {
    let words: String = (1..2000).map(|i| format!("word{i} ")).collect();
    words.chars().take(n).collect::<String>().trim_end().to_owned()
}

#[test]
fn claude_s_text_is_shown_as_a_throttled_draft_while_written_and_the_reply_goes_once_whole() {
    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"persistent\"");
    // 40 deltas of 20 characters, 60 ms apart: about 2.4 s of writing.
    telegram.send_text(3, 100, "#long=800 #pace=60");
    let replies = telegram.wait_for_messages(3, 1);
    let whole = long_answer(800);
    assert_eq!(replies, std::slice::from_ref(&whole), "the reply, whole and once");
    let drafts = telegram.calls_of("sendMessageDraft", 3);
    assert!(
        (2..=4).contains(&drafts.len()),
        "about one draft a second: {}",
        drafts.len()
    );
    for pair in drafts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(900),
            "drafts throttled to one a second"
        );
        let (earlier, later) = (pair[0].as_read().unwrap(), pair[1].as_read().unwrap());
        assert!(later.len() > earlier.len() && whole.starts_with(earlier.trim_end()));
    }
    let first_id = drafts[0].draft_id.unwrap();
    assert!(first_id != 0 && drafts.iter().all(|d| d.draft_id == Some(first_id)));
    let reply = telegram.calls_of("sendMessage", 3).pop().unwrap();
    assert!(
        reply.at > drafts.last().unwrap().at,
        "the reply follows the drafts"
    );
    assert!(
        spawns(&setup)[0].contains(&"--include-partial-messages".to_owned()),
        "the streaming plugin's CLI prints partial messages"
    );
    drop(host);
}

#[test]
fn the_api_backend_s_streamed_text_is_shown_as_a_draft_while_written() {
    let api = FakeAnthropic::start();
    let telegram = FakeTelegram::start();
    let (_setup, host) = api_chat_host(&api, &telegram, "stream = true", "stream_every = \"500ms\"");
    // Ten deltas a quarter of a second apart: about 3 s of writing.
    telegram.send_text(3, 100, "write slowly #pace");
    let whole = "fake api heard \"write slowly #pace\"; messages: 1";
    assert_eq!(telegram.wait_for_messages(3, 1), [whole]);
    let drafts = telegram.calls_of("sendMessageDraft", 3);
    assert!(drafts.len() >= 2, "drafts while it was written: {}", drafts.len());
    for pair in drafts.windows(2) {
        let (earlier, later) = (pair[0].as_read().unwrap(), pair[1].as_read().unwrap());
        assert!(
            later.len() > earlier.len() && whole.starts_with(earlier.trim_end()),
            "{earlier:?} then {later:?}"
        );
    }
    let reply = telegram.calls_of("sendMessage", 3).pop().unwrap();
    assert!(
        reply.at > drafts.last().unwrap().at,
        "the reply follows the drafts"
    );
    drop(host);
}

#[test]
fn in_a_group_the_text_is_shown_in_an_edited_placeholder_removed_before_the_reply() {
    let telegram = FakeTelegram::start();
    let (_setup, host) = chat_host(&telegram, "\"persistent\"");
    // About 4.5 s of writing: the group's limit (3 s) allows a second look.
    telegram.send_text(-5, 100, "#long=600 #pace=150");
    let deleted = telegram.wait_for(|c| c.method == "deleteMessage" && c.chat_id == -5);
    let replies = telegram.wait_for_messages(-5, 2);
    let whole = long_answer(600);
    assert_eq!(replies[1], whole, "the reply, whole, after the placeholder");
    let placeholder = telegram.calls_of("sendMessage", -5)[0].clone();
    assert!(whole.starts_with(placeholder.text.as_deref().unwrap()));
    let edits = telegram.calls_of("editMessageText", -5);
    assert!(!edits.is_empty() && edits.iter().all(|e| e.message_id == placeholder.message_id));
    assert!(
        edits[0].at - placeholder.at >= Duration::from_millis(2900),
        "groups: 3 s apart"
    );
    assert_eq!(deleted.message_id, placeholder.message_id);
    assert!(telegram.calls_of("sendMessageDraft", -5).is_empty());
    drop(host);
}

#[test]
fn a_kill_mid_stream_loses_nothing_the_placeholder_goes_and_the_answer_comes_after_restart() {
    let telegram = FakeTelegram::start();
    let (setup, host) = chat_host(&telegram, "\"persistent\"");
    telegram.send_text(-5, 100, "#long=1500 #pace=100");
    let placeholder = telegram.wait_for(|c| c.method == "sendMessage" && c.chat_id == -5);
    // Once it is edited, the host has long noted it.
    telegram.wait_for(|c| c.method == "editMessageText" && c.chat_id == -5);
    host.signal("-KILL");
    host.wait();
    let host = up(&setup);
    let deleted = telegram.wait_for(|c| c.method == "deleteMessage" && c.chat_id == -5);
    assert_eq!(
        deleted.message_id, placeholder.message_id,
        "the stale placeholder is removed"
    );
    wait_for("the answer after the restart", Duration::from_secs(60), || {
        let messages = telegram.messages(-5);
        match messages.contains(&long_answer(1500)) {
            true => Ok(()),
            false => Err(messages),
        }
    });
    drop(host);
}

#[test]
fn a_file_claude_wrote_is_sent_with_the_assistant_s_reply() {
    let telegram = FakeTelegram::start();
    let assistant = PluginSpec::chat("assistant", guest("assistant"))
        .with("grants = [\"claude\", \"history\", \"attachments\"]")
        .with("[plugins.assistant.claude]\nbackends = [\"persistent\"]");
    let (_setup, host) = chat_host_with(&telegram, assistant);
    telegram.send_text(3, 100, "the totals as a CSV please #write:totals.csv");
    assert_eq!(telegram.wait_for_messages(3, 1), ["I wrote totals.csv."]);
    let document = telegram.wait_for(|c| c.method == "sendDocument");
    let (name, bytes) = document.file.unwrap();
    assert_eq!(name, "totals.csv");
    assert!(String::from_utf8(bytes)
        .unwrap()
        .starts_with("written by fake claude for: the totals"));
    drop(host);
}
