//! The Messages API's answer, read as one JSON message or as server-sent
//! events whose text is shown in a draft as it comes, capped at
//! `max_output`; and its cost at the model's price.

use serde::Deserialize;
use serde_json::Value;

use crate::capabilities::claude::backend::{Completion, Failure, Spent, TokenCounts};
use crate::capabilities::claude::draft::Draft;
use crate::config::claude::Price;

/// How an answer comes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reading<'a> {
    /// One JSON message.
    Whole,
    /// Server-sent events, their text shown in `draft` if given.
    Stream { draft: Option<&'a Draft> },
}

/// The parts of an answer the host keeps.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ApiAnswer {
    text: String,
    model: Option<String>,
    /// Its tokens (the caller sums a call's requests here).
    pub usage: TokenCounts,
    /// Its content blocks (a whole message's), sent back with tool results.
    pub content: Vec<Value>,
    /// Why it ended: `end_turn`, `tool_use`, `max_tokens`.
    pub stop_reason: Option<String>,
}

impl ApiAnswer {
    /// The answer as a completion, its tokens priced at `price`.
    pub(super) fn into_completion(self, price: Price) -> Completion {
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

/// Reads `response` as `reading` says, at most `cap` bytes.
pub(super) async fn read_answer(
    mut response: reqwest::Response,
    reading: Reading<'_>,
    cap: u64,
) -> Result<ApiAnswer, Failure> {
    let (stream, draft) = match reading {
        Reading::Whole => (false, None),
        Reading::Stream { draft } => (true, draft),
    };
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
}
