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

use tokio::time::Instant;

use super::process::ClaudeProcess;
use crate::capabilities::claude::backend::attached;
use crate::capabilities::claude::backend::permission::Gate;
use crate::capabilities::claude::backend::{Call, Completion, Failure};
use crate::capabilities::claude::request::Request;
use crate::capabilities::claude::stop::STOPPED;
use crate::config::claude::ClaudeConfig;
use crate::config::PluginName;
use turn::{turn, Live, Message, Turn};

mod turn;

/// How long a process whose stdin was closed may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

type Key = (PluginName, String);

/// One session's process, if it has one, and when it was last used.
#[derive(Default)]
struct Slot {
    live: Option<Live>,
    last_used: Option<Instant>,
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

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {}", stderr.chars().take(300).collect::<String>())
    }
}
