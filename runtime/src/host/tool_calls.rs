//! Claude calling a tools plugin's tool: the call checked against the
//! caller's grant (`tools_from`), run in a fresh instance of the tools
//! plugin as it serves now (a reloaded version serves the next call), and
//! recorded in `tool_calls` — sizes and outcome, and the input and result
//! only where the tools plugin's config says `record_contents = true`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Host;
use crate::capabilities::claude::OnBehalfOf;
use crate::capabilities::http::records::Origin;
use crate::capabilities::CallContext;
use crate::config::claude::HOST_TOOLS;
use crate::config::PluginName;
use crate::db::retention::{period, Rule};
use crate::db::{datetime, Database};
use crate::plugin::call::{ToolCall, ToolOutput};
use crate::plugin::tools::ToolSpec;

/// Tools the host answers itself, offered to Claude as a tools plugin's
/// are (`tools_from = ["mission"]`, [`HOST_TOOLS`]) and recorded as theirs
/// are; provided once by whoever opens the host with its tool gateway.
pub trait HostTools: Send + Sync {
    /// The tools, as a tools plugin lists its own.
    fn tools(&self) -> Vec<ToolSpec>;

    /// Runs `request`'s tool on `input`.
    fn call<'a>(
        &'a self,
        request: &'a ToolRequest<'a>,
        input: serde_json::Map<String, serde_json::Value>,
    ) -> Pin<Box<dyn Future<Output = HostToolResult> + Send + 'a>>;
}

/// What one of the host's own tools answers: its text, or the record's
/// outcome (`error`, `denied`) and what Claude is told.
pub type HostToolResult = Result<String, (&'static str, String)>;

/// One call as Claude made it, for whom.
pub struct ToolRequest<'a> {
    /// The plugin whose Claude call this is.
    pub caller: &'a PluginName,
    /// The tools plugin.
    pub plugin: &'a str,
    /// Its tool.
    pub tool: &'a str,
    /// The input Claude wrote: a JSON object.
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The chat the caller's Claude call serves, if any.
    pub chat: Option<i64>,
    /// The task run it is part of, if any.
    pub run: Option<i64>,
    /// Whether the caller's Claude call is a shadow handler's.
    pub shadow: bool,
}

/// What Claude is told.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolAnswer {
    /// The result, or what went wrong.
    pub text: String,
    /// Whether it is an error; Claude's turn goes on either way.
    pub is_error: bool,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The plugin whose Claude made it.
    pub caller: String,
    /// The tools plugin.
    pub plugin: String,
    /// The tool.
    pub tool: String,
    /// The chat it served, if any.
    pub chat: Option<i64>,
    /// The run it was part of, if any.
    pub run: Option<i64>,
    /// The version of the tools plugin that ran it.
    pub plugin_hash: Option<String>,
    /// The input's size in bytes.
    pub input_bytes: u64,
    /// The result's size in bytes.
    pub output_bytes: u64,
    /// `ok`, `error` (the tool said so), `denied`, or how the call failed
    /// (`trapped`, `timed_out`, `out_of_memory`).
    pub outcome: String,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it took.
    pub ms: u64,
    /// The input, if the tools plugin records contents.
    pub input: Option<String>,
    /// The result, if it does (cut at `MAX_RECORDED`).
    pub output: Option<String>,
}

/// The most of an input or a result a record keeps.
const MAX_RECORDED: usize = 16 << 10;

impl Host {
    /// Serves `tools` as the host's own from now on (once; a second is
    /// ignored).
    pub fn provide_tools(&self, tools: Arc<dyn HostTools>) {
        let _ = self.host_tools.set(tools);
    }

    /// The host's own tools, if provided.
    pub fn host_tools(&self) -> Option<&Arc<dyn HostTools>> {
        self.host_tools.get()
    }

    /// Runs `request` and records it; a refusal, a trap, a timeout or the
    /// tool's own error all come back as an error answer for Claude.
    pub async fn call_tool(&self, mut request: ToolRequest<'_>) -> ToolAnswer {
        let started = std::time::Instant::now();
        let input = serde_json::Value::Object(std::mem::take(&mut request.input)).to_string();
        let mut record = ToolCallRecord {
            at: Utc::now(),
            caller: request.caller.to_string(),
            plugin: request.plugin.to_owned(),
            tool: request.tool.to_owned(),
            chat: request.chat,
            run: request.run,
            plugin_hash: None,
            input_bytes: input.len() as u64,
            output_bytes: 0,
            outcome: "ok".into(),
            error: None,
            ms: 0,
            input: None,
            output: None,
        };
        let contents = self
            .config()
            .plugin(request.plugin)
            .is_some_and(|p| p.record_contents);
        if contents {
            record.input = Some(recorded(&input));
        }
        let answer = self.run_tool(&request, input, &mut record).await;
        if contents {
            record.output = Some(recorded(&answer.text));
        }
        record.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record.output_bytes = answer.text.len() as u64;
        if answer.is_error {
            record.error.get_or_insert_with(|| answer.text.clone());
        }
        tracing::info!(
            caller = %request.caller,
            plugin = request.plugin,
            tool = request.tool,
            outcome = record.outcome,
            ms = record.ms,
            "tool call"
        );
        if let Err(e) = insert(self.db(), record).await {
            tracing::error!(plugin = request.plugin, "failed to record the tool call: {e:#}");
        }
        answer
    }

    async fn run_tool(
        &self,
        request: &ToolRequest<'_>,
        input: String,
        record: &mut ToolCallRecord,
    ) -> ToolAnswer {
        let config = self.config();
        let granted = config
            .plugin(request.caller.as_str())
            .is_some_and(|c| c.claude.tools_from.iter().any(|p| p.as_str() == request.plugin));
        if !granted {
            return refused(
                record,
                "denied",
                format!(
                    "plugin `{}` may not call the tools of `{}`",
                    request.caller, request.plugin
                ),
            );
        }
        if request.plugin == HOST_TOOLS {
            let Some(tools) = self.host_tools() else {
                return refused(
                    record,
                    "denied",
                    "the host's own tools are not served here".into(),
                );
            };
            let input = serde_json::from_str(&input).unwrap_or_default();
            return match tools.call(request, input).await {
                Ok(text) => ToolAnswer {
                    text,
                    is_error: false,
                },
                Err((outcome, text)) => refused(record, outcome, text),
            };
        }
        let Some(plugin) = self.registry().get(request.plugin) else {
            return refused(
                record,
                "denied",
                format!("the tools plugin `{}` is not loaded", request.plugin),
            );
        };
        record.plugin_hash = Some(plugin.hash.to_string());
        if !plugin.tools.iter().any(|t| t.name == request.tool) {
            return refused(
                record,
                "denied",
                format!("`{}` offers no tool `{}`", request.plugin, request.tool),
            );
        }
        let call = ToolCall {
            name: request.tool.to_owned(),
            input,
            config: plugin.config.values.clone(),
        };
        let context = CallContext {
            chat: request.chat,
            on_behalf_of: Some(OnBehalfOf {
                plugin: request.caller.clone(),
                budget: config
                    .plugin(request.caller.as_str())
                    .map(|c| c.claude.budget)
                    .unwrap_or_default(),
            }),
            ..CallContext::default()
        };
        let origin = match (request.run, request.chat) {
            (Some(run), _) => Origin::Run(run),
            (None, Some(chat)) => Origin::Chat(chat),
            (None, None) => Origin::Unrecorded,
        };
        match plugin.call_tool(self.services(), &call, context, origin).await {
            Ok(report) => match report.result {
                Ok(ToolOutput::Text(text) | ToolOutput::Json(text)) => ToolAnswer {
                    text,
                    is_error: false,
                },
                Err(crate::plugin::call::CallError::Failed { message }) => {
                    record.outcome = "error".into();
                    ToolAnswer {
                        text: message,
                        is_error: true,
                    }
                }
                Err(e) => {
                    record.outcome = e.kind().into();
                    ToolAnswer {
                        text: format!("the tool `{}` of `{}` failed: {e}", request.tool, request.plugin),
                        is_error: true,
                    }
                }
            },
            Err(e) => refused(record, "denied", format!("{e:#}")),
        }
    }
}

/// `text` as a record keeps it.
fn recorded(text: &str) -> String {
    let mut text = text.to_owned();
    crate::wasm::output::cut(&mut text, MAX_RECORDED);
    text
}

fn refused(record: &mut ToolCallRecord, outcome: &str, text: String) -> ToolAnswer {
    record.outcome = outcome.into();
    ToolAnswer { text, is_error: true }
}

async fn insert(db: &Database, record: ToolCallRecord) -> anyhow::Result<()> {
    crate::metrics::get().tool_call(&record.outcome);
    db.call(move |c| {
        c.prepare_cached(
            "INSERT INTO tool_calls (at, caller, plugin, tool, chat, run, plugin_hash, input_bytes,
                 output_bytes, outcome, error, ms, input, output)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(rusqlite::params![
            record.at.timestamp_millis(),
            record.caller,
            record.plugin,
            record.tool,
            record.chat,
            record.run,
            record.plugin_hash,
            record.input_bytes,
            record.output_bytes,
            record.outcome,
            record.error,
            record.ms,
            record.input,
            record.output,
        ])
        .map(drop)
    })
    .await
}

/// The latest `limit` tool calls, newest first.
pub async fn recent(db: &Database, limit: u32) -> anyhow::Result<Vec<ToolCallRecord>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT at, caller, plugin, tool, chat, run, plugin_hash, input_bytes, output_bytes,
                 outcome, error, ms, input, output
             FROM tool_calls ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit], |row| {
            Ok(ToolCallRecord {
                at: datetime(row.get(0)?),
                caller: row.get(1)?,
                plugin: row.get(2)?,
                tool: row.get(3)?,
                chat: row.get(4)?,
                run: row.get(5)?,
                plugin_hash: row.get(6)?,
                input_bytes: row.get(7)?,
                output_bytes: row.get(8)?,
                outcome: row.get(9)?,
                error: row.get(10)?,
                ms: row.get(11)?,
                input: row.get(12)?,
                output: row.get(13)?,
            })
        })?;
        rows.collect()
    })
    .await
}

/// How tool call records go: as HTTP request records do (`[retention]
/// http`).
pub const RETENTION: &[Rule] = &[Rule {
    table: "tool_calls",
    kind: "tool_calls",
    delete: "DELETE FROM tool_calls WHERE id IN (SELECT id FROM tool_calls WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.retention.http,
    kept: |p| period(p.retention.http),
}];
