//! Tool use a person approves. When Claude wants a tool that a plugin's
//! grant lists in `ask_tools`, the [`Approvals`] desk asks in the chat the
//! call came from, through a [`Prompter`] (the Telegram bot's inline
//! buttons), waits for a press until the approval timeout or the call's
//! deadline, and records every decision in `tool_approvals`. "Allow for this
//! conversation" is kept in `tool_allowances` until the conversation is
//! reset. Nobody to ask (a scheduled task, a shadow handler, no bot) is a
//! deny, recorded too; so is a restart or a shutdown while waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::units::HumanDuration;
use crate::config::PluginName;
use crate::db::{self, text_enum, Database};

/// The longest input summary shown in the chat.
const MAX_SUMMARY: usize = 300;

text_enum! {
    /// What came of one tool use asked about.
    pub enum ApprovalOutcome {
        /// Posted in the chat, no answer yet.
        Pending = "pending",
        /// A person allowed this one use.
        AllowedOnce = "allowed_once",
        /// A person allowed the tool for the rest of the conversation.
        AllowedConversation = "allowed_conversation",
        /// Allowed without asking: a person allowed it earlier in this conversation.
        AllowedEarlier = "allowed_earlier",
        /// A person denied it.
        Denied = "denied",
        /// Nobody answered in time.
        TimedOut = "timed_out",
        /// There was nobody to ask (a task, a shadow handler, no bot).
        NoOneToAsk = "no_one_to_ask",
        /// The call or the host ended while waiting.
        Abandoned = "abandoned",
    }
}

impl ApprovalOutcome {
    /// Whether the tool ran.
    pub fn allowed(self) -> bool {
        matches!(
            self,
            ApprovalOutcome::AllowedOnce
                | ApprovalOutcome::AllowedConversation
                | ApprovalOutcome::AllowedEarlier
        )
    }
}

/// A button under an approval prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Allow once.
    Once,
    /// Allow for this conversation.
    Conversation,
    /// Deny.
    Deny,
}

impl Choice {
    /// The button's callback data for approval `id`.
    pub fn callback_data(self, id: i64) -> String {
        let word = match self {
            Choice::Once => "once",
            Choice::Conversation => "conversation",
            Choice::Deny => "deny",
        };
        format!("tool:{id}:{word}")
    }

    /// The approval and choice a button's `data` names, if it is ours.
    pub fn parse(data: &str) -> Option<(i64, Choice)> {
        let rest = data.strip_prefix("tool:")?;
        let (id, word) = rest.split_once(':')?;
        let choice = match word {
            "once" => Choice::Once,
            "conversation" => Choice::Conversation,
            "deny" => Choice::Deny,
            _ => return None,
        };
        Some((id.parse().ok()?, choice))
    }
}

/// A tool Claude wants to use, with its input.
#[derive(Debug, Clone)]
pub struct ToolUse {
    /// The tool's name (`Bash`, `Write`…).
    pub tool: String,
    /// Its input as the model wrote it.
    pub input: Value,
}

impl ToolUse {
    /// What a person needs to decide, cut to fit a chat message: the Bash
    /// command; the file path, with the start of what a `Write` would put
    /// there or what an `Edit` would replace by what; the URL; else the
    /// input as JSON.
    pub fn summary(&self) -> String {
        let field = |name: &str| self.input.get(name).and_then(Value::as_str);
        let text = match (
            field("command"),
            field("file_path").or(field("path")),
            field("url"),
        ) {
            (Some(command), _, _) => command.to_owned(),
            (None, Some(path), _) => match (field("content"), field("old_string"), field("new_string")) {
                (Some(content), _, _) => format!("{path}\n{}", first_lines(content, 5)),
                (None, Some(old), Some(new)) => {
                    format!(
                        "{path}\nreplace: {}\nwith: {}",
                        first_lines(old, 3),
                        first_lines(new, 3)
                    )
                }
                _ => path.to_owned(),
            },
            (None, None, Some(url)) => url.to_owned(),
            _ => self.input.to_string(),
        };
        cut(&text, MAX_SUMMARY)
    }
}

/// The first `n` lines of `text`, with `…` when there are more.
fn first_lines(text: &str, n: usize) -> String {
    let mut lines: Vec<&str> = text.lines().take(n + 1).collect();
    if lines.len() > n {
        lines[n] = "…";
    }
    lines.join("\n")
}

/// Who wants the tool, and where a person could answer.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    /// The plugin whose Claude call it is.
    pub plugin: &'a PluginName,
    /// The call's conversation (its session key).
    pub session_key: Option<&'a str>,
    /// The chat the call serves, if it serves one.
    pub chat: Option<i64>,
    /// Whether the call is a shadow handler's (whose words never reach the chat).
    pub shadow: bool,
}

/// The answer to the CLI.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The tool may run.
    Allow,
    /// It may not; the model is told this.
    Deny(String),
}

/// One prompt as posted in a chat.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The approval's id (its buttons carry it).
    pub id: i64,
    /// The plugin asking.
    pub plugin: String,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// How long it waits for a press.
    pub wait: Duration,
}

/// Where prompts are posted and settled: the Telegram bot.
#[async_trait::async_trait]
pub trait Prompter: Send + Sync + 'static {
    /// Posts `prompt` with its buttons in `chat`; returns the message id.
    async fn post(&self, chat: i64, prompt: &Prompt) -> anyhow::Result<i32>;
    /// Replaces the prompt `message` in `chat` with `text`, buttons gone.
    async fn settle(&self, chat: i64, message: i32, text: &str);
    /// Sends `text` to `chat` as a new message.
    async fn tell(&self, chat: i64, text: &str);
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

/// One decision, for `/status`, the page and `mission approvals`.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// Its id.
    pub id: i64,
    /// The plugin asking.
    pub plugin: String,
    /// The chat asked in.
    pub chat_id: Option<i64>,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// When it was asked.
    pub asked_at: DateTime<Utc>,
    /// What came of it.
    pub outcome: ApprovalOutcome,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided, for a press.
    pub decided_by: Option<i64>,
    /// Their name.
    pub decided_by_name: Option<String>,
    /// Why, for a deny without a press.
    pub reason: Option<String>,
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
    /// approval timeout or `deadline`, whichever comes first.
    pub async fn decide(&self, asking: Asking<'_>, tool_use: &ToolUse, deadline: Instant) -> Verdict {
        let summary = tool_use.summary();
        let row = NewApproval {
            plugin: asking.plugin.to_string(),
            session_key: asking.session_key.map(str::to_owned),
            chat: asking.chat,
            tool: tool_use.tool.clone(),
            summary: summary.clone(),
        };
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
        let prompter = self.prompter();
        let nobody = match (asking.chat, &prompter) {
            _ if asking.shadow => "a shadow handler cannot ask anyone",
            (None, _) => "this call serves no chat, so there is nobody to ask",
            (Some(_), None) => "there is no Telegram bot here to ask through",
            (Some(chat), Some((prompter, timeout))) => {
                return self
                    .ask(
                        asking,
                        tool_use,
                        row,
                        (chat, prompter.clone(), *timeout),
                        deadline,
                    )
                    .await
            }
        };
        let reason = format!("`{}` needs a person's approval: {nobody}", tool_use.tool);
        tracing::warn!(plugin = %asking.plugin, tool = tool_use.tool, "tool use denied: {reason}");
        self.settled(row, ApprovalOutcome::NoOneToAsk, Some(&reason))
            .await;
        Verdict::Deny(reason)
    }

    /// Posts the prompt in `chat` and waits for a press.
    async fn ask(
        &self,
        asking: Asking<'_>,
        tool_use: &ToolUse,
        row: NewApproval,
        (chat, prompter, timeout): (i64, Arc<dyn Prompter>, Duration),
        deadline: Instant,
    ) -> Verdict {
        let summary = row.summary.clone();
        let wait = timeout.min(deadline.saturating_duration_since(Instant::now()));
        let id = match insert(&self.db, row, ApprovalOutcome::Pending, None).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(plugin = %asking.plugin, "recording a tool approval failed: {e:#}");
                return Verdict::Deny("the host could not record the approval".into());
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
            tool: tool_use.tool.clone(),
            summary: summary.clone(),
            wait,
        };
        let message = match prompter.post(chat, &prompt).await {
            Ok(message) => message,
            Err(e) => {
                guard.armed = false;
                self.lock_waiting().remove(&id);
                let reason = format!("the approval prompt could not be posted: {e:#}");
                tracing::error!(plugin = %asking.plugin, chat, "{reason}");
                finish(&self.db, id, ApprovalOutcome::Abandoned, None, Some(&reason)).await;
                return Verdict::Deny(format!(
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
        let mut answered = answered;
        let answer = match tokio::time::timeout(wait, &mut answered).await {
            Ok(answer) => answer.ok(),
            // Unless a press took the approval just now: its answer is on the way.
            Err(_) => {
                let still_waiting = self.lock_waiting().remove(&id).is_some();
                match still_waiting {
                    true => None,
                    false => answered.await.ok(),
                }
            }
        };
        guard.armed = false;
        let decided = match answer {
            Some(Answer::Pressed(decided)) => decided,
            Some(Answer::Closed(why)) => return Verdict::Deny(format!("Not allowed: {why}")),
            None => {
                let reason = format!("nobody answered within {}", HumanDuration(wait));
                finish(&self.db, id, ApprovalOutcome::TimedOut, None, Some(&reason)).await;
                let text = format!(
                    "⌛ {}: {summary} — {reason}, so it was not allowed.",
                    tool_use.tool
                );
                prompter.settle(chat, message, &text).await;
                tracing::warn!(plugin = %asking.plugin, chat, tool = tool_use.tool, "tool use denied: {reason}");
                return Verdict::Deny(format!("Denied: {reason} in the chat"));
            }
        };
        self.verdict(asking, tool_use, decided).await
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
        let decider = (i64::try_from(by).unwrap_or(i64::MAX), by_name.to_owned());
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

struct NewApproval {
    plugin: String,
    session_key: Option<String>,
    chat: Option<i64>,
    tool: String,
    summary: String,
}

async fn insert(
    db: &Database,
    row: NewApproval,
    outcome: ApprovalOutcome,
    reason: Option<String>,
) -> anyhow::Result<i64> {
    let now = Utc::now().timestamp_millis();
    let decided_at = (outcome != ApprovalOutcome::Pending).then_some(now);
    db.call(move |c| {
        c.execute(
            "INSERT INTO tool_approvals
                 (plugin, session_key, chat_id, tool, summary, asked_at, outcome, decided_at, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            (
                row.plugin,
                row.session_key,
                row.chat,
                row.tool,
                row.summary,
                now,
                outcome,
                decided_at,
                reason,
            ),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

async fn record_message(db: &Database, id: i64, message: i32) {
    let stored = db
        .call(move |c| {
            c.execute(
                "UPDATE tool_approvals SET message_id = ?2 WHERE id = ?1",
                (id, message),
            )
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(approval = id, "recording the prompt's message failed: {e:#}");
    }
}

/// Records the outcome of a pending approval (once: a settled one stays).
async fn finish(
    db: &Database,
    id: i64,
    outcome: ApprovalOutcome,
    decider: Option<(i64, String)>,
    reason: Option<&str>,
) {
    let reason = reason.map(str::to_owned);
    let now = Utc::now().timestamp_millis();
    let (by, by_name) = decider.unzip();
    let stored = db
        .call(move |c| {
            c.execute(
                "UPDATE tool_approvals
                 SET outcome = ?2, decided_at = ?3, decided_by = ?4, decided_by_name = ?5, reason = ?6
                 WHERE id = ?1 AND outcome = 'pending'",
                (id, outcome, now, by, by_name, reason),
            )
        })
        .await;
    if let Err(e) = stored {
        tracing::error!(approval = id, "recording a tool approval's outcome failed: {e:#}");
    }
}

async fn allowed_earlier(db: &Database, plugin: &PluginName, key: &str, tool: &str) -> anyhow::Result<bool> {
    let (plugin, key, tool) = (plugin.to_string(), key.to_owned(), tool.to_owned());
    db.call(move |c| {
        c.query_row(
            "SELECT EXISTS (SELECT 1 FROM tool_allowances WHERE plugin = ?1 AND session_key = ?2 AND tool = ?3)",
            (plugin, key, tool),
            |r| r.get(0),
        )
    })
    .await
}

async fn allow_conversation(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    tool: &str,
    by: u64,
) -> anyhow::Result<()> {
    let (plugin, key, tool) = (plugin.to_string(), key.to_owned(), tool.to_owned());
    let by = i64::try_from(by).unwrap_or(i64::MAX);
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "INSERT OR REPLACE INTO tool_allowances (plugin, session_key, tool, allowed_by, allowed_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (plugin, key, tool, by, now),
        )
    })
    .await
    .map(drop)
}

/// The latest `limit` decisions, newest first.
pub async fn recent(db: &Database, limit: u32) -> anyhow::Result<Vec<ApprovalRecord>> {
    db.call(move |c| {
        let mut select = c.prepare_cached(&format!("{SELECT} ORDER BY id DESC LIMIT ?1"))?;
        let rows = select.query_map([limit], read_record)?;
        rows.collect()
    })
    .await
}

const SELECT: &str = "SELECT id, plugin, chat_id, tool, summary, asked_at, outcome, decided_at,
                             decided_by, decided_by_name, reason
                      FROM tool_approvals";

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRecord> {
    Ok(ApprovalRecord {
        id: r.get(0)?,
        plugin: r.get(1)?,
        chat_id: r.get(2)?,
        tool: r.get(3)?,
        summary: r.get(4)?,
        asked_at: db::datetime(r.get(5)?),
        outcome: r.get(6)?,
        decided_at: r.get::<_, Option<i64>>(7)?.map(db::datetime),
        decided_by: r.get(8)?,
        decided_by_name: r.get(9)?,
        reason: r.get(10)?,
    })
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(tool: &str, input: Value) -> String {
        ToolUse {
            tool: tool.into(),
            input,
        }
        .summary()
    }

    #[test]
    fn a_summary_shows_what_the_tool_would_do() {
        let bash = json!({"command": "git -C ~/invoices status", "description": "Show status"});
        assert_eq!(summary("Bash", bash), "git -C ~/invoices status");
        let write = json!({"file_path": "/srv/a.txt", "content": "1\n2\n3\n4\n5\n6\n7"});
        assert_eq!(summary("Write", write), "/srv/a.txt\n1\n2\n3\n4\n5\n…");
        let edit = json!({"file_path": "/srv/b.rs", "old_string": "let a = 1;", "new_string": "let a = 2;"});
        assert_eq!(
            summary("Edit", edit),
            "/srv/b.rs\nreplace: let a = 1;\nwith: let a = 2;"
        );
        assert_eq!(
            summary("WebFetch", json!({"url": "https://example.com", "prompt": "x"})),
            "https://example.com"
        );
        assert_eq!(summary("Other", json!({"n": 1})), "{\"n\":1}");
        let long = summary("Bash", json!({"command": "x".repeat(1000)}));
        assert_eq!(long.chars().count(), MAX_SUMMARY);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn button_data_names_the_approval_and_the_choice() {
        for choice in [Choice::Once, Choice::Conversation, Choice::Deny] {
            let data = choice.callback_data(42);
            assert!(data.len() <= 64, "Telegram takes at most 64 bytes: {data}");
            assert_eq!(Choice::parse(&data), Some((42, choice)));
        }
        assert_eq!(Choice::parse("tool:x:once"), None);
        assert_eq!(Choice::parse("other:1:once"), None);
        assert_eq!(Choice::parse("tool:1:always"), None);
    }
}
