//! The `api` backend: `POST /v1/messages` with the system prompt marked for
//! prompt caching, the session's earlier exchanges sent as messages, the
//! answer read as JSON or as server-sent events, and 429/529 retried after
//! `retry-after` (never past the deadline). Cost comes from the per-model
//! prices in `[claude.prices]`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::approvals::{ToolUse, Verdict};
use super::draft::Draft;
use super::permission::Gate;
use super::request::Request;
use super::sessions::Turn;
use super::tools::{OfferedTool, ToolBroker, ToolCaller, ToolResult};
use super::{Completion, Failure, Spent, TokenCounts};
use crate::config::claude::{ClaudeConfig, Price};

/// The API version the host speaks.
const API_VERSION: &str = "2023-06-01";

/// How many requests a call with tools makes at most, unless its grant's
/// `max_turns` says.
pub(crate) const DEFAULT_TOOL_TURNS: u32 = 10;

/// The plugins' tools a call offers the model, and how each use is decided
/// and run: the host's tool-use loop.
pub(crate) struct ApiTools<'a> {
    /// The tools, as the model sees them.
    pub offered: Vec<OfferedTool>,
    /// Who asks, for the calls.
    pub caller: ToolCaller,
    /// Where they run.
    pub broker: &'a dyn ToolBroker,
    /// Whether each use may run (one in `ask_tools` is asked about).
    pub gate: &'a Gate<'a>,
    /// The most requests one call makes.
    pub max_turns: u32,
}

/// Asks the Messages API, after the earlier `transcript` of the session;
/// with `tools`, runs each tool use the model asks for and sends the
/// results back, up to the tools' `max_turns` requests.
pub(crate) async fn ask(
    http: &reqwest::Client,
    config: &ClaudeConfig,
    request: &Request,
    transcript: &[Turn],
    tools: Option<&ApiTools<'_>>,
    deadline: Instant,
) -> Result<Completion, Failure> {
    let api = &config.api;
    let key = std::env::var(&api.key_env).map_err(|_| {
        Failure::failed(format!(
            "the environment variable {} (claude.api.key_env) holding the API key is not set",
            api.key_env
        ))
    })?;
    let model = request
        .model
        .as_deref()
        .ok_or_else(|| Failure::failed("the api backend needs a model: set [claude] model".into()))?;
    let price = *config.prices.get(model).ok_or_else(|| {
        Failure::failed(format!(
            "model `{model}` has no price in [claude.prices], so its cost could not be counted"
        ))
    })?;
    let content = super::attached::content(&request.prompt, &request.attachments, None)?;
    // A tool use is read from a whole message: with tools, no stream.
    let stream = api.stream && tools.is_none();
    let mut body = request_body(request, content, model, transcript, api.max_tokens, stream);
    if let Some(tools) = tools {
        body["tools"] = tools
            .offered
            .iter()
            .map(|t| json!({"name": t.names.cli_name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
    }
    let mut spent = TokenCounts::default();
    let draft = request.draft.as_ref().filter(|_| stream);
    let mut turns = 0;
    loop {
        turns += 1;
        let mut answer = send(http, config, &key, &body.to_string(), (stream, draft), deadline).await?;
        spent.add(&answer.usage);
        let uses: Vec<Value> = answer
            .content
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .cloned()
            .collect();
        let Some(tools) =
            tools.filter(|_| answer.stop_reason.as_deref() == Some("tool_use") && !uses.is_empty())
        else {
            answer.usage = spent;
            let mut completion = answer.into_completion(price);
            completion.spent.turns = turns;
            return Ok(completion);
        };
        if turns >= tools.max_turns {
            return Err(Failure::failed(format!(
                "Claude still wanted tools after {turns} requests (the grant's max_turns)"
            )));
        }
        let mut results = Vec::new();
        for tool_use in uses {
            let (text, is_error) = run_tool_use(tools, &tool_use, deadline).await;
            results.push(json!({"type": "tool_result", "tool_use_id": tool_use["id"], "content": text, "is_error": is_error}));
        }
        let messages = body["messages"].as_array_mut().expect("built with messages");
        messages.push(json!({"role": "assistant", "content": answer.content}));
        messages.push(json!({"role": "user", "content": results}));
    }
}

/// Decides and runs one `tool_use` block: what the model is told.
async fn run_tool_use(tools: &ApiTools<'_>, block: &Value, deadline: Instant) -> ToolResult {
    let name = block["name"].as_str().unwrap_or_default();
    let input = block["input"].as_object().cloned().unwrap_or_default();
    let Some(offered) = tools.offered.iter().find(|t| t.names.cli_name == name) else {
        return (format!("there is no tool `{name}`"), true);
    };
    let tool_use = ToolUse {
        tool: name.to_owned(),
        input: Value::Object(input.clone()),
    };
    match tools.gate.verdict(&tool_use, deadline).await {
        Verdict::Allow => {
            let call = tools.broker.call(&tools.caller, &offered.names.grant_name, input);
            match tokio::time::timeout_at(deadline, call).await {
                Ok(result) => result,
                Err(_) => ("the call ran past the Claude call's deadline".to_owned(), true),
            }
        }
        Verdict::Deny(message) => (message, true),
    }
}

/// Posts `body` (retrying 429 and 529 after `retry-after`, never past the
/// deadline) and reads the answer, as a `stream` of events whose text is
/// shown in `draft` as it comes, if given.
async fn send(
    http: &reqwest::Client,
    config: &ClaudeConfig,
    key: &str,
    body: &str,
    (stream, draft): (bool, Option<&Draft>),
    deadline: Instant,
) -> Result<ApiAnswer, Failure> {
    let api = &config.api;
    let url = format!("{}/v1/messages", api.url);
    let mut attempt = 0;
    loop {
        let sent = http
            .post(&url)
            .header("x-api-key", key)
            .header("anthropic-version", API_VERSION)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send();
        let response = match tokio::time::timeout_at(deadline, sent).await {
            Err(_) => return Err(Failure::TimedOut),
            Ok(Err(e)) => return Err(Failure::failed(format!("the API could not be reached: {e}"))),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        if status == 200 {
            let read = read_answer(response, (stream, draft), config.max_output);
            return match tokio::time::timeout_at(deadline, read).await {
                Err(_) => Err(Failure::TimedOut),
                Ok(answer) => answer,
            };
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let text = response.text().await.unwrap_or_default();
        let error = api_error(status, &text);
        if !matches!(status, 429 | 529) || attempt >= api.retries {
            let tries = if attempt > 0 {
                format!(" after {attempt} retries")
            } else {
                String::new()
            };
            return Err(Failure::failed(format!("{error}{tries}")));
        }
        let wait = retry_after.unwrap_or(Duration::from_secs(1) * 2u32.pow(attempt.min(6)));
        if Instant::now() + wait >= deadline {
            return Err(Failure::failed(format!(
                "{error}; retrying after {} would pass the deadline",
                crate::config::units::HumanDuration(wait)
            )));
        }
        tracing::warn!(
            status,
            wait_ms = wait.as_millis() as u64,
            "the API asked to retry"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The request body: the system prompt as one cached block, the transcript
/// and the new prompt as messages.
fn request_body(
    request: &Request,
    content: Vec<Value>,
    model: &str,
    transcript: &[Turn],
    max_tokens: u32,
    stream: bool,
) -> Value {
    let mut messages: Vec<Value> = transcript
        .iter()
        .map(|turn| json!({"role": turn.role, "content": turn.text}))
        .collect();
    messages.push(match request.attachments.is_empty() {
        true => json!({"role": "user", "content": request.prompt}),
        false => json!({"role": "user", "content": content}),
    });
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
    });
    if let Some(system) = &request.system {
        body["system"] = json!([{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// `{"type":"error","error":{"type":..,"message":..}}` as one line.
fn api_error(status: u16, body: &str) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "type")]
        kind: String,
        message: String,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(Body { error }) => format!("the API answered {status} {}: {}", error.kind, error.message),
        Err(_) => format!(
            "the API answered {status}: {}",
            body.chars().take(200).collect::<String>()
        ),
    }
}

/// The parts of an answer the host keeps.
#[derive(Debug, Default, PartialEq)]
struct ApiAnswer {
    text: String,
    model: Option<String>,
    usage: TokenCounts,
    /// Its content blocks (a whole message's), sent back with tool results.
    content: Vec<Value>,
    /// Why it ended: `end_turn`, `tool_use`, `max_tokens`.
    stop_reason: Option<String>,
}

impl ApiAnswer {
    fn into_completion(self, price: Price) -> Completion {
        let u = self.usage;
        let per_token = |tokens: u64, usd_per_million: f64| tokens as f64 * usd_per_million / 1e6;
        let cost_usd = per_token(u.input_tokens, price.input)
            + per_token(u.output_tokens, price.output)
            + per_token(u.cache_creation_input_tokens, price.cache_write)
            + per_token(u.cache_read_input_tokens, price.cache_read);
        Completion {
            text: self.text,
            session_id: None,
            spent: Spent {
                usage: u.into(),
                cost_usd,
                turns: 1,
                model: self.model,
                api_key_source: None,
            },
        }
    }
}

async fn read_answer(
    mut response: reqwest::Response,
    (stream, draft): (bool, Option<&Draft>),
    cap: u64,
) -> Result<ApiAnswer, Failure> {
    let mut body = Vec::new();
    let mut events = SseEvents::default();
    let mut answer = ApiAnswer::default();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| Failure::failed(format!("reading the API's answer failed: {e}")))?;
        let Some(chunk) = chunk else { break };
        let chunk: &[u8] = &chunk;
        if stream {
            for (event, data) in events.push(chunk) {
                if apply_event(&mut answer, &event, &data, draft)? {
                    return Ok(answer);
                }
            }
            if answer.text.len() as u64 > cap {
                return Err(too_long(cap));
            }
        } else {
            body.extend_from_slice(chunk);
            if body.len() as u64 > cap {
                return Err(too_long(cap));
            }
        }
    }
    if stream {
        return Err(Failure::failed(
            "the API's event stream ended before `message_stop`".into(),
        ));
    }
    parse_message(&body)
}

fn too_long(cap: u64) -> Failure {
    Failure::failed(format!(
        "the API's answer was longer than {}",
        crate::config::units::ByteSize(cap)
    ))
}

/// A whole (non-streamed) message.
fn parse_message(body: &[u8]) -> Result<ApiAnswer, Failure> {
    #[derive(Deserialize)]
    struct Message {
        model: Option<String>,
        content: Vec<Value>,
        stop_reason: Option<String>,
        #[serde(default)]
        usage: TokenCounts,
    }
    let message: Message = serde_json::from_slice(body).map_err(|e| {
        Failure::failed(format!(
            "the API's answer is not a message ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    Ok(ApiAnswer {
        text: message
            .content
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect(),
        model: message.model,
        usage: message.usage,
        content: message.content,
        stop_reason: message.stop_reason,
    })
}

/// Applies one server-sent event to `answer`, its text shown in `draft`
/// too; `true` at `message_stop`.
fn apply_event(
    answer: &mut ApiAnswer,
    event: &str,
    data: &str,
    draft: Option<&Draft>,
) -> Result<bool, Failure> {
    let data: Value = match serde_json::from_str(data) {
        Ok(data) => data,
        Err(_) if event == "ping" => return Ok(false),
        Err(e) => {
            return Err(Failure::failed(format!(
                "the API sent a bad `{event}` event: {e}"
            )))
        }
    };
    match event {
        "message_start" => {
            let message = &data["message"];
            answer.model = message["model"].as_str().map(str::to_owned);
            // A retried request starts the shown text over.
            if let Some(draft) = draft {
                draft.restart();
            }
            answer.usage = serde_json::from_value(message["usage"].clone()).unwrap_or_default();
        }
        "content_block_delta" if data["delta"]["type"] == "text_delta" => {
            let text = data["delta"]["text"].as_str().unwrap_or_default();
            answer.text.push_str(text);
            if let Some(draft) = draft {
                draft.push(text);
            }
        }
        "message_delta" => {
            // Cumulative counts; the input side may be repeated or left out.
            let usage = &data["usage"];
            let count = |field: &str, current: u64| usage[field].as_u64().unwrap_or(current);
            let u = &mut answer.usage;
            u.output_tokens = count("output_tokens", u.output_tokens);
            u.input_tokens = count("input_tokens", u.input_tokens);
            u.cache_creation_input_tokens =
                count("cache_creation_input_tokens", u.cache_creation_input_tokens);
            u.cache_read_input_tokens = count("cache_read_input_tokens", u.cache_read_input_tokens);
        }
        "message_stop" => return Ok(true),
        "error" => {
            return Err(Failure::failed(format!(
                "the API sent an error mid-answer: {} {}",
                data["error"]["type"].as_str().unwrap_or("unknown"),
                data["error"]["message"].as_str().unwrap_or_default()
            )))
        }
        // `ping`, `content_block_start`, `content_block_stop` and types
        // added later carry nothing the host keeps.
        _ => {}
    }
    Ok(false)
}

/// Splits a server-sent event stream into (event, data) pairs as its bytes
/// arrive.
#[derive(Default)]
struct SseEvents {
    pending: Vec<u8>,
}

impl SseEvents {
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = find_blank_line(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end.0).collect();
            self.pending.drain(..end.1);
            let block = String::from_utf8_lossy(&block);
            let (mut event, mut data) = (String::from("message"), String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if !data.is_empty() {
                events.push((event, data));
            }
        }
        events
    }
}

/// Where the first blank line ends an event: (end of the event, length of
/// the separator).
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_prompt_is_cached_and_the_transcript_comes_first() {
        let request = Request {
            prompt: "and now?".into(),
            system: Some("You are terse.".into()),
            model: None,
            max_turns: None,
            session_key: Some("k".into()),
            tools: Vec::new(),
            ask_tools: Vec::new(),
            ask_plugin_tools: Vec::new(),
            mcp_config: None,
            backend: crate::config::claude::Backend::Api,
            deadline: Duration::from_secs(1),
            attachments: Vec::new(),
            draft: None,
            plugin_tools: None,
        };
        let transcript = [
            Turn {
                role: "user".into(),
                text: "hi".into(),
            },
            Turn {
                role: "assistant".into(),
                text: "hello".into(),
            },
        ];
        let body = request_body(
            &request,
            Vec::new(),
            "claude-sonnet-4-5",
            &transcript,
            1024,
            false,
        );
        assert_eq!(
            body,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "and now?"},
                ],
            })
        );
    }

    #[test]
    fn events_split_across_chunks_build_the_answer_and_its_draft() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":21,\"cache_creation_input_tokens\":1880,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\r\n\r\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut events = SseEvents::default();
        let mut answer = ApiAnswer::default();
        let (draft, view) = Draft::new();
        // What a retried request showed before is started over.
        draft.push("stale");
        let mut stopped = false;
        let mut shown = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            for (event, data) in events.push(chunk) {
                stopped |= apply_event(&mut answer, &event, &data, Some(&draft)).unwrap();
                shown.push(view.borrow().clone());
            }
        }
        assert!(stopped);
        assert_eq!(answer.text, "Hello");
        shown.dedup();
        assert_eq!(shown, ["", "Hel", "Hello"]);
        assert_eq!(
            answer.usage,
            TokenCounts {
                input_tokens: 21,
                output_tokens: 15,
                cache_creation_input_tokens: 1880,
                cache_read_input_tokens: 0,
            }
        );
    }

    #[test]
    fn cost_counts_every_kind_of_token_at_its_price() {
        let answer = ApiAnswer {
            text: String::new(),
            model: None,
            usage: TokenCounts {
                input_tokens: 1_000_000,
                output_tokens: 100_000,
                cache_creation_input_tokens: 200_000,
                cache_read_input_tokens: 2_000_000,
            },
            ..ApiAnswer::default()
        };
        let price = Price {
            input: 3.0,
            output: 15.0,
            cache_write: 3.75,
            cache_read: 0.30,
        };
        let cost = answer.into_completion(price).spent.cost_usd;
        assert!((cost - (3.0 + 1.5 + 0.75 + 0.6)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn an_error_body_is_read_into_one_line() {
        let body = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(
            api_error(529, body),
            "the API answered 529 overloaded_error: Overloaded"
        );
        assert_eq!(
            api_error(502, "<html>bad gateway"),
            "the API answered 502: <html>bad gateway"
        );
    }
}
