//! One turn of a persistent `claude` process: a user message written, and
//! its events read up to the `result`, answering permission requests and
//! showing partial text on the way; `/stop` sends the CLI its interrupt.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::capabilities::claude::backend::cli::process::{read_line_capped, ClaudeProcess, Line};
use crate::capabilities::claude::backend::cli::result::{is_session_id, CliResult};
use crate::capabilities::claude::backend::permission::{control_request, Gate};
use crate::capabilities::claude::backend::{Completion, Failure};
use crate::capabilities::claude::draft::Draft;
use crate::capabilities::claude::stop::{Stop, STOPPED};
use crate::capabilities::claude::tools::ToolPass;

/// How long the CLI has to end its turn after its interrupt, before its
/// process group is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// A live process, and what it said of itself.
pub(super) struct Live {
    pub(super) process: ClaudeProcess,
    /// The flags it was started with; a call with others needs a new one.
    pub(super) flags: Vec<String>,
    /// The session it is in, once it said.
    pub(super) session_id: Option<String>,
    /// Where its credentials come from, as its `system/init` event said
    /// (`"none"`: a subscription login).
    pub(super) api_key_source: Option<String>,
    /// Its way to the plugins' tools, revoked when the process is gone.
    pub(super) _tools: Option<Arc<ToolPass>>,
}

/// What became of one turn.
pub(super) enum Turn {
    /// Its `result` arrived: the process is ready for the next turn.
    Answered(Result<Completion, Failure>),
    /// The deadline passed mid-turn.
    TimedOut,
    /// The process is alive but its output can no longer be followed.
    OutOfStep(String),
    /// The process ended (or closed its pipes) before its `result`.
    Died(String),
    /// A `/stop` was asked for and the CLI gave no `result` within
    /// [`INTERRUPT_GRACE`] of its interrupt.
    Stopped,
}

/// One user message, and what goes on around its turn.
pub(super) struct Message<'a> {
    /// Its content blocks.
    pub(super) content: &'a [serde_json::Value],
    /// The most output the turn may print, in bytes.
    pub(super) cap: u64,
    /// What answers the CLI's permission requests; its `stop` ends the turn.
    pub(super) gate: &'a Gate<'a>,
    /// Where the partial text is shown, if it is.
    pub(super) draft: Option<&'a Draft>,
    /// When the turn must have ended.
    pub(super) deadline: Instant,
}

/// Writes one user `message` and reads events up to its `result`,
/// answering the CLI's permission requests through its gate on the way and
/// showing its partial text in its draft, if given. The gate's `stop`
/// sends the CLI its interrupt and waits [`INTERRUPT_GRACE`] for the
/// turn's `result`.
pub(super) async fn turn(live: &mut Live, message: &Message<'_>) -> Turn {
    let Message {
        content,
        cap,
        gate,
        draft,
        deadline,
    } = *message;
    let user = json!({
        "type": "user",
        "message": {"role": "user", "content": content},
    });
    let exchange = async {
        if let Err(e) = write_line(live, &user).await {
            return Turn::Died(format!("writing the message failed: {e}"));
        }
        let mut budget = cap;
        let mut unparsed = String::new();
        // When the CLI was sent its interrupt, if it was.
        let mut interrupted: Option<Instant> = None;
        loop {
            let Some(line) = next_line(live, budget, gate.stop, &mut interrupted).await else {
                return Turn::Stopped;
            };
            match line {
                Err(e) => return Turn::Died(format!("reading its output failed: {e}")),
                Ok(Line::End) => return Turn::Died(format!("it ended without a result{}", said(&unparsed))),
                Ok(Line::TooLong) => {
                    return Turn::OutOfStep(format!(
                        "claude printed more than {} in one turn and was stopped",
                        crate::config::units::ByteSize(cap)
                    ))
                }
                Ok(Line::Text(text)) => {
                    budget = budget.saturating_sub(text.len() as u64 + 1);
                    if let Some(result) = CliResult::parse(&text) {
                        if let Some(id) = result.session_id() {
                            live.session_id = Some(id.to_owned());
                        }
                        let source = live.api_key_source.clone();
                        let outcome = with_key_source(result.into_outcome(), source);
                        return Turn::Answered(match interrupted {
                            Some(_) => stopped(outcome),
                            None => outcome,
                        });
                    }
                    match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(event) => {
                            if let Some(id) = event["session_id"].as_str().filter(|id| is_session_id(id)) {
                                live.session_id = Some(id.to_owned());
                            }
                            if let Some(source) = event["apiKeySource"].as_str() {
                                live.api_key_source = Some(source.to_owned());
                            }
                            if let Some(draft) = draft {
                                show_partial(draft, &event);
                            }
                            if let Some(request) = control_request(&event) {
                                let answer = gate.answer(request, deadline).await;
                                if let Err(e) = write_line(live, &answer).await {
                                    return Turn::Died(format!(
                                        "answering its permission request failed: {e}"
                                    ));
                                }
                            }
                        }
                        Err(_) if unparsed.len() < 300 => unparsed.push_str(&text),
                        Err(_) => {}
                    }
                }
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(turn) => turn,
        Err(_elapsed) => Turn::TimedOut,
    }
}

/// Shows the text of a partial-message `event` (`--include-partial-messages`)
/// in `draft`: a text delta of the main conversation (not a subagent's) is
/// appended, and a new message starts the text over.
fn show_partial(draft: &Draft, event: &serde_json::Value) {
    if event["type"] != "stream_event" || !event["parent_tool_use_id"].is_null() {
        return;
    }
    let inner = &event["event"];
    match inner["type"].as_str() {
        Some("message_start") => draft.restart(),
        Some("content_block_delta") if inner["delta"]["type"] == "text_delta" => {
            if let Some(text) = inner["delta"]["text"].as_str() {
                draft.push(text);
            }
        }
        _ => {}
    }
}

/// The next line the CLI prints. A stop asked for (before or meanwhile)
/// sends it the `interrupt` control request first (once, noting when in
/// `interrupted`) without giving up the line being read, so a turn whose
/// tool use a stop denied still ends stopped; none if no line came within
/// [`INTERRUPT_GRACE`] of the interrupt.
async fn next_line(
    live: &mut Live,
    budget: u64,
    stop: &Stop,
    interrupted: &mut Option<Instant>,
) -> Option<std::io::Result<Line>> {
    let pid = live.process.pid();
    let (stdout, stdin) = (&mut live.process.stdout, &mut live.process.stdin);
    let read = read_line_capped(stdout, budget);
    tokio::pin!(read);
    loop {
        let grace_ends = interrupted.map_or_else(Instant::now, |at| at + INTERRUPT_GRACE);
        tokio::select! {
            biased;
            () = stop.requested(), if interrupted.is_none() => {
                *interrupted = Some(Instant::now());
                let request = json!({
                    "type": "control_request",
                    "request_id": format!("stop-{pid}"),
                    "request": {"subtype": "interrupt"},
                });
                let mut line = request.to_string();
                line.push('\n');
                if let Some(stdin) = stdin.as_mut() {
                    let sent = async {
                        stdin.write_all(line.as_bytes()).await?;
                        stdin.flush().await
                    };
                    if let Err(e) = sent.await {
                        tracing::warn!(pid, "sending claude its interrupt failed: {e}");
                    }
                }
                tracing::info!(pid, "/stop: claude sent its interrupt");
            }
            line = &mut read => return Some(line),
            () = tokio::time::sleep_until(grace_ends), if interrupted.is_some() => return None,
        }
    }
}

/// A turn's `outcome` once the CLI was interrupted: a failure saying so,
/// with what it spent.
fn stopped(outcome: Result<Completion, Failure>) -> Result<Completion, Failure> {
    let spent = match outcome {
        Ok(completion) => completion.spent,
        Err(Failure::Failed { spent, .. }) => spent,
        Err(Failure::TimedOut) => return Err(Failure::TimedOut),
    };
    Err(Failure::Failed {
        reason: STOPPED.into(),
        spent,
    })
}

/// `outcome`, its spending marked with where the CLI's credentials came from.
fn with_key_source(
    outcome: Result<Completion, Failure>,
    source: Option<String>,
) -> Result<Completion, Failure> {
    match outcome {
        Ok(mut completion) => {
            completion.spent.api_key_source = source;
            Ok(completion)
        }
        Err(Failure::Failed { reason, mut spent }) => {
            spent.api_key_source = source;
            Err(Failure::Failed { reason, spent })
        }
        Err(Failure::TimedOut) => Err(Failure::TimedOut),
    }
}

/// Writes `value` to the process's stdin as one line.
async fn write_line(live: &mut Live, value: &serde_json::Value) -> std::io::Result<()> {
    let Some(stdin) = live.process.stdin.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "its stdin is closed",
        ));
    };
    let mut line = value.to_string();
    line.push('\n');
    stdin.write_all(line.as_bytes()).await?;
    stdin.flush().await
}

fn said(unparsed: &str) -> String {
    if unparsed.is_empty() {
        String::new()
    } else {
        format!("; it printed: {}", unparsed.chars().take(300).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_transcript_has_a_result_per_message_with_one_session() {
        let transcript =
            include_str!("../../../../../../../tests/data/claude/persistent-stream-json-transcript.jsonl");
        let results: Vec<_> = transcript.lines().filter_map(CliResult::parse).collect();
        assert_eq!(results.len(), 2);
        let ids: Vec<_> = results
            .iter()
            .map(|r| r.session_id().unwrap().to_owned())
            .collect();
        assert_eq!(ids[0], ids[1]);
        let texts: Vec<_> = results
            .into_iter()
            .map(|r| r.into_outcome().unwrap().text)
            .collect();
        assert_eq!(texts, ["PONG from fake: 2", "PONG from fake: 4"]);
    }

    #[test]
    fn the_captured_partial_messages_show_the_text_of_the_result() {
        let capture =
            include_str!("../../../../../../../tests/data/claude/stream-json-partial-messages.jsonl");
        let (draft, mut view) = Draft::new();
        let mut shown = Vec::new();
        let mut result = None;
        for line in capture.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            show_partial(&draft, &event);
            if view.has_changed().unwrap() {
                shown.push(view.borrow_and_update().clone());
            }
            result = result.or_else(|| CliResult::parse(line));
        }
        let final_text = result.unwrap().into_outcome().unwrap().text;
        assert_eq!(shown.last().unwrap(), &final_text);
        assert_eq!(
            shown[0], "Here is **what I see**: a p",
            "the first delta is shown alone"
        );
        assert!(shown.len() >= 4, "every delta is a new state: {shown:?}");
    }
}
