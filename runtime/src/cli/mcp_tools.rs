//! `mission mcp-tools`: the stdio MCP server a CLI process starts from the
//! `--mcp-config` the host wrote for it, one per tools plugin. Built on the
//! official Rust MCP SDK (`rmcp`); it holds nothing itself: each
//! `tools/list` and `tools/call` goes to the host over its private socket
//! with the secret from the environment, and the host runs the call in the
//! sandbox. Not for people to run.

use std::path::PathBuf;

use anyhow::Context;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::serve::tool_gateway::wire::{Answer, Ask, Op, MAX_LINE, TOKEN_ENV};

/// `mission mcp-tools`'s arguments.
#[derive(Debug, clap::Args)]
pub struct McpToolsArgs {
    /// The host's tool-call socket.
    #[arg(long)]
    pub socket: PathBuf,
    /// The tools plugin.
    #[arg(long)]
    pub plugin: String,
}

/// Serves the tools of `plugin` on stdin and stdout until the CLI closes
/// them, asking the host at `socket`.
pub async fn run(socket: PathBuf, plugin: String) -> anyhow::Result<()> {
    let token =
        std::env::var(TOKEN_ENV).with_context(|| format!("{TOKEN_ENV} is not set: the host starts this"))?;
    let server = PluginTools {
        socket,
        plugin,
        token,
    };
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not initialize")?;
    running.waiting().await?;
    Ok(())
}

/// One tools plugin, as the host serves it.
struct PluginTools {
    socket: PathBuf,
    plugin: String,
    token: String,
}

impl PluginTools {
    /// Asks the host `op`; what it answered, or why it could not be asked.
    async fn ask(&self, op: Op) -> Result<Answer, ErrorData> {
        let unreachable =
            |e: std::io::Error| ErrorData::internal_error(format!("the host cannot be reached: {e}"), None);
        let ask = Ask {
            token: self.token.clone(),
            plugin: self.plugin.clone(),
            op,
        };
        let mut line =
            serde_json::to_vec(&ask).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        line.push(b'\n');
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(unreachable)?;
        let (read, mut write) = stream.into_split();
        write.write_all(&line).await.map_err(unreachable)?;
        let mut answer = Vec::new();
        BufReader::new(read.take(MAX_LINE as u64))
            .read_until(b'\n', &mut answer)
            .await
            .map_err(unreachable)?;
        match serde_json::from_slice(&answer) {
            Ok(Answer::Refused { error }) => Err(ErrorData::invalid_request(error, None)),
            Ok(answer) => Ok(answer),
            Err(e) => Err(ErrorData::internal_error(
                format!("the host answered nonsense: {e}"),
                None,
            )),
        }
    }
}

impl ServerHandler for PluginTools {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(&self.plugin, env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        match self.ask(Op::List).await? {
            Answer::Tools { tools } => Ok(ListToolsResult::with_all_items(
                tools
                    .into_iter()
                    .map(|t| Tool::new(t.name, t.description, t.input_schema))
                    .collect(),
            )),
            other => Err(ErrorData::internal_error(
                format!("the host answered {other:?}"),
                None,
            )),
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let op = Op::Call {
            tool: request.name.into_owned(),
            input: request.arguments.unwrap_or_default(),
        };
        match self.ask(op).await? {
            Answer::Called { text, is_error } => {
                let content = vec![ContentBlock::text(text)];
                Ok(if is_error {
                    CallToolResult::error(content)
                } else {
                    CallToolResult::success(content)
                }
                .into())
            }
            other => Err(ErrorData::internal_error(
                format!("the host answered {other:?}"),
                None,
            )),
        }
    }
}
