//! A fake Anthropic Messages API on 127.0.0.1 that speaks the real wire
//! format (../shared/reference/anthropic-api.md): `POST /v1/messages` with
//! `x-api-key` and `anthropic-version`, answered as one JSON message or as
//! server-sent events (`message_start` … `message_stop`, with `ping`s),
//! usage with cache fields (a system block marked `cache_control` is
//! written to the cache the first time and read from it after), error
//! bodies, and 429/529 with `retry-after` on demand; offered tools are
//! used on demand (`#tool:PLUGIN.TOOL {JSON}`) as `tool_use` blocks; a
//! prompt with `#pace` has its streamed text written in ten deltas, each
//! its own HTTP chunk, a [`PAUSE`](crate::loopback::PAUSE) apart.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// The key the fake accepts.
pub const API_KEY: &str = "sk-ant-test-key";
/// The variable `[claude.api].key_env` names in the tests; set it to
/// [`API_KEY`].
pub const KEY_ENV: &str = "MISSION_TEST_ANTHROPIC_KEY";

/// A failure to answer the next request with.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An error status with its error type and an optional `retry-after`.
    Status(u16, &'static str, Option<&'static str>),
    /// A 200 whose event stream carries an `error` event.
    StreamError,
}

#[derive(Default)]
struct State {
    requests: Vec<Value>,
    faults: VecDeque<Fault>,
    cached: HashSet<String>,
}

/// The fake server; it stops with the test process.
pub struct FakeAnthropic {
    /// Its base URL, for `[claude.api] url`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeAnthropic {
    /// Starts the server on a free loopback port.
    pub fn start() -> FakeAnthropic {
        let state = Arc::new(Mutex::new(State::default()));
        let server_state = state.clone();
        let url = crate::loopback::serve(move |request| {
            let response = respond(&request, &server_state);
            async move { response }
        });
        FakeAnthropic { url, state }
    }

    /// The `[claude]` lines for a host on this server: the model, `[claude.api]`
    /// with the key's variable, and the model's prices.
    pub fn claude_lines(&self) -> String {
        format!(
            "model = \"claude-sonnet-4-5\"\n[claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\n\
             [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30",
            self.url
        )
    }

    /// Answers the next request with `fault` (queued after earlier ones).
    pub fn fail_next(&self, fault: Fault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    /// The bodies of every request received, faulted ones included.
    pub fn requests(&self) -> Vec<Value> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn respond(request: &crate::loopback::Request, state: &Mutex<State>) -> String {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    if !request.line.starts_with("POST ") || request.path() != "/v1/messages" {
        error_response(404, "not_found_error", "no such endpoint", None)
    } else if request.header("x-api-key") != Some(API_KEY) {
        error_response(401, "authentication_error", "invalid x-api-key", None)
    } else if request.header("anthropic-version") != Some("2023-06-01") {
        error_response(
            400,
            "invalid_request_error",
            "anthropic-version header is required",
            None,
        )
    } else {
        answer(&body, state)
    }
}

fn error_response(status: u16, kind: &str, message: &str, retry_after: Option<&str>) -> String {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}}).to_string();
    let retry = retry_after.map_or(String::new(), |s| format!("retry-after: {s}\r\n"));
    format!(
        "HTTP/1.1 {status} Error\r\ncontent-type: application/json\r\n{retry}content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A turn of the tool-use loop, if this is one: a prompt with
/// `#tool:PLUGIN.TOOL {JSON}` gets a `tool_use` block for the offered tool
/// `mcp__PLUGIN__TOOL` (or says there is none); the tool results that
/// follow are answered `fake api ran NAME and got: TEXT` (or `got the tool
/// error`).
fn tool_turn(body: &Value, messages: &[Value]) -> Option<(String, Option<Value>)> {
    let last = messages.last()?;
    if let Some(blocks) = last["content"].as_array() {
        let result = blocks.iter().find(|b| b["type"] == "tool_result")?;
        let asked = messages.iter().rev().find(|m| m["role"] == "assistant")?;
        let name = asked["content"]
            .as_array()?
            .iter()
            .find(|b| b["type"] == "tool_use" && b["id"] == result["tool_use_id"])?["name"]
            .as_str()?
            .to_owned();
        let outcome = if result["is_error"] == true {
            "got the tool error"
        } else {
            "got"
        };
        let content = result["content"].as_str().unwrap_or_default();
        return Some((format!("fake api ran {name} and {outcome}: {content}"), None));
    }
    let prompt = last["content"].as_str()?;
    let (_, rest) = prompt.split_once("#tool:")?;
    let (target, input) = rest.trim().split_once(' ').unwrap_or((rest.trim(), "{}"));
    let (plugin, tool) = target.split_once('.')?;
    let name = format!("mcp__{plugin}__{tool}");
    let offered = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["name"] == name.as_str());
    if !offered {
        return Some((format!("fake api has no {name} tool"), None));
    }
    let input: Value = serde_json::from_str(input.trim()).unwrap_or_else(|_| json!({}));
    let id = format!("toolu_fake{}", messages.len());
    Some((
        format!("Calling {name}."),
        Some(json!({"type": "tool_use", "id": id, "name": name, "input": input})),
    ))
}

fn answer(body: &Value, state: &Mutex<State>) -> String {
    let mut state = state.lock().unwrap();
    state.requests.push(body.clone());
    let fault = state.faults.pop_front();
    if let Some(Fault::Status(status, kind, retry_after)) = fault {
        return error_response(status, kind, "injected by the test", retry_after);
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned());
    let paced = last.as_deref().is_some_and(|l| l.contains("#pace"));
    let (text, tool_use) = match tool_turn(body, &messages) {
        Some(turn) => turn,
        None => (
            format!(
                "fake api heard {:?}; messages: {}",
                last.unwrap_or_default(),
                messages.len()
            ),
            None,
        ),
    };
    // Rough token counts: four characters a token.
    let tokens = |s: &str| (s.len() as u64).div_ceil(4);
    let input: u64 = messages
        .iter()
        .map(|m| tokens(m["content"].as_str().unwrap_or_default()))
        .sum();
    let (mut cache_write, mut cache_read) = (0, 0);
    for block in body["system"].as_array().into_iter().flatten() {
        let block_text = block["text"].as_str().unwrap_or_default().to_owned();
        if block["cache_control"]["type"] == "ephemeral" {
            if state.cached.insert(block_text.clone()) {
                cache_write += tokens(&block_text);
            } else {
                cache_read += tokens(&block_text);
            }
        }
    }
    let usage = json!({
        "input_tokens": input,
        "output_tokens": tokens(&text),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    });
    let model = body["model"].clone();
    if body["stream"] != true {
        let mut content = vec![json!({"type": "text", "text": text})];
        let stop_reason = match tool_use {
            Some(tool_use) => {
                content.push(tool_use);
                "tool_use"
            }
            None => "end_turn",
        };
        let message = json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": content,
            "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
        })
        .to_string();
        return format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{message}",
            message.len()
        );
    }
    let chars: Vec<char> = text.chars().collect();
    let deltas: Vec<String> = match paced {
        true => chars
            .chunks(chars.len().div_ceil(10).max(1))
            .map(|c| c.iter().collect())
            .collect(),
        false => {
            let (first, second) = chars.split_at(chars.len() / 2);
            vec![first.iter().collect(), second.iter().collect()]
        }
    };
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    events.extend(deltas.iter().map(|delta| {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta}}),
        )
    }));
    events.extend([
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": usage["output_tokens"]}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    if matches!(fault, Some(Fault::StreamError)) {
        events.truncate(4);
        events.push((
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ));
    }
    let events: Vec<String> = events
        .into_iter()
        .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
        .collect();
    // Chunked, as the real API sends a stream: paced, an event a chunk.
    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
    let body = match paced {
        true => events
            .iter()
            .map(|e| chunk(e))
            .collect::<Vec<_>>()
            .join(crate::loopback::PAUSE),
        false => chunk(&events.concat()),
    };
    format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{body}0\r\n\r\n")
}
