//! Tool use a person approves: a service below the capabilities, which
//! Claude's calls use. When Claude wants a tool that a plugin's
//! grant lists in `ask_tools`, the [`Approvals`] desk asks in the chat the
//! call came from, through a [`Prompter`] (the Telegram bot's inline
//! buttons), waits for a press until the approval timeout or the call's
//! deadline, and records every decision in `tool_approvals`. "Allow for this
//! conversation" is kept in `tool_allowances` until the conversation is
//! reset. Nobody to ask (a scheduled task, a shadow handler, no bot) is a
//! deny, recorded too; so is a restart or a shutdown while waiting.
//!
//! This file is the waiting itself: one entry per prompt, settled by a
//! press, the timeout, the call's end or a shutdown. Beside it: the
//! [`outcome`]s, the buttons' [`choice`] wire format, the [`tool_use`]
//! summary a person decides on, the [`prompter`] port and the [`records`].

mod choice;
mod outcome;
mod prompter;
pub(crate) mod records;
mod tool_use;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

pub use choice::Choice;
pub use outcome::ApprovalOutcome;
pub use prompter::{Prompt, Prompter};
use records::{allow_conversation, allowed_earlier, finish, insert, record_message, Decider, NewApproval};
pub use records::{recent, ApprovalRecord};
pub use tool_use::ToolUse;

use crate::config::units::HumanDuration;
use crate::config::PluginName;
use crate::db::Database;

/// What a call stopped by `/stop` is told, and what its prompt then says.
pub const STOPPED: &str = "stopped by /stop in the chat";

/// Who wants the tool, and where a person could answer.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    /// The plugin whose Claude call it is.
    pub plugin: &'a PluginName,
    /// The call's conversation (its session key).
    pub session_key: Option<&'a str>,
    /// The chat the call serves, if it serves one, or where a task asks.
    pub chat: Option<i64>,
    /// A task's run, if the call is one's.
    pub run: Option<i64>,
    /// How long a press is waited for: a task's run's own wait, else (none)
    /// the chat's approval timeout.
    pub wait: Option<Duration>,
    /// Whether the call is a shadow handler's (whose words never reach the chat).
    pub shadow: bool,
}

impl Asking<'_> {
    /// The approval's row: `tool_use`, and what the person is shown.
    fn row(&self, tool_use: &ToolUse, summary: String) -> NewApproval {
        NewApproval {
            plugin: self.plugin.to_string(),
            session_key: self.session_key.map(str::to_owned),
            chat: self.chat,
            run: self.run,
            tool: tool_use.tool.clone(),
            summary,
        }
    }
}

/// Where a prompt is posted, and how long a press is waited for.
struct Prompting {
    chat: i64,
    prompter: Arc<dyn Prompter>,
    wait: Duration,
}

/// A prompt posted in a chat, for a tool use and its summary.
struct Posted<'a> {
    id: i64,
    tool_use: &'a ToolUse,
    summary: &'a str,
    prompter: &'a Arc<dyn Prompter>,
    chat: i64,
    message: i32,
}

/// The answer to the CLI.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The tool may run.
    Allow,
    /// It may not; the model is told this.
    Deny(String),
}

/// What a press came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Press {
    /// It decided the approval; the text says how (for the callback answer).
    Decided(String),
    /// The approval is no longer waiting (answered, timed out, restarted).
    NotWaiting,
    /// The press came from another chat, or under another message, than
    /// the prompt's.
    Elsewhere,
}

struct Waiting {
    chat: i64,
    message: Option<i32>,
    /// The tool and what it would do, for the settled prompt.
    what: String,
    answer: oneshot::Sender<Answer>,
}

enum Answer {
    Pressed(Decided),
    /// The host is stopping: why.
    Closed(String),
}

struct Decided {
    choice: Choice,
    by: u64,
    by_name: String,
}

/// What asking came to: a press, or why there was none to go by.
enum Asked {
    Pressed(Decided),
    Denied(String),
}

/// Who allowed a change with a press.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    /// Their Telegram user id.
    pub id: u64,
    /// Their name as Telegram gave it.
    pub name: String,
}

/// The approvals desk, shared by every Claude call.
pub struct Approvals {
    db: Database,
    prompter: RwLock<Option<(Arc<dyn Prompter>, Duration)>>,
    waiting: Arc<Mutex<HashMap<i64, Waiting>>>,
}

impl Approvals {
    /// A desk with nobody to ask yet: every tool use asked about is denied
    /// until [`Approvals::connect`].
    pub fn new(db: Database) -> Approvals {
        Approvals {
            db,
            prompter: RwLock::new(None),
            waiting: Arc::default(),
        }
    }

    /// Asks through `prompter` from now on, waiting `timeout` for a press.
    pub fn connect(&self, prompter: Arc<dyn Prompter>, timeout: Duration) {
        *self.prompter.write().unwrap_or_else(|p| p.into_inner()) = Some((prompter, timeout));
    }

    fn prompter(&self) -> Option<(Arc<dyn Prompter>, Duration)> {
        self.prompter.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Decides whether `asking` may use `tool_use`: allowed earlier in the
    /// conversation, else asked in its chat and waited for until the
    /// approval timeout, `deadline` or `stopped` (the call's `/stop`),
    /// whichever comes first.
    pub async fn decide(
        &self,
        asking: Asking<'_>,
        tool_use: &ToolUse,
        stopped: impl Future<Output = ()>,
        deadline: Instant,
    ) -> Verdict {
        let row = asking.row(tool_use, tool_use.summary());
        if let Some(key) = asking.session_key {
            match allowed_earlier(&self.db, asking.plugin, key, &tool_use.tool).await {
                Ok(true) => {
                    self.settled(row, ApprovalOutcome::AllowedEarlier, None).await;
                    return Verdict::Allow;
                }
                Ok(false) => {}
                Err(e) => tracing::error!(plugin = %asking.plugin, "reading tool allowances failed: {e:#}"),
            }
        }
        let nobody = match self.prompting(asking, deadline) {
            Ok(prompting) => {
                return match self.ask(asking, tool_use, row, prompting, stopped, true).await {
                    Asked::Pressed(decided) => self.verdict(asking, tool_use, decided).await,
                    Asked::Denied(why) => Verdict::Deny(why),
                };
            }
            Err(nobody) => nobody,
        };
        let reason = format!("`{}` needs a person's approval: {nobody}", tool_use.tool);
        tracing::warn!(plugin = %asking.plugin, tool = tool_use.tool, "tool use denied: {reason}");
        self.settled(row, ApprovalOutcome::NoOneToAsk, Some(&reason))
            .await;
        Verdict::Deny(reason)
    }

    /// Asks in `asking`'s chat whether the change `card` says may be made
    /// (the host's own acting and changing tools): one press of **Allow
    /// once** by an allowed user, waited for until the approval timeout or
    /// `deadline`, recorded as any tool use's approval. Who pressed; else
    /// what Claude is told.
    pub async fn confirm(
        &self,
        asking: Asking<'_>,
        tool_use: &ToolUse,
        card: &str,
        deadline: Instant,
    ) -> Result<Approver, String> {
        let row = asking.row(tool_use, card.to_owned());
        let nobody = match self.prompting(asking, deadline) {
            Err(nobody) => nobody,
            Ok(prompting) => {
                let pending = std::future::pending::<()>();
                return match self.ask(asking, tool_use, row, prompting, pending, false).await {
                    Asked::Pressed(Decided {
                        choice: Choice::Deny,
                        by_name,
                        ..
                    }) => Err(format!("Denied from the chat by {by_name}: nothing was changed")),
                    Asked::Pressed(decided) => Ok(Approver {
                        id: decided.by,
                        name: decided.by_name,
                    }),
                    Asked::Denied(why) => Err(format!("{why}: nothing was changed")),
                };
            }
        };
        let reason = format!("`{}` needs a person's press: {nobody}", tool_use.tool);
        self.settled(row, ApprovalOutcome::NoOneToAsk, Some(&reason))
            .await;
        Err(reason)
    }

    /// Where and how long `asking` is asked until `deadline`; else why
    /// nobody can be.
    fn prompting(&self, asking: Asking<'_>, deadline: Instant) -> Result<Prompting, &'static str> {
        match (asking.chat, self.prompter()) {
            _ if asking.shadow => Err("a shadow handler cannot ask anyone"),
            (None, _) => Err("this call serves no chat, so there is nobody to ask"),
            (Some(_), None) => Err("there is no Telegram bot here to ask through"),
            (Some(chat), Some((prompter, timeout))) => Ok(Prompting {
                chat,
                prompter,
                wait: asking
                    .wait
                    .unwrap_or(timeout)
                    .min(deadline.saturating_duration_since(Instant::now())),
            }),
        }
    }

    /// Posts the prompt (offering "for this conversation" if
    /// `conversation`) and waits for a press, or for `stopped`.
    async fn ask(
        &self,
        asking: Asking<'_>,
        tool_use: &ToolUse,
        row: NewApproval,
        prompting: Prompting,
        stopped: impl Future<Output = ()>,
        conversation: bool,
    ) -> Asked {
        let Prompting { chat, prompter, wait } = prompting;
        let summary = row.summary.clone();
        let id = match insert(&self.db, row, ApprovalOutcome::Pending, None).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(plugin = %asking.plugin, "recording a tool approval failed: {e:#}");
                return Asked::Denied("the host could not record the approval".into());
            }
        };
        let (answer, answered) = oneshot::channel();
        self.lock_waiting().insert(
            id,
            Waiting {
                chat,
                message: None,
                what: format!("{} — {summary}", tool_use.tool),
                answer,
            },
        );
        let mut guard = WaitGuard {
            id,
            chat,
            db: self.db.clone(),
            prompter: prompter.clone(),
            waiting: self.waiting.clone(),
            armed: true,
        };
        let prompt = Prompt {
            id,
            plugin: asking.plugin.to_string(),
            tool: tool_use.display_name(),
            summary: summary.clone(),
            wait,
            conversation,
        };
        let message = match prompter.post(chat, &prompt).await {
            Ok(message) => message,
            Err(e) => {
                guard.armed = false;
                self.lock_waiting().remove(&id);
                let reason = format!("the approval prompt could not be posted: {e:#}");
                tracing::error!(plugin = %asking.plugin, chat, "{reason}");
                finish(&self.db, id, ApprovalOutcome::Abandoned, None, Some(&reason)).await;
                return Asked::Denied(format!(
                    "`{}` needs a person's approval, and the prompt could not be posted in the chat",
                    tool_use.tool
                ));
            }
        };
        if let Some(waiting) = self.lock_waiting().get_mut(&id) {
            waiting.message = Some(message);
        }
        record_message(&self.db, id, message).await;
        tracing::info!(plugin = %asking.plugin, chat, tool = tool_use.tool, approval = id, "asked in the chat to allow a tool use");
        let posted = Posted {
            id,
            tool_use,
            summary: &summary,
            prompter: &prompter,
            chat,
            message,
        };
        let mut answered = answered;
        let waited = tokio::select! {
            waited = tokio::time::timeout(wait, &mut answered) => waited.map_err(|_| Unanswered::TimedOut),
            () = stopped => Err(Unanswered::Stopped),
        };
        let answer = match waited {
            Ok(answer) => answer.ok(),
            // Unless a press took the approval just now: its answer is on the way.
            Err(unanswered) => {
                let still_waiting = self.lock_waiting().remove(&id).is_some();
                match (still_waiting, unanswered) {
                    (false, _) => answered.await.ok(),
                    (true, Unanswered::TimedOut) => None,
                    (true, Unanswered::Stopped) => {
                        guard.armed = false;
                        posted
                            .not_allowed(&self.db, ApprovalOutcome::Abandoned, "⏹", STOPPED)
                            .await;
                        return Asked::Denied(STOPPED.into());
                    }
                }
            }
        };
        guard.armed = false;
        let decided = match answer {
            Some(Answer::Pressed(decided)) => decided,
            Some(Answer::Closed(why)) => return Asked::Denied(format!("Not allowed: {why}")),
            None => {
                let reason = format!("nobody answered within {}", HumanDuration(wait));
                posted
                    .not_allowed(&self.db, ApprovalOutcome::TimedOut, "⌛", &reason)
                    .await;
                tracing::warn!(plugin = %asking.plugin, chat, tool = tool_use.tool, "tool use denied: {reason}");
                return Asked::Denied(format!("Denied: {reason} in the chat"));
            }
        };
        Asked::Pressed(decided)
    }

    /// What a press decided, once recorded (by [`Approvals::press`]).
    async fn verdict(&self, asking: Asking<'_>, tool_use: &ToolUse, decided: Decided) -> Verdict {
        match decided.choice {
            Choice::Deny => Verdict::Deny(format!("Denied from the chat by {}", decided.by_name)),
            Choice::Once => Verdict::Allow,
            Choice::Conversation => {
                if let Some(key) = asking.session_key {
                    let stored =
                        allow_conversation(&self.db, asking.plugin, key, &tool_use.tool, decided.by).await;
                    if let Err(e) = stored {
                        tracing::error!(plugin = %asking.plugin, "storing a tool allowance failed: {e:#}");
                    }
                }
                Verdict::Allow
            }
        }
    }

    /// A press of `choice` on approval `id` by user `by` in `chat`, under
    /// the prompt `message` (the bot checked the allowlist): the waiting
    /// call gets it, the decision is recorded and the prompt settled.
    pub async fn press(
        &self,
        id: i64,
        chat: i64,
        message: Option<i32>,
        choice: Choice,
        by: u64,
        by_name: &str,
    ) -> Press {
        let waiting = {
            let mut waiting = self.lock_waiting();
            match waiting.get(&id) {
                None => return Press::NotWaiting,
                Some(w) if w.chat != chat => return Press::Elsewhere,
                Some(Waiting {
                    message: Some(prompt),
                    ..
                }) if message.is_some_and(|m| m != *prompt) => return Press::Elsewhere,
                Some(_) => waiting.remove(&id).expect("just seen"),
            }
        };
        let outcome = match choice {
            Choice::Once => ApprovalOutcome::AllowedOnce,
            Choice::Conversation => ApprovalOutcome::AllowedConversation,
            Choice::Deny => ApprovalOutcome::Denied,
        };
        let decider = Decider {
            id: i64::try_from(by).unwrap_or(i64::MAX),
            name: by_name.to_owned(),
        };
        finish(&self.db, id, outcome, Some(decider), None).await;
        let said = match choice {
            Choice::Once => format!("✅ Allowed once by {by_name}"),
            Choice::Conversation => format!("✅ Allowed for this conversation by {by_name}"),
            Choice::Deny => format!("🚫 Denied by {by_name}"),
        };
        // The press may come before the host has seen the prompt's id.
        if let (Some(message), Some((prompter, _))) = (waiting.message.or(message), self.prompter()) {
            prompter
                .settle(chat, message, &format!("{said}: {}", waiting.what))
                .await;
        }
        tracing::info!(
            approval = id,
            chat,
            by,
            outcome = outcome.as_str(),
            "tool use decided in the chat"
        );
        let _ = waiting.answer.send(Answer::Pressed(Decided {
            choice,
            by,
            by_name: by_name.to_owned(),
        }));
        Press::Decided(said)
    }

    /// Denies every approval still waiting (the host is stopping): the
    /// calls go on without the tool and the prompts say so.
    pub async fn close(&self, why: &str) {
        let waiting: Vec<(i64, Waiting)> = self.lock_waiting().drain().collect();
        let prompter = self.prompter();
        for (id, waiting) in waiting {
            finish(&self.db, id, ApprovalOutcome::Abandoned, None, Some(why)).await;
            if let (Some(message), Some((prompter, _))) = (waiting.message, &prompter) {
                prompter
                    .settle(waiting.chat, message, &format!("⏹ Not allowed: {why}."))
                    .await;
            }
            let _ = waiting.answer.send(Answer::Closed(why.to_owned()));
        }
    }

    /// Approvals left waiting by a host that stopped without answering them
    /// (a crash, a kill): recorded as abandoned, their prompts settled and
    /// their chats told the tool did not run.
    pub async fn abandon_stale(&self) -> anyhow::Result<()> {
        let stale = self
            .db
            .call(|c| {
                let mut select = c.prepare(
                    "SELECT id, chat_id, message_id, tool, summary FROM tool_approvals WHERE outcome = 'pending'",
                )?;
                let rows = select.query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<i32>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let why = "Mission Control restarted while waiting for an answer";
        for (id, chat, message, tool, summary) in stale {
            finish(&self.db, id, ApprovalOutcome::Abandoned, None, Some(why)).await;
            tracing::warn!(approval = id, tool, "tool approval abandoned by a restart");
            let (Some(chat), Some((prompter, _))) = (chat, self.prompter()) else {
                continue;
            };
            if let Some(message) = message {
                prompter
                    .settle(
                        chat,
                        message,
                        &format!("⏹ {tool}: {summary} — not allowed: {why}."),
                    )
                    .await;
            }
            prompter
                .tell(chat, &format!("{why} about {tool} ({summary}): it did not run."))
                .await;
        }
        Ok(())
    }

    /// Whether a prompt in `chat` waits for a press.
    pub fn is_waiting_in(&self, chat: i64) -> bool {
        self.lock_waiting().values().any(|w| w.chat == chat)
    }

    /// Forgets what was allowed for `plugin`'s conversation `key` (`/reset`).
    pub async fn forget(&self, plugin: &PluginName, key: &str) -> anyhow::Result<()> {
        let (plugin, key) = (plugin.to_string(), key.to_owned());
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM tool_allowances WHERE plugin = ?1 AND session_key = ?2",
                    (plugin, key),
                )
            })
            .await
            .map(drop)
    }

    async fn settled(&self, row: NewApproval, outcome: ApprovalOutcome, reason: Option<&str>) {
        if let Err(e) = insert(&self.db, row, outcome, reason.map(str::to_owned)).await {
            tracing::error!("recording a tool approval failed: {e:#}");
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A wait for a press; if the call is dropped while waiting (its deadline),
/// the approval is recorded abandoned and its prompt settled.
struct WaitGuard {
    id: i64,
    chat: i64,
    db: Database,
    prompter: Arc<dyn Prompter>,
    waiting: Arc<Mutex<HashMap<i64, Waiting>>>,
    armed: bool,
}

/// Why no press decided an approval.
enum Unanswered {
    /// Nobody pressed within the wait.
    TimedOut,
    /// The call was stopped (`/stop`).
    Stopped,
}

impl Posted<'_> {
    /// Records the approval as `outcome` for `reason` and edits the prompt
    /// to say, after `icon`, that it was not allowed.
    async fn not_allowed(&self, db: &Database, outcome: ApprovalOutcome, icon: &str, reason: &str) {
        finish(db, self.id, outcome, None, Some(reason)).await;
        let text = format!(
            "{icon} {}: {} — {reason}, so it was not allowed.",
            self.tool_use.tool, self.summary
        );
        self.prompter.settle(self.chat, self.message, &text).await;
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        let Some(waiting) = waiting else { return };
        let (db, prompter, id, chat) = (self.db.clone(), self.prompter.clone(), self.id, self.chat);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let why = "the call ended before an answer";
            finish(&db, id, ApprovalOutcome::Abandoned, None, Some(why)).await;
            if let Some(message) = waiting.message {
                prompter
                    .settle(chat, message, &format!("⏹ Not allowed: {why}."))
                    .await;
            }
        });
    }
}
