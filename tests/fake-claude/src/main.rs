//! A fake `claude` CLI for tests and benchmarks. It speaks the formats the
//! real CLI printed (`tests/data/claude/`, captured from version 2.1.197):
//! `-p --output-format=json` prints one `result` object; stream-json prints
//! `system/init`, `assistant` and `result` events; with
//! `--input-format=stream-json` it reads one user message per line and
//! answers each until stdin closes. Sessions live in `.fake-claude/` under
//! the working directory, so `--resume=ID` carries the earlier prompts, and
//! an unknown id fails the way the real CLI does.
//!
//! In stream-json input, an image or document block is heard as
//! `[image image/png, N bytes]` after the text.
//!
//! The answer names the prompt and the session's earlier prompts:
//! `fake claude heard "P"; earlier: ["A", "B"]`. Words in the prompt make
//! it misbehave:
//! - `#hang`: starts a child in its process group, writes both pids to
//!   `.fake-claude/hang.pids`, and never answers;
//! - `#die`: exits mid-turn, without a result; `#die-once`: only the first
//!   time (per working directory);
//! - `#garbage`: prints text that is not JSON and exits 0;
//! - `#error`: the captured `is_error` result for an API 400, exit 1;
//! - `#flood`: prints 2 MiB before its result;
//! - `#env`: answers with the names of its environment variables;
//! - `#turns=N`: needs N turns (`error_max_turns` past `--max-turns`);
//! - `#cost=X`: reports X US dollars (default 0.0125);
//! - `#sleep=MS`: waits that long before answering;
//! - `#work`: with stream-json input, works until the host sends its
//!   `interrupt` control request, then answers it (`control_response`) and
//!   ends the turn with an `error_during_execution` result; `#work-deaf`
//!   ignores the interrupt and never answers;
//! - `#linger`: leaves a child running that holds its stdout open, pid in
//!   `.fake-claude/linger.pid`, and answers;
//! - `#bash:COMMAND` (to the end of the prompt): the model wants the `Bash`
//!   tool. Without `Bash` in `--tools` it has none; with it in
//!   `--allowed-tools` the command runs (`sh -c`, in the working
//!   directory); else, with `--permission-prompt-tool=stdio` (stream-json
//!   input), it writes a `can_use_tool` control request, as the real CLI
//!   does, and waits for the host's control response: `allow` runs the
//!   command, `deny` gives the model the message; else it is denied. The
//!   answer then says `ran Bash: OUTPUT` or `Bash denied: MESSAGE`.
//!
//! - `#long=N`: answers N characters of numbered words instead;
//! - `#pace=MS`: with `--include-partial-messages`, the answer is streamed
//!   as `stream_event` text deltas of 20 characters, MS milliseconds apart,
//!   as the captured partial messages show them
//!   (`tests/data/claude/stream-json-partial-messages.jsonl`); without it,
//!   the whole answer comes after the same total time; either way the
//!   moment its first text is (or would be) written is appended as
//!   `{"at_us":..}` (since the epoch) to `.fake-claude/first-text.jsonl`;
//! - `#write:NAME`: writes the file NAME (one path segment) in the working
//!   directory and answers `I wrote NAME.` and a line `[attach: NAME]`.
//!
//! - `#tool:SERVER.TOOL {JSON}` (to the end of the prompt): the model
//!   wants the MCP tool `mcp__SERVER__TOOL` with that input, asked about
//!   like `Bash`; allowed, it is called on the server of `--mcp-config`
//!   that listed it, and the answer says `ran NAME and got: TEXT` (or
//!   `got the tool error`); `#mcp-tools` answers with each listed MCP
//!   tool's name, description and input schema, one a line.
//!
//! Every start appends `{"pid":..,"args":[..],"at_ms":..}` to
//! `.fake-claude/spawns.jsonl`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

mod mcp;

/// The MCP servers of `--mcp-config`, started at launch.
static MCP: std::sync::OnceLock<std::sync::Mutex<Vec<mcp::Server>>> = std::sync::OnceLock::new();

const SUCCESS: &str = include_str!("../../data/claude/print-json-success.json");
const API_ERROR: &str = include_str!("../../data/claude/print-json-api-error-400.json");
const STREAM: &str = include_str!("../../data/claude/print-stream-json-success.jsonl");

#[derive(Default)]
struct Args {
    print: bool,
    output_format: String,
    input_format: String,
    resume: Option<String>,
    model: Option<String>,
    max_turns: Option<u32>,
    prompt: Option<String>,
    tools: Vec<String>,
    allowed_tools: Vec<String>,
    permission_prompt: Option<String>,
    partial: bool,
    mcp_configs: Vec<String>,
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--fake-sleep") {
        std::thread::sleep(Duration::from_secs(3600));
        return;
    }
    let state = PathBuf::from(".fake-claude");
    std::fs::create_dir_all(state.join("sessions")).expect("cannot create .fake-claude");
    append(
        &state.join("spawns.jsonl"),
        &json!({"pid": std::process::id(), "args": argv, "at_ms": now_ms()}).to_string(),
    );
    let args = parse(&argv);
    if !args.print {
        fail("fake-claude only runs with -p");
    }
    MCP.set(std::sync::Mutex::new(mcp::start(&args.mcp_configs)))
        .unwrap_or_else(|_| unreachable!());
    let session_id = match &args.resume {
        Some(id) if !state.join("sessions").join(id).exists() => {
            eprintln!("No conversation found with session ID: {id}");
            std::process::exit(1);
        }
        Some(id) => id.clone(),
        None => new_session_id(),
    };
    let mut session = Session {
        file: state.join("sessions").join(&session_id),
        id: session_id,
        state,
    };
    // Like the real CLI, the session exists from the start (a process that
    // dies in its first turn can be resumed); prompts are added as answered.
    append(&session.file, "");
    if args.input_format == "stream-json" {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines().map(|line| line.expect("reading stdin"));
        while let Some(line) = lines.next() {
            if line.trim().is_empty() {
                continue;
            }
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| fail(&format!("bad input line: {e}")));
            if message["type"] != "user" {
                continue;
            }
            let prompt = heard(&message["message"]["content"]);
            emit_stream(&args, &mut session, &prompt, Some(&mut lines));
        }
        return;
    }
    let prompt = args.prompt.clone().unwrap_or_else(|| {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).expect("reading stdin");
        text
    });
    if args.output_format == "stream-json" {
        emit_stream(&args, &mut session, &prompt, None);
    } else {
        let tool = use_tool(&args, &session, &prompt, None);
        let result = answer(&args, &mut session, &prompt, tool);
        println!("{result}");
        if result["is_error"] == true {
            std::process::exit(1);
        }
    }
}

fn parse(argv: &[String]) -> Args {
    let mut args = Args {
        output_format: "text".into(),
        input_format: "text".into(),
        ..Args::default()
    };
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .unwrap_or_else(|| fail(&format!("error: option '{flag}' argument missing")))
        };
        match flag {
            "-p" | "--print" => args.print = true,
            "--verbose" | "--strict-mcp-config" => {}
            "--include-partial-messages" => args.partial = true,
            "--output-format" => args.output_format = value(),
            "--input-format" => args.input_format = value(),
            "-r" | "--resume" => args.resume = Some(value()),
            "--model" => args.model = Some(value()),
            "--max-turns" => args.max_turns = value().parse().ok(),
            "--tools" => args.tools = list(&value()),
            "--allowed-tools" => args.allowed_tools = list(&value()),
            "--permission-prompt-tool" => args.permission_prompt = Some(value()),
            "--mcp-config" => args.mcp_configs.push(value()),
            "--system-prompt" | "--max-budget-usd" => {
                value();
            }
            flag if flag.starts_with('-') => fail(&format!("error: unknown option '{flag}'")),
            prompt => args.prompt = Some(prompt.to_owned()),
        }
    }
    args
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What became of a tool the prompt wants.
struct ToolOutcome {
    /// What the answer says.
    note: String,
    /// The tool's name, as the model calls it.
    name: String,
    /// Set when it was denied: the tool's input.
    denied: Option<Value>,
}

/// Plays the model wanting `Bash` for a `#bash:` prompt: asks the host on
/// stdout and reads its answer from `input` when the rules say to ask.
fn use_tool(
    args: &Args,
    session: &Session,
    prompt: &str,
    input: Option<&mut dyn Iterator<Item = String>>,
) -> Option<ToolOutcome> {
    let (name, tool_input) = wanted_tool(prompt)?;
    if !args.tools.contains(&name) {
        return Some(ToolOutcome {
            note: format!("I have no {name} tool"),
            name,
            denied: None,
        });
    }
    if stream(args) {
        say(
            &json!({"type": "assistant", "session_id": session.id, "message": {"role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": name, "input": tool_input}]}}),
        );
    }
    let verdict = if args.allowed_tools.contains(&name) {
        Ok(tool_input.clone())
    } else if let (Some("stdio"), Some(input)) = (args.permission_prompt.as_deref(), input) {
        let request_id = format!("req-{}", now_ms());
        say(
            &json!({"type": "control_request", "request_id": request_id, "request": {
            "subtype": "can_use_tool", "tool_name": name, "display_name": name, "input": tool_input,
            "description": "Run a command", "permission_suggestions": [], "tool_use_id": "toolu_01"}}),
        );
        let response = input
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .find(|v| v["type"] == "control_response" && v["response"]["request_id"] == json!(request_id))
            .unwrap_or_else(|| fail("stdin closed while waiting for a permission answer"));
        let answer = &response["response"]["response"];
        match answer["behavior"].as_str() {
            Some("allow") => Ok(answer["updatedInput"].clone()),
            _ => Err(answer["message"].as_str().unwrap_or("denied").to_owned()),
        }
    } else {
        Err(format!(
            "Claude requested permissions to use {name}, but you haven't granted it yet."
        ))
    };
    let (note, content, denied) = match verdict {
        Ok(input) if name == "Bash" => {
            let command = input["command"].as_str().unwrap_or_default();
            let output = std::process::Command::new("sh")
                .args(["-c", command])
                .output()
                .expect("running sh");
            let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            (format!("ran Bash: {stdout}"), stdout, None)
        }
        Ok(input) => {
            let (text, is_error) = call_mcp(&name, input);
            let outcome = if is_error { "got the tool error" } else { "got" };
            (format!("ran {name} and {outcome}: {text}"), text, None)
        }
        Err(message) => (format!("{name} denied: {message}"), message, Some(tool_input)),
    };
    if stream(args) {
        say(
            &json!({"type": "user", "session_id": session.id, "message": {"role": "user", "content": [
            {"tool_use_id": "toolu_01", "type": "tool_result", "content": content, "is_error": denied.is_some()}]}}),
        );
    }
    Some(ToolOutcome { note, name, denied })
}

/// The tool the model wants for `prompt`, and its input: `#bash:COMMAND`,
/// or `#tool:SERVER.TOOL {JSON}` for an MCP server's tool.
fn wanted_tool(prompt: &str) -> Option<(String, Value)> {
    if let Some((_, command)) = prompt.split_once("#bash:") {
        let command = command.trim();
        return Some((
            "Bash".into(),
            json!({"command": command, "description": "Run a command"}),
        ));
    }
    let (_, rest) = prompt.split_once("#tool:")?;
    let (target, input) = rest.trim().split_once(' ').unwrap_or((rest.trim(), "{}"));
    let (server, tool) = target.split_once('.')?;
    let input = serde_json::from_str(input.trim()).unwrap_or_else(|_| json!({}));
    Some((format!("mcp__{server}__{tool}"), input))
}

/// Calls the MCP tool the model calls `name`.
fn call_mcp(name: &str, input: Value) -> (String, bool) {
    let mut servers = MCP.get().expect("started at launch").lock().unwrap();
    for server in servers.iter_mut() {
        let tool = server
            .tools
            .iter()
            .find(|t| server.cli_name(t) == name)
            .and_then(|t| t["name"].as_str())
            .map(str::to_owned);
        if let Some(tool) = tool {
            return server.call(&tool, input);
        }
    }
    (format!("no MCP server lists {name}"), true)
}

/// The MCP tools the servers listed: each one's model name, description
/// and schema, one a line.
fn listed_mcp_tools() -> String {
    let servers = MCP.get().expect("started at launch").lock().unwrap();
    let mut lines = Vec::new();
    for server in servers.iter() {
        for tool in &server.tools {
            lines.push(format!(
                "{}: {} {}",
                server.cli_name(tool),
                tool["description"].as_str().unwrap_or_default(),
                tool["inputSchema"]
            ));
        }
    }
    if lines.is_empty() {
        "no MCP tools".to_owned()
    } else {
        lines.join("\n")
    }
}

fn stream(args: &Args) -> bool {
    args.output_format == "stream-json"
}

struct Session {
    id: String,
    file: PathBuf,
    state: PathBuf,
}

impl Session {
    fn earlier(&self) -> Vec<String> {
        std::fs::read_to_string(&self.file)
            .map(|text| {
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_str(l).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn record(&self, prompt: &str) {
        append(&self.file, &Value::from(prompt).to_string());
    }
}

/// The `result` object for `prompt` (after any misbehaviour it asks for),
/// saying what became of the `tool` it wanted.
fn answer(args: &Args, session: &mut Session, prompt: &str, tool: Option<ToolOutcome>) -> Value {
    misbehave(session, prompt);
    if prompt.contains("#error") {
        let mut result: Value = serde_json::from_str(API_ERROR.lines().next().unwrap()).unwrap();
        result["session_id"] = json!(session.id);
        return result;
    }
    let earlier = session.earlier();
    let turns: u32 = directive(prompt, "#turns=").unwrap_or(1);
    let cost: f64 = directive(prompt, "#cost=").unwrap_or(0.0125);
    let mut result: Value = serde_json::from_str(SUCCESS.trim()).unwrap();
    result["session_id"] = json!(session.id);
    result["num_turns"] = json!(turns);
    result["total_cost_usd"] = json!(cost);
    // A resumed session reads its earlier context from the prompt cache.
    result["usage"]["cache_read_input_tokens"] = json!(100 * earlier.len());
    let model = args.model.clone().unwrap_or_else(|| "claude-opus-4-8".into());
    result["modelUsage"] =
        json!({ format!("{model}[1m]"): result["modelUsage"]["claude-opus-4-8[1m]"].clone() });
    if args.max_turns.is_some_and(|max| turns > max) {
        result["subtype"] = json!("error_max_turns");
        result["is_error"] = json!(true);
        result["num_turns"] = json!(args.max_turns);
        result.as_object_mut().unwrap().remove("result");
        return result;
    }
    let text = if prompt.contains("#env") {
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        format!("env: {}", names.join(","))
    } else if let Some(n) = directive::<usize>(prompt, "#long=") {
        let words = (1..).flat_map(|i| format!("word{i} ").chars().collect::<Vec<_>>());
        words.take(n).collect::<String>()
    } else if let Some(name) = prompt
        .split_once("#write:")
        .and_then(|(_, rest)| rest.split_whitespace().next())
    {
        let name = name.rsplit('/').next().unwrap_or(name);
        std::fs::write(name, format!("written by fake claude for: {prompt}\n")).unwrap();
        format!("I wrote {name}.\n[attach: {name}]")
    } else if prompt.contains("#mcp-tools") {
        listed_mcp_tools()
    } else if let Some(tool) = &tool {
        format!("fake claude {}", tool.note)
    } else {
        format!("fake claude heard {prompt:?}; earlier: {earlier:?}")
    };
    if let Some(tool) = tool.filter(|t| t.denied.is_some()) {
        result["permission_denials"] =
            json!([{"tool_name": tool.name, "tool_use_id": "toolu_01", "tool_input": tool.denied}]);
    }
    session.record(prompt);
    result["result"] = json!(text);
    result
}

/// What the fake hears in a user message's content: its text blocks, and
/// each image or document block as `[image image/png, N bytes]`.
fn heard(content: &Value) -> String {
    let blocks = content.as_array().cloned().unwrap_or_default();
    let mut parts = Vec::new();
    for block in &blocks {
        match block["type"].as_str() {
            Some("text") => parts.push(block["text"].as_str().unwrap_or_default().to_owned()),
            Some(kind @ ("image" | "document")) => {
                use base64::Engine as _;
                let data = block["source"]["data"].as_str().unwrap_or_default();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_or(0, |b| b.len());
                parts.push(format!(
                    "[{kind} {}, {bytes} bytes]",
                    block["source"]["media_type"].as_str().unwrap_or("?")
                ));
            }
            _ => {}
        }
    }
    parts.join(" ")
}

/// Reads the host's lines until its `interrupt` (`#work`), answers it and
/// ends the turn as the CLI does; `#work-deaf` never answers.
fn work_until_interrupted(session: &Session, prompt: &str, input: &mut &mut dyn Iterator<Item = String>) {
    let deaf = prompt.contains("#work-deaf");
    for line in input.by_ref() {
        let Ok(request) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if request["type"] != "control_request" || request["request"]["subtype"] != "interrupt" || deaf {
            continue;
        }
        say(
            &json!({"type": "control_response", "response": {"subtype": "success",
            "request_id": request["request_id"], "response": {}}}),
        );
        let mut result: Value = serde_json::from_str(SUCCESS.trim()).unwrap();
        result["session_id"] = json!(session.id);
        result["subtype"] = json!("error_during_execution");
        result["is_error"] = json!(true);
        result["total_cost_usd"] = json!(0.004);
        result.as_object_mut().unwrap().remove("result");
        say(&result);
        return;
    }
}

/// One stream-json turn: `system/init`, a tool's events if the prompt
/// wants one, `assistant`, `result`.
fn emit_stream(
    args: &Args,
    session: &mut Session,
    prompt: &str,
    input: Option<&mut dyn Iterator<Item = String>>,
) {
    let mut events = STREAM.lines().map(|l| serde_json::from_str::<Value>(l).unwrap());
    let mut init = events.next().unwrap();
    let mut assistant = events.next().unwrap();
    init["session_id"] = json!(session.id);
    let mut input = input;
    // An API key in the environment is what the CLI uses first; without one
    // it runs on the login (a subscription), reported as "none".
    let key = std::env::var_os("ANTHROPIC_API_KEY").filter(|k| !k.is_empty());
    init["apiKeySource"] = json!(if key.is_some() {
        "ANTHROPIC_API_KEY"
    } else {
        "none"
    });
    say(&init);
    if prompt.contains("#work") {
        if let Some(input) = input.as_mut() {
            work_until_interrupted(session, prompt, input);
            return;
        }
    }
    let tool = use_tool(args, session, prompt, input);
    let result = answer(args, session, prompt, tool);
    let text = result["result"].as_str().unwrap_or_default();
    let pace = directive::<u64>(prompt, "#pace=").map(Duration::from_millis);
    if args.partial {
        emit_partial(session, text, pace);
    } else if let Some(pace) = pace {
        std::thread::sleep(pace);
        note_first_text(session);
        std::thread::sleep(pace * (text.chars().count().div_ceil(DELTA) as u32).saturating_sub(1));
    }
    assistant["session_id"] = json!(session.id);
    assistant["message"]["content"][0]["text"] = result["result"].clone();
    say(&assistant);
    say(&result);
}

/// Characters per text delta.
const DELTA: usize = 20;

/// `text` as the CLI's partial messages: `message_start`, a text block's
/// deltas `pace` apart, and the block's and message's ends.
fn emit_partial(session: &Session, text: &str, pace: Option<Duration>) {
    let event = |inner: Value| {
        say(
            &json!({"type": "stream_event", "event": inner, "session_id": session.id,
            "parent_tool_use_id": null, "uuid": new_session_id()}),
        );
    };
    event(
        json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
        "role": "assistant", "model": "claude-opus-4-8", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    );
    event(json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
    let chars: Vec<char> = text.chars().collect();
    for (i, chunk) in chars.chunks(DELTA).enumerate() {
        if let Some(pace) = pace {
            std::thread::sleep(pace);
            if i == 0 {
                note_first_text(session);
            }
        }
        let delta: String = chunk.iter().collect();
        event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": delta}}));
    }
    event(json!({"type": "content_block_stop", "index": 0}));
    event(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 5}}),
    );
    event(json!({"type": "message_stop"}));
}

/// Records when a paced turn's first text goes out, for the streaming
/// benchmark.
fn note_first_text(session: &Session) {
    append(
        &session.state.join("first-text.jsonl"),
        &json!({"at_us": now_us()}).to_string(),
    );
}

fn misbehave(session: &Session, prompt: &str) {
    if let Some(ms) = directive::<u64>(prompt, "#sleep=") {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if prompt.contains("#hang") {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--fake-sleep")
            .spawn()
            .expect("starting the grandchild");
        std::fs::write(
            session.state.join("hang.pids"),
            format!("{} {}", std::process::id(), child.id()),
        )
        .unwrap();
        // Never answers; the child is the host's to kill, with the group.
        std::thread::sleep(Duration::from_secs(3600));
        drop(child.wait());
    }
    let marker = session.state.join("died-once");
    if prompt.contains("#die-once") && !marker.exists() {
        std::fs::write(&marker, "").unwrap();
        std::process::exit(3);
    }
    if prompt.contains("#die") && !prompt.contains("#die-once") {
        std::process::exit(3);
    }
    if prompt.contains("#linger") {
        // Left running with our stdout, as a tool's background process might be.
        #[allow(
            clippy::zombie_processes,
            reason = "left running on purpose: the host ends it with the group"
        )]
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--fake-sleep")
            .spawn()
            .expect("starting the lingering child");
        std::fs::write(session.state.join("linger.pid"), child.id().to_string()).unwrap();
    }
    if prompt.contains("#garbage") {
        println!("Error: something unexpected happened <html>");
        std::process::exit(0);
    }
    if prompt.contains("#flood") {
        let line = "x".repeat(1023);
        for _ in 0..2048 {
            println!("{line}");
        }
    }
}

fn directive<T: std::str::FromStr>(prompt: &str, name: &str) -> Option<T> {
    let start = prompt.find(name)? + name.len();
    let value: String = prompt[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    value.parse().ok()
}

fn say(event: &Value) {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{event}").unwrap();
    stdout.flush().unwrap();
}

fn append(file: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("cannot append");
    writeln!(file, "{line}").unwrap();
}

fn now_us() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn new_session_id() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let (a, b) = (hasher.finish(), RandomState::new().build_hasher().finish());
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fail(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}
