//! Claude's side of plugins as tools: a grant's `tools_from` names tools
//! plugins whose tools the CLI may call. For each CLI process started for
//! such a grant, the [`ToolBroker`] (the host's tool-call gateway, set once
//! it is up) hands out a [`ToolPass`]: an `--mcp-config` file naming one
//! stdio MCP server per tools plugin, holding a secret only that process is
//! given, and the tools by name. The pass is revoked, and its file
//! removed, when the last holder (the process, or the one call) drops it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::PluginName;

/// Who a CLI process is started for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCaller {
    /// The plugin asking Claude.
    pub plugin: PluginName,
    /// The tools plugins its grant names.
    pub tools_from: Vec<PluginName>,
    /// The chat its call serves, if any.
    pub chat: Option<i64>,
    /// The task run, if any.
    pub run: Option<i64>,
    /// Whether the call is a shadow handler's.
    pub shadow: bool,
}

/// One tool as a CLI process is given it.
#[derive(Debug, Clone, PartialEq)]
pub struct PassedTool {
    /// What grants call it: `crm.lookup_customer`.
    pub grant_name: String,
    /// What the CLI calls it: `mcp__crm__lookup_customer`.
    pub cli_name: String,
}

/// What lets one CLI process reach its tools.
pub struct ToolPass {
    /// The `--mcp-config` file.
    pub mcp_config: PathBuf,
    /// The tools it names.
    pub tools: Vec<PassedTool>,
    /// Revokes the secret and removes the file when dropped.
    pub revoke: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for ToolPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolPass")
            .field("mcp_config", &self.mcp_config)
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ToolPass {
    fn eq(&self, other: &ToolPass) -> bool {
        self.mcp_config == other.mcp_config
    }
}

/// One tool as the API backend offers it to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    /// Its names.
    pub names: PassedTool,
    /// What it does.
    pub description: String,
    /// Its input's JSON Schema.
    pub input_schema: serde_json::Map<String, serde_json::Value>,
}

/// What a call gives back: the text Claude is told, and whether it is an
/// error.
pub type ToolResult = (String, bool);

/// Hands out passes and runs calls: the host's tool-call gateway.
pub trait ToolBroker: Send + Sync {
    /// The tools of `caller`'s `tools_from`, for the API backend.
    fn offer(&self, caller: &ToolCaller) -> Result<Vec<OfferedTool>, String>;

    /// Runs the tool `grant_name` (`PLUGIN.TOOL`) on `input` for `caller`.
    fn call<'a>(
        &'a self,
        caller: &'a ToolCaller,
        grant_name: &'a str,
        input: serde_json::Map<String, serde_json::Value>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ToolResult> + Send + 'a>>;

    /// A pass for one CLI process started for `caller`, or why there is
    /// none (a tools plugin not loaded, the socket not open).
    fn pass(&self, caller: &ToolCaller) -> Result<Arc<ToolPass>, String>;

    /// Stops serving: the socket and every pass's file are removed (the
    /// host is shutting down, its CLI processes with it).
    fn close(&self);
}

/// What Claude calls `tool` of `plugin` through MCP: `mcp__PLUGIN__TOOL`,
/// the name `--allowedTools`, `--tools` and the permission prompt use.
pub fn cli_name(plugin: &PluginName, tool: &str) -> String {
    format!("mcp__{plugin}__{tool}")
}

/// What a grant calls `tool` of `plugin` (`ask_tools = ["crm.create_lead"]`).
pub fn grant_name(plugin: &PluginName, tool: &str) -> String {
    format!("{plugin}.{tool}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_cli_s_and_the_grant_s_forms() {
        let crm = PluginName::parse("crm").unwrap();
        assert_eq!(cli_name(&crm, "lookup_customer"), "mcp__crm__lookup_customer");
        assert_eq!(grant_name(&crm, "lookup_customer"), "crm.lookup_customer");
    }
}
