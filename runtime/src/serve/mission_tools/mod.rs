//! The host's own tools: `mission` in a grant's `tools_from`, offered to
//! Claude as a tools plugin's tools are (over the same MCP server for the
//! CLI backends, in the same loop for the API backend, recorded in
//! `tool_calls` under `mission`). Reading tools ([`reading`]) answer
//! outright. Acting tools (run now, pause, resume) and changing tools
//! (create, change, delete, bring back a schedule: [`schedule_files`])
//! first check what they would do exactly as the config would, so Claude
//! gets the config's own error to fix; then, unless the grant's
//! `allow_outright` names them, they ask in the chat with a card saying
//! what will happen (in `[alerts] chat` for a task's Claude) and act only
//! on an allowed user's press of **Allow once**. Every change is recorded
//! ([`records`]): who pressed, the tool, before and after.

mod change;
mod reading;
pub mod records;
mod schedule_cache;
mod schedule_files;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use serde_json::{json, Map, Value};

use crate::host::tool_calls::{HostToolResult, HostTools, ToolRequest};
use crate::host::Host;
use crate::plugin::tools::ToolSpec;
use schedule_cache::ScheduleCache;

/// What a tool does, which decides whether it asks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Looks: answers outright.
    Reading,
    /// Acts on a schedule or changes one: asks first.
    Changing,
}

/// One tool: its name, what it does for Claude, its input's properties
/// (and which are required), and its kind.
struct Tool {
    name: &'static str,
    description: &'static str,
    properties: fn() -> Value,
    required: &'static [&'static str],
    kind: Kind,
}

fn nothing() -> Value {
    json!({})
}

fn schedule_name() -> Value {
    json!({ "schedule": { "type": "string", "description": "The schedule's name (see the schedules tool)." } })
}

fn schedule_fields() -> Value {
    json!({
        "name": { "type": "string", "description": "The schedule's name: 1 to 64 lowercase letters, digits, - or _." },
        "plugin": { "type": "string", "description": "The task plugin it runs." },
        "cron": { "type": "string", "description": "Five cron fields: minute hour day-of-month month day-of-week, e.g. \"0 7 * * 1-5\"." },
        "every": { "type": "string", "description": "Or a fixed interval instead of cron, e.g. \"90m\"." },
        "timezone": { "type": "string", "description": "An IANA zone, e.g. \"Europe/Berlin\"; the host's zone without one." },
        "config": { "type": "object", "description": "Config values for the plugin (names to strings, numbers or true/false), over its own." },
        "overlap": { "type": "string", "enum": ["skip", "queue", "allow"], "description": "When a run is due while the last still runs." },
        "catch_up": { "type": "string", "enum": ["none", "once"], "description": "Whether a run missed while the host was down runs at start." }
    })
}

fn runs_filter() -> Value {
    json!({
        "schedule": { "type": "string", "description": "Only this schedule's runs." },
        "failed": { "type": "boolean", "description": "Only runs that did not succeed." },
        "limit": { "type": "integer", "description": "How many, newest first (default 10, at most 50)." }
    })
}

fn run_id() -> Value {
    json!({ "id": { "type": "integer", "description": "The run's id." } })
}

fn reminder_fields() -> Value {
    json!({
        "text": { "type": "string", "description": "What to remind of, as the chat will read it." },
        "at": { "type": "string", "description": "When, in the zone: \"2026-12-11 09:00\"." },
        "timezone": { "type": "string", "description": "An IANA zone, e.g. \"Europe/Berlin\"; the host's zone without one." }
    })
}

fn reminder_id() -> Value {
    json!({ "id": { "type": "integer", "description": "The reminder's id." } })
}

fn name_only() -> Value {
    json!({ "name": { "type": "string", "description": "The schedule's name." } })
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "schedules",
        description: "The schedules: when each runs (in words, in its time zone) and its next three runs, \
                      paused or not, failing since when, its last run, and where it came from; and the \
                      schedule files refused, with why.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "runs",
        description: "The latest runs, newest first, each with its outcome and the cause of its error; of \
                      one schedule, or only failed ones, if asked.",
        properties: runs_filter,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "run",
        description:
            "One run whole: what started it, its outcome, its summary, its output and its whole error.",
        properties: run_id,
        required: &["id"],
        kind: Kind::Reading,
    },
    Tool {
        name: "webhooks",
        description: "The webhooks: each one's name, path and the plugin its deliveries run.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "watches",
        description: "The watched folders: each watch's directories, file pattern and plugin.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "spend",
        description: "Claude's spend this month by plugin, against the budgets and the Agent SDK credit.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "changes",
        description: "The latest changes made through these tools: what, when, who pressed for it.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "reminders",
        description: "The reminders waiting for this chat: each one's id, when and its text.",
        properties: nothing,
        required: &[],
        kind: Kind::Reading,
    },
    Tool {
        name: "remind",
        description: "Sends a reminder to this chat at a time, once (kept through restarts). A person \
                      is asked in the chat first.",
        properties: reminder_fields,
        required: &["text", "at"],
        kind: Kind::Changing,
    },
    Tool {
        name: "cancel_reminder",
        description: "Cancels a reminder still waiting in this chat (see the reminders tool). A person \
                      is asked in the chat first.",
        properties: reminder_id,
        required: &["id"],
        kind: Kind::Changing,
    },
    Tool {
        name: "run_now",
        description: "Runs a schedule now, once, as /run does. A person is asked in the chat first.",
        properties: schedule_name,
        required: &["schedule"],
        kind: Kind::Changing,
    },
    Tool {
        name: "pause",
        description:
            "Pauses a schedule until it is resumed, as /pause does. A person is asked in the chat first.",
        properties: schedule_name,
        required: &["schedule"],
        kind: Kind::Changing,
    },
    Tool {
        name: "resume",
        description: "Resumes a paused schedule, as /resume does. A person is asked in the chat first.",
        properties: schedule_name,
        required: &["schedule"],
        kind: Kind::Changing,
    },
    Tool {
        name: "create_schedule",
        description: "Creates a schedule: a task plugin run on a cron or an interval, in a time zone, with \
                      config values. Checked as the config checks it (its error comes back to fix); then a \
                      person is asked in the chat, and it is written to schedules/ once allowed.",
        properties: schedule_fields,
        required: &["name", "plugin"],
        kind: Kind::Changing,
    },
    Tool {
        name: "change_schedule",
        description: "Changes a schedule: the fields given replace its own (config values are merged). \
                      Checked, then asked about in the chat, as create_schedule.",
        properties: schedule_fields,
        required: &["name"],
        kind: Kind::Changing,
    },
    Tool {
        name: "delete_schedule",
        description: "Deletes a schedule: its file is moved aside, kept, and restore_schedule brings it \
                      back. A person is asked in the chat first.",
        properties: name_only,
        required: &["name"],
        kind: Kind::Changing,
    },
    Tool {
        name: "restore_schedule",
        description:
            "Brings back the latest deleted schedule of that name. A person is asked in the chat first.",
        properties: name_only,
        required: &["name"],
        kind: Kind::Changing,
    },
];

/// The tools as Claude is offered them (and `mission check` knows them).
pub fn catalogue() -> Vec<ToolSpec> {
    TOOLS
        .iter()
        .map(|tool| {
            let schema = json!({
                "type": "object",
                "properties": (tool.properties)(),
                "required": tool.required,
            });
            ToolSpec {
                name: tool.name.to_owned(),
                description: tool.description.to_owned(),
                input_schema: match schema {
                    Value::Object(schema) => schema,
                    _ => unreachable!("built as an object"),
                },
            }
        })
        .collect()
}

/// The tools that ask before they act: what a grant's `allow_outright`
/// may name.
pub fn asking_first() -> Vec<&'static str> {
    TOOLS
        .iter()
        .filter(|t| t.kind == Kind::Changing)
        .map(|t| t.name)
        .collect()
}

/// Serves the host's own tools for `host` from now on.
pub fn install(host: &Arc<Host>) {
    host.provide_tools(Arc::new(MissionTools {
        host: Arc::downgrade(host),
        schedules: ScheduleCache::default(),
    }));
}

struct MissionTools {
    host: Weak<Host>,
    schedules: ScheduleCache,
}

impl HostTools for MissionTools {
    fn tools(&self) -> Vec<ToolSpec> {
        catalogue()
    }

    fn call<'a>(
        &'a self,
        request: &'a ToolRequest<'a>,
        input: Map<String, Value>,
    ) -> Pin<Box<dyn Future<Output = HostToolResult> + Send + 'a>> {
        Box::pin(async move {
            let host = self
                .host
                .upgrade()
                .ok_or(("denied", "the host is shutting down".to_owned()))?;
            let tool = TOOLS
                .iter()
                .find(|t| t.name == request.tool)
                .ok_or_else(|| ("denied", format!("the host offers no tool `{}`", request.tool)))?;
            let failed = |e: anyhow::Error| {
                tracing::error!(tool = tool.name, "the host's tool failed: {e:#}");
                ("error", format!("the host could not answer: {e:#}"))
            };
            let answer = match tool.kind {
                Kind::Reading => {
                    match reading::answer(&host, &self.schedules, tool.name, request.chat, &input).await {
                        Ok(Ok(answer)) => answer,
                        Ok(Err(why)) => return Err(("error", why)),
                        Err(e) => return Err(failed(e)),
                    }
                }
                Kind::Changing => change::ask_and_make(&host, request, &input).await?,
            };
            Ok(match answer {
                Value::String(text) => text,
                other => other.to_string(),
            })
        })
    }
}
