//! The `api` backend: `POST /v1/messages` with the system prompt marked for
//! prompt caching, the session's earlier exchanges sent as messages, the
//! answer read as JSON or as server-sent events, and 429/529 retried after
//! `retry-after` (never past the deadline). Cost comes from the per-model
//! prices in `[claude.prices]`. With a grant's `tools_from`, the host runs
//! the tool-use loop itself. How an answer is read is [`answer`]'s.

mod answer;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::permission::Gate;
use super::sessions::{self, Exchange, Turn};
use super::{log_unstored, unreadable_session, Backends, Call, Completion, Failure, TokenCounts};
use crate::approvals::{ToolUse, Verdict};
use crate::capabilities::claude::backend::attached;
use crate::capabilities::claude::request::Request;
use crate::capabilities::claude::stop::STOPPED;
use crate::capabilities::claude::tools::{OfferedTool, ToolBroker, ToolCaller, ToolResult};
use answer::{read_answer, Reading};

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

/// Asks the Messages API after the session's transcript, offering the
/// plugins' tools of the grant's `tools_from` if the gateway is up, and
/// stores the exchange under the session's key. A `/stop` drops the request.
pub(crate) async fn ask(backends: &Backends, call: &Call<'_>) -> Result<Completion, Failure> {
    let (plugin, request, scope) = (call.scope.plugin, call.request, call.scope);
    let key = request.session_key.as_deref();
    let transcript = match key {
        Some(key) => sessions::transcript(&backends.db, plugin, key, scope.history)
            .await
            .map_err(|e| unreadable_session(plugin, e))?,
        None => Vec::new(),
    };
    let caller = scope.tool_caller();
    let broker = call.tools.filter(|_| !caller.tools_from.is_empty());
    let offered = match broker {
        Some(broker) => broker
            .offer(&caller)
            .map_err(|e| Failure::failed(format!("the tools of tools_from cannot be given: {e}")))?,
        None => Vec::new(),
    };
    let (mut outright, mut asked_about) = (Vec::new(), Vec::new());
    for tool in &offered {
        let names = &tool.names;
        match request.ask_plugin_tools.contains(&names.grant_name) {
            true => asked_about.push(names.cli_name.clone()),
            false => outright.push(names.cli_name.clone()),
        }
    }
    let gate = Gate {
        approvals: call.approvals,
        asking: scope.asking(key),
        outright: &outright,
        ask: &asked_about,
        place: call.place,
        stop: call.stop,
    };
    let api_tools = broker.map(|broker| ApiTools {
        offered,
        caller,
        broker,
        gate: &gate,
        max_turns: request.max_turns.unwrap_or(DEFAULT_TOOL_TURNS),
    });
    let asked = converse(&backends.http, call, &transcript, api_tools.as_ref());
    let completion = tokio::select! {
        completion = asked => completion?,
        () = call.stop.requested() => return Err(Failure::failed(STOPPED.into())),
    };
    if let Some(key) = key {
        let exchange = Exchange {
            prompt: &request.prompt,
            answer: &completion.text,
        };
        let stored = sessions::append_exchange(&backends.db, plugin, key, exchange, scope.history).await;
        log_unstored(plugin, key, stored);
    }
    Ok(completion)
}

/// Asks the Messages API, after the earlier `transcript` of the session;
/// with `tools`, runs each tool use the model asks for and sends the
/// results back, up to the tools' `max_turns` requests.
async fn converse(
    http: &reqwest::Client,
    call: &Call<'_>,
    transcript: &[Turn],
    tools: Option<&ApiTools<'_>>,
) -> Result<Completion, Failure> {
    let (config, request, deadline) = (call.config, call.request, call.deadline);
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
    let content = attached::content(&request.prompt, &request.attachments, None)?;
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
    let reading = match stream {
        true => Reading::Stream {
            draft: request.draft.as_ref(),
        },
        false => Reading::Whole,
    };
    let mut turns = 0;
    loop {
        turns += 1;
        let mut answer = send(http, call, &key, &body.to_string(), reading).await?;
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
/// call's deadline) and reads the answer as `reading` says.
async fn send(
    http: &reqwest::Client,
    call: &Call<'_>,
    key: &str,
    body: &str,
    reading: Reading<'_>,
) -> Result<answer::ApiAnswer, Failure> {
    let (config, deadline) = (call.config, call.deadline);
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
            let read = read_answer(response, reading, config.max_output);
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
