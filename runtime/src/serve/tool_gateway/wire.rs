//! What `mission mcp-tools` (the stdio MCP server a CLI process starts)
//! and the host's gateway say to each other over the private Unix socket:
//! one JSON line each way per connection.

use serde::{Deserialize, Serialize};

use crate::plugin::tools::ToolSpec;

/// The variable that carries a process's secret to `mission mcp-tools`.
pub const TOKEN_ENV: &str = "MISSION_TOOLS_TOKEN";

/// The longest line either side reads.
pub const MAX_LINE: usize = 1 << 20;

/// What the MCP server asks.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ask {
    /// The secret of the CLI process it serves.
    pub token: String,
    /// The tools plugin it serves.
    pub plugin: String,
    /// What it wants.
    #[serde(flatten)]
    pub op: Op,
}

/// List the tools, or call one.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// The tools the plugin offers.
    List,
    /// One call.
    Call {
        /// The tool's name within the plugin.
        tool: String,
        /// Claude's input.
        input: serde_json::Map<String, serde_json::Value>,
    },
}

/// What the host answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// The plugin's tools.
    Tools {
        /// Each, with its schema.
        tools: Vec<ToolSpec>,
    },
    /// A call's result (or the tool's error, for Claude).
    Called {
        /// The result's text.
        text: String,
        /// Whether it is an error.
        is_error: bool,
    },
    /// The request was refused or could not be served.
    Refused {
        /// Why.
        error: String,
    },
}
