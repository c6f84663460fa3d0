//! `mission tools`: the tools each tools plugin offers (read from its
//! component, as a host would load it), the plugins whose Claude may call
//! them, and the latest tool calls.

use std::process::ExitCode;

use serde::Serialize;

use crate::config::{Config, World};
use crate::host::tool_calls::{recent, ToolCallRecord};
use crate::host::Host;
use crate::plugin::tools::ToolSpec;

/// `mission tools`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    /// How many calls.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// One tools plugin, as listed.
#[derive(Serialize)]
struct Offered {
    plugin: String,
    /// Its tools.
    tools: Vec<ToolSpec>,
    /// Why they could not be read, if they could not.
    error: Option<String>,
    /// The plugins whose grant names it in `tools_from`.
    callers: Vec<String>,
    /// Its tools a person must allow each use of, by grant name.
    asked: Vec<String>,
}

#[derive(Serialize)]
struct Listing {
    plugins: Vec<Offered>,
    calls: Vec<ToolCallRecord>,
}

pub(super) async fn list(config: Config, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let host = Host::open(config).await?;
    let config = host.config();
    let mut plugins = Vec::new();
    for plugin in config.plugins.iter().filter(|p| p.world == World::Tools) {
        let callers = config
            .plugins
            .iter()
            .filter(|c| c.claude.tools_from.contains(&plugin.name));
        let prefix = format!("{}.", plugin.name);
        let mut asked: Vec<String> = callers
            .clone()
            .flat_map(|c| {
                c.claude
                    .ask_tools
                    .iter()
                    .filter(|t| t.starts_with(&prefix))
                    .cloned()
            })
            .collect();
        asked.sort();
        asked.dedup();
        let (tools, error) = match host.load(plugin.name.as_str()).await {
            Ok(loaded) => (loaded.tools.clone(), None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
        plugins.push(Offered {
            plugin: plugin.name.to_string(),
            tools,
            error,
            callers: callers.map(|c| c.name.to_string()).collect(),
            asked,
        });
    }
    let listing = Listing {
        plugins,
        calls: recent(host.db(), limit).await?,
    };
    if json {
        say!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(ExitCode::SUCCESS);
    }
    if listing.plugins.is_empty() {
        say!("No tools plugins are configured (world = \"tools\").");
    }
    for offered in &listing.plugins {
        let callers = if offered.callers.is_empty() {
            "no plugin's Claude may call them (tools_from)".to_owned()
        } else {
            format!("for {}", offered.callers.join(", "))
        };
        say!("{}  {callers}", offered.plugin);
        if let Some(e) = &offered.error {
            say!("  cannot be read: {e}");
        }
        for tool in &offered.tools {
            let name = format!("{}.{}", offered.plugin, tool.name);
            let asked = if offered.asked.contains(&name) {
                "  (asked first)"
            } else {
                ""
            };
            say!("  {name}{asked}  {}", tool.description);
        }
    }
    if !listing.calls.is_empty() {
        say!("\nLatest calls:");
    }
    for call in &listing.calls {
        let place = match (call.run, call.chat) {
            (Some(run), _) => format!("run {run}"),
            (None, Some(chat)) => format!("chat {chat}"),
            (None, None) => "—".to_owned(),
        };
        say!(
            "  {}  {} → {}.{}  {place}  {}  {} ms  in {} B, out {} B{}",
            call.at.format("%Y-%m-%d %H:%M:%S UTC"),
            call.caller,
            call.plugin,
            call.tool,
            call.outcome,
            call.ms,
            call.input_bytes,
            call.output_bytes,
            call.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
