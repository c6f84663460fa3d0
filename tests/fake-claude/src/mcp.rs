//! The fake's MCP client, as the real CLI behaves in
//! `../shared/reference/claude-cli/mcp-stdio-server-exchange.txt`: at
//! launch it starts each stdio server of its `--mcp-config` files (with
//! the config's `env` over its own), sends `initialize` (protocol
//! `2025-11-25`), `notifications/initialized` and `tools/list`, and keeps
//! the servers for the process's life; the model's tools are named
//! `mcp__SERVER__TOOL`, and a call is `tools/call` with `_meta`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

/// One server, started and initialized.
pub struct Server {
    /// Its name in the config.
    pub name: String,
    /// What `tools/list` answered.
    pub tools: Vec<Value>,
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

/// Starts every stdio server the config files name. A file that is not
/// there ends the CLI, as the real one ends (it reads a relative path from
/// its own working directory); a file that cannot be read or parsed, or a
/// server that cannot start, is printed and the rest go on.
pub fn start(configs: &[String]) -> Vec<Server> {
    let mut servers = Vec::new();
    for path in configs {
        if !std::path::Path::new(path).exists() {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.into());
            eprintln!(
                "Invalid MCP configuration:\nMCP config file not found: {}",
                shown.display()
            );
            std::process::exit(1);
        }
        let config = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
        let config = match config {
            Ok(config) => config,
            Err(e) => {
                eprintln!("MCP config {path}: {e}");
                continue;
            }
        };
        for (name, server) in config["mcpServers"].as_object().cloned().unwrap_or_default() {
            match Server::start(&name, &server) {
                Ok(server) => servers.push(server),
                Err(e) => eprintln!("MCP server {name} failed to start: {e}"),
            }
        }
    }
    servers
}

impl Server {
    fn start(name: &str, config: &Value) -> Result<Server, String> {
        let mut command = Command::new(config["command"].as_str().ok_or("no command")?);
        for arg in config["args"].as_array().into_iter().flatten() {
            command.arg(arg.as_str().unwrap_or_default());
        }
        for (key, value) in config["env"].as_object().into_iter().flatten() {
            command.env(key, value.as_str().unwrap_or_default());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut server = Server {
            name: name.to_owned(),
            tools: Vec::new(),
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            _child: child,
            next_id: 0,
        };
        server.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {"roots": {}, "elicitation": {}},
                "clientInfo": {"name": "claude-code", "title": "Claude Code", "version": "2.1.197"}}),
        )?;
        server.send(&json!({"method": "notifications/initialized", "jsonrpc": "2.0"}))?;
        let listed = server.request("tools/list", Value::Null)?;
        server.tools = listed["tools"].as_array().cloned().unwrap_or_default();
        Ok(server)
    }

    /// The model's name for `tool`.
    pub fn cli_name(&self, tool: &Value) -> String {
        format!(
            "mcp__{}__{}",
            self.name,
            tool["name"].as_str().unwrap_or_default()
        )
    }

    /// Calls `tool` with `arguments`: the result's text, and whether it is
    /// an error.
    pub fn call(&mut self, tool: &str, arguments: Value) -> (String, bool) {
        let params = json!({"name": tool, "arguments": arguments,
            "_meta": {"claudecode/toolUseId": "toolu_01", "progressToken": self.next_id + 1}});
        match self.request("tools/call", params) {
            Ok(result) => {
                let text = result["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                (text, result["isError"] == true)
            }
            Err(e) => (format!("MCP error: {e}"), true),
        }
    }

    fn send(&mut self, message: &Value) -> Result<(), String> {
        writeln!(self.stdin, "{message}").map_err(|e| e.to_string())?;
        self.stdin.flush().map_err(|e| e.to_string())
    }

    /// Sends request `method` and reads lines up to its response.
    fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"method": method, "jsonrpc": "2.0", "id": id});
        if !params.is_null() {
            message["params"] = params;
        }
        self.send(&message)?;
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err(format!("the server closed its output before answering {method}"));
            }
            let Ok(answer) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                return Err(error["message"].as_str().unwrap_or("error").to_owned());
            }
            return Ok(answer["result"].clone());
        }
    }
}
