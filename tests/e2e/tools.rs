//! Plugins as Claude's tools: a tools plugin served to the fake `claude`
//! over MCP (the CLI starts `mission mcp-tools` from the `--mcp-config` the
//! host writes, as the real CLI does in the capture), each call in the
//! sandbox under the tools plugin's own grants, recorded; failures as tool
//! errors while the turn goes on; a tool asked about in the chat first; a
//! reloaded tools plugin serving the next call; the private socket.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::bot_host::{polling, up_command, BotHost};
use crate::fake_telegram::FakeTelegram;
use crate::loopback::Request;
use crate::support::{fake_claude, guest, text, PluginSpec, RunningHost, Setup};

const CRM_TOKEN_ENV: &str = "MISSION_TEST_CRM_TOKEN";
const CRM_TOKEN: &str = "crm-secret-42";
const CHAT: i64 = 3;
const ANNA: u64 = 100;

/// A stand-in for the contacts API: `GET /contacts?q=` and `POST /leads`,
/// only with the key; every request it got.
fn contacts_api() -> (String, Arc<Mutex<Vec<Request>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let url = crate::loopback::serve(move |request: Request| {
        let log = log.clone();
        async move {
            let answer = |status: &str, body: String| {
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
            };
            let authorized = request.header("authorization") == Some(&format!("Bearer {CRM_TOKEN}"));
            let path = request.path().to_owned();
            let body = String::from_utf8_lossy(&request.body).into_owned();
            log.lock().unwrap().push(request);
            if !authorized {
                return answer("401 Unauthorized", r#"{"error":"no key"}"#.into());
            }
            if path.starts_with("/contacts?q=Ada") {
                answer(
                    "200 OK",
                    r#"{"contacts":[{"name":"Ada Lovelace","email":"ada@example.com","plan":"gold"}]}"#
                        .into(),
                )
            } else if path == "/leads" {
                let lead: Value = serde_json::from_str(&body).unwrap_or_default();
                answer(
                    "201 Created",
                    serde_json::json!({"id": 7, "name": lead["name"]}).to_string(),
                )
            } else {
                answer("404 Not Found", r#"{"error":"no such thing"}"#.into())
            }
        }
    });
    (url, seen)
}

/// The contacts example over `api`, which only it may reach, the host
/// adding the key; `extra` lines go in its own table.
fn contacts(api: &str, extra: &str) -> PluginSpec {
    PluginSpec::tools("contacts", guest("contacts"))
        .with("grants = [\"http\"]")
        .with(extra)
        .with(&format!("config = {{ api = \"{api}\" }}"))
        .with(&format!(
            "[plugins.contacts.http]\nallowed = [\"{api}\"]\n\
             [plugins.contacts.http.secrets.\"{api}\"]\nheader = \"Authorization\"\nenv = \"{CRM_TOKEN_ENV}\"\nprefix = \"Bearer \""
        ))
}

/// The assistant on the persistent backend with `grant` lines, the
/// `contacts` tools plugin over `api`, and `more` plugins.
fn tools_setup(telegram: &FakeTelegram, api: &str, grant: &str, more: Vec<PluginSpec>) -> Setup {
    let mut plugins = vec![
        PluginSpec::chat("assistant", guest("assistant"))
            .with("grants = [\"claude\", \"history\"]")
            .with("config = { }")
            .with(&format!(
                "[plugins.assistant.claude]\nbackends = [\"persistent\"]\ntimeout = \"60s\"\n{grant}"
            )),
        contacts(api, "record_contents = true"),
    ];
    plugins.extend(more);
    tools_bot(telegram, "")
        .tables("[web]\nlisten = \"127.0.0.1:0\"")
        .setup(plugins)
}

/// The assistant's bot on `telegram` for Anna, tools asked about for 20 s,
/// and `[claude]` on the fake CLI plus `claude`.
fn tools_bot(telegram: &FakeTelegram, claude: &str) -> BotHost {
    BotHost::on(telegram)
        .users(&[ANNA])
        .handler("assistant")
        .telegram("approval_timeout = \"20s\"")
        .claude(claude)
}

/// `mission up` with the bot token and the CRM's.
fn up_with_crm(setup: &Setup) -> std::process::Command {
    let mut command = up_command(setup);
    command.env(CRM_TOKEN_ENV, CRM_TOKEN);
    command
}

/// `mission up` on `setup`, once its bot polls.
fn up(setup: &Setup) -> RunningHost {
    polling(up_with_crm(setup))
}

/// `mission tools --json`.
fn tools_json(setup: &Setup) -> Value {
    let output = setup.mission(&["tools", "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The `n`th reply in the chat, waiting for it.
fn reply(telegram: &FakeTelegram, n: usize) -> String {
    telegram.wait_for_messages(CHAT, n + 1).remove(n)
}

#[test]
fn claude_lists_and_calls_a_tools_plugin_over_mcp_and_the_host_adds_the_key() {
    let telegram = FakeTelegram::start();
    let (api, seen) = contacts_api();
    let setup = tools_setup(&telegram, &api, "tools_from = [\"contacts\"]", vec![]);
    let host = up(&setup);

    // The CLI lists the tools with their schemas before its first turn.
    telegram.send_text(CHAT, ANNA, "which tools? #mcp-tools");
    let listed = reply(&telegram, 0);
    assert!(
        listed.contains("mcp__contacts__find_contact: Find customers and contacts by name"),
        "{listed}"
    );
    assert!(
        listed.contains(r#""required":["name"]"#)
            && listed.contains("mcp__contacts__add_lead: Record a new sales lead"),
        "{listed}"
    );

    // A call runs in the sandbox: the stand-in gets the host's key.
    telegram.send_text(
        CHAT,
        ANNA,
        r#"look up Ada #tool:contacts.find_contact {"name": "Ada"}"#,
    );
    let answered = reply(&telegram, 1);
    assert_eq!(
        answered,
        r#"fake claude ran mcp__contacts__find_contact and got: {"contacts":[{"name":"Ada Lovelace","email":"ada@example.com","plan":"gold"}]}"#
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request reached the API");
        assert!(
            seen[0].line.starts_with("GET /contacts?q=Ada "),
            "{}",
            seen[0].line
        );
    }
    // The same process served both turns: the tools were listed once.
    let spawns =
        std::fs::read_to_string(setup.dir.path().join("claude-work/.fake-claude/spawns.jsonl")).unwrap();
    assert_eq!(spawns.lines().count(), 1, "{spawns}");

    // Recorded: who called what, for which chat, how big, how it went.
    let listing = tools_json(&setup);
    let contacts = &listing["plugins"][0];
    assert_eq!(contacts["plugin"], "contacts");
    assert_eq!(contacts["callers"], serde_json::json!(["assistant"]));
    let names: Vec<&str> = contacts["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["find_contact", "add_lead"]);
    let call = &listing["calls"][0];
    assert_eq!(call["caller"], "assistant");
    assert_eq!(call["tool"], "find_contact");
    assert_eq!(call["chat"], CHAT);
    assert_eq!(call["outcome"], "ok");
    assert_eq!(call["input_bytes"], r#"{"name":"Ada"}"#.len());
    // Its config says `record_contents = true`: the input and result are kept.
    assert_eq!(call["input"], r#"{"name":"Ada"}"#);
    assert!(
        call["output"].as_str().unwrap().contains("Ada Lovelace"),
        "{call}"
    );
    assert!(call["output_bytes"].as_u64().unwrap() > 50, "{call}");
    // The API's origin is all the tools plugin could reach, and the key
    // was never in the plugin's hands: the HTTP record shows the request,
    // with no secret in it.
    let http = text(&setup.mission(&["http", "--json"])).0;
    assert!(
        http.contains("\"plugin\": \"contacts\"") && !http.contains(CRM_TOKEN),
        "{http}"
    );
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
}

#[test]
fn a_failing_trapping_hanging_or_hungry_tool_is_a_tool_error_and_the_turn_goes_on() {
    let telegram = FakeTelegram::start();
    let (api, _) = contacts_api();
    let toolbox = PluginSpec::tools("toolbox", guest("toolbox"))
        .with("timeout = \"2s\"")
        .with("memory = \"24MiB\"");
    let setup = tools_setup(&telegram, &api, "tools_from = [\"toolbox\"]", vec![toolbox]);
    let mut host = up(&setup);
    // As the chat shows Claude's Markdown: `trap` as code, no backticks.
    let cases = [
        ("fail", "the toolbox failed on purpose"),
        ("trap", "the tool trap of toolbox failed: the plugin trapped"),
        (
            "hang",
            "the tool hang of toolbox failed: the plugin timed out after 2s",
        ),
        (
            "hog",
            "the tool hog of toolbox failed: the plugin ran out of memory",
        ),
    ];
    for (i, (tool, error)) in cases.iter().enumerate() {
        telegram.send_text(CHAT, ANNA, &format!("try #tool:toolbox.{tool} {{}}"));
        let answered = reply(&telegram, i);
        assert!(
            answered.starts_with(&format!(
                "fake claude ran mcp__toolbox__{tool} and got the tool error: {error}"
            )),
            "{tool}: {answered}"
        );
    }
    // The tool still serves; what it sees of the host is nothing.
    telegram.send_text(CHAT, ANNA, r#"#tool:toolbox.echo {"text": "still here"}"#);
    assert_eq!(
        reply(&telegram, 4),
        r#"fake claude ran mcp__toolbox__echo and got: {"text":"still here"}"#
    );
    telegram.send_text(CHAT, ANNA, "#tool:toolbox.snoop {}");
    assert_eq!(
        reply(&telegram, 5),
        "fake claude ran mcp__toolbox__snoop and got: env: []; entries in /: 0"
    );
    // The contacts plugin is not in this grant's tools_from: not offered.
    telegram.send_text(CHAT, ANNA, r#"#tool:contacts.find_contact {"name": "Ada"}"#);
    assert_eq!(
        reply(&telegram, 6),
        "fake claude I have no mcp__contacts__find_contact tool"
    );
    let outcomes: Vec<String> = tools_json(&setup)["calls"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|c| c["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        ["error", "trapped", "timed_out", "out_of_memory", "ok", "ok"]
    );
    // The toolbox does not record contents: sizes only.
    let latest = &tools_json(&setup)["calls"][0];
    assert!(
        latest["input"].is_null() && latest["output"].is_null(),
        "{latest}"
    );
    // The status page shows them, the failed ones marked.
    let page = crate::http_client::get(host.status_page(), "/");
    let table = &page[page.find("id=\"tool-calls\"").expect("a tool calls table")..];
    assert!(
        table.contains("<td>assistant</td><td>toolbox.hog</td><td>out_of_memory</td>"),
        "{table}"
    );
    drop(host);
}

#[test]
fn a_tools_plugin_reaches_only_its_granted_origin_and_never_another_plugin_s_key() {
    let telegram = FakeTelegram::start();
    let (api, seen) = contacts_api();
    // Another server on loopback, which no grant lists.
    let elsewhere_seen = Arc::new(Mutex::new(0usize));
    let counter = elsewhere_seen.clone();
    let elsewhere = crate::loopback::serve(move |_: Request| {
        *counter.lock().unwrap() += 1;
        async { "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_owned() }
    });
    // The toolbox may reach the contacts API's origin, with no secret of
    // its own there; the key for it is the contacts plugin's.
    let toolbox = PluginSpec::tools("toolbox", guest("toolbox"))
        .with("grants = [\"http\"]")
        .with(&format!("[plugins.toolbox.http]\nallowed = [\"{api}\"]"));
    let setup = tools_setup(&telegram, &api, "tools_from = [\"toolbox\"]", vec![toolbox]);
    let host = up(&setup);

    telegram.send_text(
        CHAT,
        ANNA,
        &format!(r#"#tool:toolbox.fetch {{"url": "{elsewhere}/steal"}}"#),
    );
    let refused = reply(&telegram, 0);
    assert!(
        refused.starts_with("fake claude ran mcp__toolbox__fetch and got the tool error: GET ")
            && refused
                .ends_with("/steal: the host refused the request (why: mission http, and the host's log)"),
        "{refused}"
    );
    assert_eq!(
        *elsewhere_seen.lock().unwrap(),
        0,
        "nothing reached the other origin"
    );

    // Its granted origin is reached, but without the contacts plugin's key.
    telegram.send_text(
        CHAT,
        ANNA,
        &format!(r#"#tool:toolbox.fetch {{"url": "{api}/contacts?q=Ada"}}"#),
    );
    assert_eq!(
        reply(&telegram, 1),
        r#"fake claude ran mcp__toolbox__fetch and got: 401: {"error":"no key"}"#
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request reached the API");
        assert_eq!(seen[0].header("authorization"), None);
    }
    // Both are in the HTTP records, under the toolbox, the refusal marked,
    // with the chat the call served.
    let http: Value = serde_json::from_str(&text(&setup.mission(&["http", "--json"])).0).unwrap();
    let records: Vec<(&str, bool, &Value)> = http
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["plugin"].as_str().unwrap(),
                r["denied"].as_bool().unwrap(),
                &r["chat"],
            )
        })
        .collect();
    assert_eq!(
        records,
        [
            ("toolbox", false, &Value::from(CHAT)),
            ("toolbox", true, &Value::from(CHAT))
        ],
        "{http}"
    );
    drop(host);
}

#[test]
fn what_a_tool_spends_on_claude_counts_against_its_caller_s_budget() {
    let telegram = FakeTelegram::start();
    let (api, _) = contacts_api();
    // The toolbox has no budget of its own; the assistant's is $0.02 a day.
    let toolbox = PluginSpec::tools("toolbox", guest("toolbox"))
        .with("grants = [\"claude\"]")
        .with("[plugins.toolbox.claude]\nbackends = [\"cli\"]");
    let grant = "tools_from = [\"toolbox\"]\ndaily_usd = 0.02";
    let setup = tools_setup(&telegram, &api, grant, vec![toolbox]);
    let host = up(&setup);

    // The tool's first question costs $0.03 for the assistant, so its
    // second is refused under the assistant's budget.
    telegram.send_text(
        CHAT,
        ANNA,
        r##"#tool:toolbox.ask {"prompts": ["#cost=0.03 first", "second"]}"##,
    );
    let answered = reply(&telegram, 0);
    assert!(
        answered.starts_with(
            r##"fake claude ran mcp__toolbox__ask and got: fake claude heard "#cost=0.03 first""##
        ) && answered.ends_with(
            " | refused: over budget: plugin assistant's daily budget of $0.02 is spent ($0.0300 today)"
        ),
        "{answered}"
    );
    // The assistant's own turn ($0.03) and its tool's question count
    // against its budget: the next message is refused.
    telegram.send_text(CHAT, ANNA, "and now?");
    assert_eq!(
        reply(&telegram, 1),
        "I can't ask Claude right now: plugin assistant's daily budget of $0.02 is spent ($0.0600 today)."
    );
    // The ledger keeps the tool's question under the toolbox.
    let cost: Value = serde_json::from_str(&text(&setup.mission(&["cost", "--json"])).0).unwrap();
    let toolbox = cost["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "toolbox")
        .unwrap_or_else(|| panic!("{cost}"));
    assert!(
        (toolbox["cost_usd"].as_f64().unwrap() - 0.03).abs() < 1e-9,
        "{cost}"
    );
    assert_eq!(toolbox["refused"], 1, "{cost}");
    // By caller, all of it is the assistant's.
    let by_caller: Value =
        serde_json::from_str(&text(&setup.mission(&["cost", "--by", "caller", "--json"])).0).unwrap();
    let lines: Vec<(&str, f64)> = by_caller["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["key"].as_str().unwrap(), l["cost_usd"].as_f64().unwrap()))
        .collect();
    assert_eq!(lines.len(), 1, "{by_caller}");
    assert_eq!(lines[0].0, "assistant");
    assert!((lines[0].1 - 0.06).abs() < 1e-9, "{by_caller}");
    drop(host);
}

#[test]
fn a_tool_in_ask_tools_is_asked_about_in_the_chat_and_a_deny_never_runs_it() {
    let telegram = FakeTelegram::start();
    let (api, seen) = contacts_api();
    let setup = tools_setup(
        &telegram,
        &api,
        "tools_from = [\"contacts\"]\nask_tools = [\"contacts.add_lead\"]",
        vec![],
    );
    let host = up(&setup);
    let lead = r#"#tool:contacts.add_lead {"name": "Grace", "email": "grace@example.com"}"#;
    telegram.send_text(CHAT, ANNA, lead);
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    let shown = prompt.text.clone().unwrap();
    assert!(shown.contains("wants to use contacts.add_lead"), "{shown}");
    assert!(shown.contains("grace@example.com"), "{shown}");
    telegram.press(CHAT, ANNA, prompt.message_id.unwrap(), &prompt.button("Deny"));
    let denied = reply(&telegram, 0);
    assert!(
        denied.starts_with("fake claude mcp__contacts__add_lead denied"),
        "{denied}"
    );
    assert!(seen.lock().unwrap().is_empty(), "a denied tool reached the API");
    assert_eq!(
        tools_json(&setup)["calls"],
        serde_json::json!([]),
        "a denied tool ran"
    );

    // Allowed once, it runs; find_contact, not in ask_tools, runs outright.
    telegram.send_text(CHAT, ANNA, lead);
    let prompt = telegram.wait_for_prompts(CHAT, 2).remove(1);
    telegram.press(
        CHAT,
        ANNA,
        prompt.message_id.unwrap(),
        &prompt.button("Allow once"),
    );
    assert_eq!(
        reply(&telegram, 1),
        r#"fake claude ran mcp__contacts__add_lead and got: {"id":7,"name":"Grace"}"#
    );
    telegram.send_text(CHAT, ANNA, r#"#tool:contacts.find_contact {"name": "Ada"}"#);
    assert!(reply(&telegram, 2).starts_with("fake claude ran mcp__contacts__find_contact and got:"));
    assert_eq!(
        telegram.wait_for_prompts(CHAT, 2).len(),
        2,
        "find_contact was not asked about"
    );
    drop(host);
}

#[test]
fn a_reloaded_tools_plugin_serves_the_next_call_and_its_new_list_reaches_the_cli() {
    let telegram = FakeTelegram::start();
    let (api, _) = contacts_api();
    let versions = tempfile::tempdir().unwrap();
    let wasm = versions.path().join("calendar.wasm");
    std::fs::copy(guest("toolbox"), &wasm).unwrap();
    let calendar = PluginSpec::tools("calendar", &wasm);
    let setup = tools_setup(&telegram, &api, "tools_from = [\"calendar\"]", vec![calendar]);
    let mut host = up(&setup);
    telegram.send_text(CHAT, ANNA, r#"#tool:calendar.echo {"text": "v1"}"#);
    assert_eq!(
        reply(&telegram, 0),
        r#"fake claude ran mcp__calendar__echo and got: {"text":"v1"}"#
    );

    // A new version with other tools: swapped in without a restart; the
    // CLI gets its list at its next turn (a new process, same session).
    std::fs::write(&wasm, std::fs::read(guest("contacts")).unwrap()).unwrap();
    host.wait_for_log_line(&["plugin reloaded", "calendar"]);
    telegram.send_text(CHAT, ANNA, "#mcp-tools");
    let listed = reply(&telegram, 1);
    assert!(
        listed.contains("mcp__calendar__find_contact") && !listed.contains("mcp__calendar__echo"),
        "{listed}"
    );
    telegram.send_text(CHAT, ANNA, r#"#tool:calendar.echo {"text": "v1"}"#);
    assert_eq!(
        reply(&telegram, 2),
        "fake claude I have no mcp__calendar__echo tool"
    );
    let spawns =
        std::fs::read_to_string(setup.dir.path().join("claude-work/.fake-claude/spawns.jsonl")).unwrap();
    let spawns: Vec<&str> = spawns.lines().collect();
    assert_eq!(spawns.len(), 2, "one process per tool list");
    assert!(
        spawns[1].contains("--resume="),
        "the new process resumes the session: {}",
        spawns[1]
    );
    drop(host);
}

#[test]
fn the_tool_socket_answers_only_a_live_pass_and_the_mcp_config_is_private() {
    use std::io::{BufRead, Write};
    use std::os::unix::fs::PermissionsExt;
    let telegram = FakeTelegram::start();
    let (api, seen) = contacts_api();
    let setup = tools_setup(&telegram, &api, "tools_from = [\"contacts\"]", vec![]);
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "hello #mcp-tools");
    reply(&telegram, 0);
    let run = setup.dir.path().join("data/run");
    assert_eq!(
        std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let entries: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let config = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("an MCP config for the live process");
    assert_eq!(
        std::fs::metadata(config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let socket = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the tool-call socket");
    let ask = |line: &str| {
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        writeln!(stream, "{line}").unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(stream).read_line(&mut answer).unwrap();
        answer
    };
    let answer = ask(
        r#"{"token": "guessed", "plugin": "contacts", "op": "call", "tool": "find_contact", "input": {"name": "Ada"}}"#,
    );
    assert!(answer.contains("no such pass"), "{answer}");
    let answer = ask("not json");
    assert!(answer.contains("not a request"), "{answer}");
    assert!(seen.lock().unwrap().is_empty(), "a guessed pass reached the API");
    // The live process's own pass works only for its own tools plugins.
    let mcp: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let token = mcp["mcpServers"]["contacts"]["env"]["MISSION_TOOLS_TOKEN"]
        .as_str()
        .unwrap();
    let answer = ask(&format!(
        r#"{{"token": "{token}", "plugin": "toolbox", "op": "list"}}"#
    ));
    assert!(answer.contains("not among this pass's tools plugins"), "{answer}");
    // A stopped host leaves neither its socket nor the process's config.
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    let left: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_task_s_claude_call_uses_tools_through_the_cli_backend() {
    let (api, seen) = contacts_api();
    let setup = Setup::new();
    let top = format!(
        "[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\nenv = [\"HOME\"]",
        fake_claude()
    );
    setup.config_with(
        &top,
        vec![
            PluginSpec::task("briefing", guest("ask"))
                .with("grants = [\"claude\"]")
                .with(r#"config = { prompt = "morning briefing #tool:contacts.find_contact {\"name\": \"Ada\"}" }"#)
                .with("[plugins.briefing.claude]\nbackends = [\"cli\"]\ntools_from = [\"contacts\"]"),
            contacts(&api, ""),
        ],
    );
    let mut command = setup.command(&["run", "--json", "briefing"]);
    command.env(CRM_TOKEN_ENV, CRM_TOKEN);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(
            r#"text=fake claude ran mcp__contacts__find_contact and got: {"contacts":[{"name":"Ada Lovelace""#
        ),
        "{summary}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
    let call = &tools_json(&setup)["calls"][0];
    assert_eq!(call["caller"], "briefing");
    assert_eq!(call["run"], record["id"]);
}

#[test]
fn the_api_backend_runs_the_tool_loop_and_asks_about_a_tool_in_ask_tools() {
    use crate::fake_anthropic::{FakeAnthropic, API_KEY, KEY_ENV};
    let telegram = FakeTelegram::start();
    let anthropic = FakeAnthropic::start();
    let (api, seen) = contacts_api();
    let setup = tools_bot(&telegram, &anthropic.claude_lines()).setup(vec![
        PluginSpec::chat("assistant", guest("assistant"))
            .with("grants = [\"claude\", \"history\"]")
            .with("config = { backend = \"api\" }")
            .with(
                "[plugins.assistant.claude]\nbackends = [\"api\"]\ntimeout = \"60s\"\n\
                     tools_from = [\"contacts\"]\nask_tools = [\"contacts.add_lead\"]",
            ),
        contacts(&api, ""),
    ]);
    let mut command = up_with_crm(&setup);
    command.env(KEY_ENV, API_KEY);
    let host = polling(command);

    telegram.send_text(CHAT, ANNA, r#"#tool:contacts.find_contact {"name": "Ada"}"#);
    assert_eq!(
        reply(&telegram, 0),
        r#"fake api ran mcp__contacts__find_contact and got: {"contacts":[{"name":"Ada Lovelace","email":"ada@example.com","plan":"gold"}]}"#
    );
    let requests = anthropic.requests();
    assert_eq!(requests.len(), 2, "the tool use, then its result");
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        ["mcp__contacts__find_contact", "mcp__contacts__add_lead"]
    );
    assert_eq!(
        requests[0]["tools"][0]["input_schema"]["required"],
        serde_json::json!(["name"])
    );
    let sent_back = &requests[1]["messages"];
    assert_eq!(sent_back[1]["role"], "assistant");
    assert_eq!(sent_back[2]["content"][0]["type"], "tool_result");
    assert_eq!(sent_back[2]["content"][0]["is_error"], false);

    // add_lead is asked about first; a deny never runs it, and Claude is told.
    telegram.send_text(
        CHAT,
        ANNA,
        r#"#tool:contacts.add_lead {"name": "Grace", "email": "grace@example.com"}"#,
    );
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    assert!(prompt
        .text
        .as_deref()
        .unwrap()
        .contains("wants to use contacts.add_lead"));
    telegram.press(CHAT, ANNA, prompt.message_id.unwrap(), &prompt.button("Deny"));
    let denied = reply(&telegram, 1);
    assert!(
        denied.starts_with("fake api ran mcp__contacts__add_lead and got the tool error: "),
        "{denied}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "only the lookup reached the contacts API"
    );
    let calls = tools_json(&setup)["calls"].as_array().unwrap().len();
    assert_eq!(calls, 1, "the denied tool did not run");
    host.signal("-TERM");
    assert!(host.wait().0);
}

/// Open descriptors of process `pid`.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
fn idle_connections_to_the_tool_socket_never_exhaust_the_host_s_descriptors() {
    let telegram = FakeTelegram::start();
    let (api, _) = contacts_api();
    let setup = tools_setup(&telegram, &api, "tools_from = [\"contacts\"]", vec![]);
    let mut command = up_with_crm(&setup);
    // A login shell's limit, which 1,100 connections went past.
    crate::service::limit_open_files(&mut command, 1024, 1024);
    let mut host = polling(command);
    let page = host.status_page();
    telegram.send_text(CHAT, ANNA, "hello #mcp-tools");
    reply(&telegram, 0);
    let socket = std::fs::read_dir(setup.dir.path().join("data/run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sock"))
        .expect("the tool-call socket");

    // 1,100 connections that never send their line, from another thread
    // (a connect blocks while the host does not accept).
    let (opened, idle) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let idle: Vec<_> = (0..1100)
            .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
            .collect();
        opened.send(idle).unwrap();
    });
    let idle = idle
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the host accepts every connection");
    assert_eq!(idle.len(), 1100);

    // The host still has descriptors to spare, the page answers, and a
    // real tool call gets through.
    let held = open_descriptors(host.pid());
    assert!(held < 900, "{held} descriptors open of 1,024");
    assert!(crate::http_client::get(page, "/").contains("Webhooks"));
    telegram.send_text(
        CHAT,
        ANNA,
        r#"look up Ada #tool:contacts.find_contact {"name": "Ada"}"#,
    );
    assert!(
        reply(&telegram, 1).contains("Ada Lovelace"),
        "the tool call went through"
    );
    drop(idle);
    host.signal("-TERM");
    let (clean, log) = host.wait();
    assert!(clean, "{log}");
    let socket_lines = log.lines().filter(|l| l.contains("tool-call socket")).count();
    assert!(socket_lines <= 2, "{socket_lines} lines about the socket:\n{log}");
}
