//! The `persistent` backend: one long-lived `claude -p
//! --input-format=stream-json --output-format=stream-json --verbose` per
//! plugin and session key, fed one user message per call and answered at
//! its `result` event. A process unused for `idle` is stopped, at most
//! `max_processes` live at once (the least recently used idle one makes
//! room), and one that dies is started again on its session (`--resume`)
//! and asked again, once per call.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::process::{read_line_capped, ClaudeProcess, Line};
use super::result::{is_session_id, CliResult};
use crate::capabilities::claude::backend::attached;
use crate::capabilities::claude::backend::permission::{control_request, Gate};
use crate::capabilities::claude::backend::{Call, Completion, Failure};
use crate::capabilities::claude::draft::Draft;
use crate::capabilities::claude::request::Request;
use crate::capabilities::claude::stop::{Stop, STOPPED};
use crate::capabilities::claude::tools::ToolPass;
use crate::config::claude::ClaudeConfig;
use crate::config::PluginName;

/// How long a process whose stdin was closed may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

type Key = (PluginName, String);

/// One session's process, if it has one, and when it was last used.
#[derive(Default)]
struct Slot {
    live: Option<Live>,
    last_used: Option<Instant>,
}

/// How long the CLI has to end its turn after its interrupt, before its
/// process group is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

struct Live {
    process: ClaudeProcess,
    /// The flags it was started with; a call with others needs a new one.
    flags: Vec<String>,
    /// The session it is in, once it said.
    session_id: Option<String>,
    /// Where its credentials come from, as its `system/init` event said
    /// (`"none"`: a subscription login).
    api_key_source: Option<String>,
    /// Its way to the plugins' tools, revoked when the process is gone.
    _tools: Option<Arc<ToolPass>>,
}

/// The live processes, by plugin and session key.
#[derive(Default)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Slot>>>>,
    /// The processes in a turn: out of their slot, which is locked until
    /// the turn ends (minutes, with a person asked about a tool).
    in_turn: Mutex<HashSet<u32>>,
    sweeping: AtomicBool,
}

/// A process counted in a turn until dropped (the turn ended, or the call
/// was cancelled).
struct InTurn<'a> {
    pool: &'a Pool,
    pid: u32,
}

impl<'a> InTurn<'a> {
    fn new(pool: &'a Pool, pid: u32) -> Self {
        pool.in_turn.lock().unwrap_or_else(|p| p.into_inner()).insert(pid);
        InTurn { pool, pid }
    }
}

impl Drop for InTurn<'_> {
    fn drop(&mut self) {
        let mut in_turn = self.pool.in_turn.lock().unwrap_or_else(|p| p.into_inner());
        in_turn.remove(&self.pid);
    }
}

/// What became of one turn.
enum Turn {
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

impl Pool {
    /// Asks the call's prompt in the session's process, starting it (on
    /// `resume`, if given) when there is none; `gate` answers its
    /// permission requests.
    pub async fn ask(
        self: &Arc<Self>,
        call: &Call<'_>,
        resume: Option<String>,
        gate: &Gate<'_>,
    ) -> Result<Completion, Failure> {
        let (config, plugin, request) = (call.config, call.scope.plugin, call.request);
        let deadline = call.deadline;
        self.start_sweeping(config.persistent.idle);
        let flags = request.cli_flags();
        // Read and encoded once, whatever the attempts.
        let content = attached::content(&request.prompt, &request.attachments, Some(&config.workdir))?;
        let message = Message {
            content: &content,
            cap: config.max_output,
            gate,
            draft: request.draft.as_ref(),
            deadline,
        };
        let Some(key) = request.session_key.clone() else {
            // No session to keep: a process for this one message.
            let mut live = spawn(config, plugin, request, &flags, resume.as_deref())?;
            let turn = turn(&mut live, &message).await;
            live.process.stop().await;
            return match turn {
                Turn::Answered(result) => result,
                Turn::TimedOut => Err(Failure::TimedOut),
                Turn::Stopped => Err(Failure::failed(STOPPED.into())),
                Turn::OutOfStep(reason) | Turn::Died(reason) => Err(Failure::failed(reason)),
            };
        };
        let slot = self.slot((plugin.clone(), key));
        let mut slot = slot.lock().await;
        slot.last_used = Some(Instant::now());
        if slot.live.as_ref().is_some_and(|live| live.flags != flags) {
            // Other options (model, system prompt, tools): same session, new process.
            let old = slot.live.take().expect("checked above");
            old.process.finish(EXIT_GRACE).await;
        }
        let mut resume = slot
            .live
            .as_ref()
            .and_then(|live| live.session_id.clone())
            .or(resume);
        for attempt in 1..=2 {
            // Out of the slot for the turn: if the call is cancelled mid-turn
            // (the plugin's own deadline), the process is dropped, and its
            // group killed, rather than kept with an answer nobody read.
            let mut live = match slot.live.take() {
                Some(live) => live,
                None => {
                    self.make_room(config.persistent.max_processes).await;
                    spawn(config, plugin, request, &flags, resume.as_deref())?
                }
            };
            let in_turn = InTurn::new(self, live.process.pid());
            let outcome = turn(&mut live, &message).await;
            drop(in_turn);
            match outcome {
                Turn::Answered(result) => {
                    slot.live = Some(live);
                    slot.last_used = Some(Instant::now());
                    return result;
                }
                Turn::TimedOut => {
                    let pid = live.process.pid();
                    live.process.stop().await;
                    tracing::warn!(%plugin, pid, "claude ran past its deadline: process group killed");
                    return Err(Failure::TimedOut);
                }
                Turn::Stopped => {
                    let pid = live.process.pid();
                    live.process.stop().await;
                    tracing::warn!(%plugin, pid, "claude did not end its turn when interrupted: process group killed");
                    return Err(Failure::failed(STOPPED.into()));
                }
                Turn::OutOfStep(reason) => {
                    live.process.stop().await;
                    return Err(Failure::failed(reason));
                }
                Turn::Died(reason) => {
                    let dead = live;
                    resume = dead.session_id.clone().or(resume);
                    let exit = dead.process.stop().await;
                    let reason = format!("{reason} ({}){}", exit.status, stderr_suffix(&exit.stderr));
                    if attempt == 2 {
                        return Err(Failure::failed(format!("claude died twice: {reason}")));
                    }
                    tracing::warn!(%plugin, "claude process died mid-turn, restarting on its session: {reason}");
                }
            }
        }
        unreachable!("the second attempt always returns")
    }

    /// Every slot, as they are now.
    fn slots(&self) -> Vec<Arc<tokio::sync::Mutex<Slot>>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.values().cloned().collect()
    }

    fn slot(&self, key: Key) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// Stops the least recently used idle process while `max` or more are
    /// live. A slot in use counts as live and is never touched.
    async fn make_room(&self, max: usize) {
        loop {
            let slots = self.slots();
            let mut live = 0;
            let mut oldest: Option<(Instant, tokio::sync::OwnedMutexGuard<Slot>)> = None;
            for slot in slots {
                match slot.try_lock_owned() {
                    Err(_) => live += 1,
                    Ok(guard) if guard.live.is_some() => {
                        live += 1;
                        let used = guard.last_used.unwrap_or_else(Instant::now);
                        if oldest.as_ref().is_none_or(|(at, _)| used < *at) {
                            oldest = Some((used, guard));
                        }
                    }
                    Ok(_) => {}
                }
            }
            // The slot asking is locked and has no process: it counted as live.
            if live <= max {
                return;
            }
            let Some((_, mut guard)) = oldest else { return };
            if let Some(evicted) = guard.live.take() {
                tracing::info!(
                    pid = evicted.process.pid(),
                    "stopping the least recently used claude process to make room"
                );
                evicted.process.finish(EXIT_GRACE).await;
            }
        }
    }

    /// Stops the process of `plugin`'s session `key`, if it has one.
    pub async fn forget(&self, plugin: &PluginName, key: &str) {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.remove(&(plugin.clone(), key.to_owned()))
        };
        if let Some(slot) = slot {
            if let Some(live) = slot.lock().await.live.take() {
                live.process.finish(EXIT_GRACE).await;
            }
        }
    }

    /// Stops every process, side by side (each may take `EXIT_GRACE`).
    pub async fn stop_all(&self) {
        let slots: Vec<_> = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.drain().map(|(_, slot)| slot).collect()
        };
        let mut stopping = tokio::task::JoinSet::new();
        for slot in slots {
            stopping.spawn(async move {
                if let Some(live) = slot.lock().await.live.take() {
                    live.process.finish(EXIT_GRACE).await;
                }
            });
        }
        stopping.join_all().await;
    }

    /// The process ids of the live processes, idle or in a turn; never
    /// waits for a turn to end.
    pub async fn live_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .in_turn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        // Without waiting for a busy slot: its process is in a turn,
        // counted above, or being started or stopped.
        for slot in self.slots() {
            if let Ok(slot) = slot.try_lock() {
                pids.extend(slot.live.as_ref().map(|live| live.process.pid()));
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Starts the task that stops processes idle for `idle`, once.
    fn start_sweeping(self: &Arc<Self>, idle: Duration) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let pool: Weak<Pool> = Arc::downgrade(self);
        let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.stop_idle(idle).await;
            }
        });
    }

    async fn stop_idle(&self, idle: Duration) {
        let slots: Vec<_> = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            // Slots nobody holds and that have no process are dropped.
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1 || slot.try_lock().is_ok_and(|s| s.live.is_some())
            });
            slots.values().cloned().collect()
        };
        for slot in slots {
            let Ok(mut slot) = slot.try_lock() else { continue };
            let expired = slot.last_used.is_none_or(|at| at.elapsed() >= idle);
            if let Some(live) = slot.live.take_if(|_| expired) {
                tracing::info!(pid = live.process.pid(), "stopping an idle claude process");
                live.process.finish(EXIT_GRACE).await;
            }
        }
    }
}

fn spawn(
    config: &ClaudeConfig,
    plugin: &PluginName,
    request: &Request,
    flags: &[String],
    resume: Option<&str>,
) -> Result<Live, Failure> {
    let mut args: Vec<String> = [
        "-p",
        "--input-format=stream-json",
        "--output-format=stream-json",
        "--verbose",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(flags);
    if let Some(id) = resume {
        args.push(format!("--resume={id}"));
    }
    let process = ClaudeProcess::spawn(config, &args)
        .map_err(|e| Failure::failed(format!("cannot start `{}`: {e}", config.command.display())))?;
    tracing::info!(%plugin, pid = process.pid(), resume, "started a persistent claude process");
    Ok(Live {
        process,
        flags: flags.to_vec(),
        session_id: resume.map(str::to_owned),
        api_key_source: None,
        _tools: request.plugin_tools.clone(),
    })
}

/// One user message, and what goes on around its turn.
struct Message<'a> {
    /// Its content blocks.
    content: &'a [serde_json::Value],
    /// The most output the turn may print, in bytes.
    cap: u64,
    /// What answers the CLI's permission requests; its `stop` ends the turn.
    gate: &'a Gate<'a>,
    /// Where the partial text is shown, if it is.
    draft: Option<&'a Draft>,
    /// When the turn must have ended.
    deadline: Instant,
}

/// Writes one user `message` and reads events up to its `result`,
/// answering the CLI's permission requests through its gate on the way and
/// showing its partial text in its draft, if given. The gate's `stop`
/// sends the CLI its interrupt and waits [`INTERRUPT_GRACE`] for the
/// turn's `result`.
async fn turn(live: &mut Live, message: &Message<'_>) -> Turn {
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

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.chars().take(300).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_captured_transcript_has_a_result_per_message_with_one_session() {
        let transcript =
            include_str!("../../../../../../tests/data/claude/persistent-stream-json-transcript.jsonl");
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
        let capture = include_str!("../../../../../../tests/data/claude/stream-json-partial-messages.jsonl");
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
