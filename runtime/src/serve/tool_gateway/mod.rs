//! The tool-call gateway: how the `claude` CLI calls plugins' tools. It
//! listens on a Unix socket of its own (`DATA_DIR/run/`, a
//! directory only this user may enter; one socket per host process) and
//! hands each CLI process started for a grant with `tools_from` a pass
//! ([`ToolPass`]): an `--mcp-config` file (mode 0600) naming one stdio
//! server per tools plugin — `mission mcp-tools`, built on `rmcp` — and a
//! random secret for it in that server's environment. A connection must
//! come from this user and carry a live pass's secret; it may then list and
//! call only the tools of the plugins that pass names, for the plugin, chat
//! and run it was made for. The same caller gets the same pass while one
//! is alive, so a persistent CLI keeps its process; a tools plugin whose
//! list changed gets a new pass, and the CLI a new process (resuming its
//! session) at its next turn.

pub mod wire;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::capabilities::claude::tools::{
    cli_name, grant_name, OfferedTool, PassedTool, ToolBroker, ToolCaller, ToolPass, ToolResult,
};
use crate::config::claude::HOST_TOOLS;
use crate::host::tool_calls::ToolRequest;
use crate::host::Host;
use crate::os::fd_limit::{self, AcceptBackoff, Connection, Connections};
use crate::plugin::tools::ToolSpec;
use wire::{Answer, Ask, Op, MAX_LINE, TOKEN_ENV};

/// Connections held at once, at most; fewer under a low open-file limit (a
/// quarter of what it leaves, see [`fd_limit::connection_cap`]). At the cap
/// a new connection sheds the oldest one still waiting for its line.
const MAX_CONNECTIONS: usize = 128;

/// How long the socket waits on a peer: for its line (`mission mcp-tools`
/// writes it as soon as it connects), and for it to take the answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `host`'s plugins as tools to the CLI processes its Claude
/// starts (and to its API backend's tool loop); `mission` is the binary
/// they run as their MCP server. Returns the gateway Claude now uses.
pub fn install(host: &Arc<Host>, mission: PathBuf) -> Arc<dyn ToolBroker> {
    let dir = host.config().data_dir.join("run");
    let gateway = Arc::new(Gateway {
        inner: Arc::new(Inner {
            host: Arc::downgrade(host),
            socket: dir.join(format!("tools-{}.sock", std::process::id())),
            dir,
            mission,
            passes: Mutex::default(),
            listening: Mutex::new(false),
        }),
    });
    host.claude().serve_tools(gateway.clone());
    crate::serve::mission_tools::install(host);
    gateway
}

struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    host: Weak<Host>,
    dir: PathBuf,
    socket: PathBuf,
    mission: PathBuf,
    passes: Mutex<HashMap<String, Entry>>,
    listening: Mutex<bool>,
}

/// A pass handed out, by its secret.
struct Entry {
    caller: ToolCaller,
    pass: Weak<ToolPass>,
}

impl Gateway {
    /// The tools of `caller`'s `tools_from` as they serve now; a tools
    /// plugin that is not loaded (its file refused at start) is left out,
    /// so Claude still answers without its tools.
    fn offered(&self, caller: &ToolCaller) -> Result<Vec<OfferedTool>, String> {
        let host = self.inner.host.upgrade().ok_or("the host is shutting down")?;
        let mut offered = Vec::new();
        for plugin in &caller.tools_from {
            let Some(tools) = tools_of(&host, plugin.as_str()) else {
                tracing::warn!(caller = %caller.plugin, "the tools plugin `{plugin}` is not loaded: Claude goes without its tools");
                continue;
            };
            offered.extend(tools.iter().map(|t| OfferedTool {
                names: PassedTool {
                    grant_name: grant_name(plugin, &t.name),
                    cli_name: cli_name(plugin, &t.name),
                },
                description: t.description.clone(),
                input_schema: t.input_schema.clone(),
            }));
        }
        Ok(offered)
    }
}

impl ToolBroker for Gateway {
    fn offer(&self, caller: &ToolCaller) -> Result<Vec<OfferedTool>, String> {
        self.offered(caller)
    }

    fn call<'a>(
        &'a self,
        caller: &'a ToolCaller,
        grant_name: &'a str,
        input: serde_json::Map<String, serde_json::Value>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ToolResult> + Send + 'a>> {
        Box::pin(async move {
            let Some(host) = self.inner.host.upgrade() else {
                return ("the host is shutting down".to_owned(), true);
            };
            let Some((plugin, tool)) = grant_name.split_once('.') else {
                return (format!("`{grant_name}` names no plugin's tool"), true);
            };
            let answer = host
                .call_tool(ToolRequest {
                    caller: &caller.plugin,
                    plugin,
                    tool,
                    input,
                    chat: caller.chat,
                    run: caller.run,
                    shadow: caller.shadow,
                })
                .await;
            (answer.text, answer.is_error)
        })
    }

    fn pass(&self, caller: &ToolCaller) -> Result<Arc<ToolPass>, String> {
        let inner = &self.inner;
        let tools: Vec<PassedTool> = self.offered(caller)?.into_iter().map(|t| t.names).collect();
        inner.listen()?;
        let mut passes = inner.passes.lock().unwrap_or_else(|p| p.into_inner());
        let reusable = passes
            .values()
            .filter(|e| e.caller == *caller)
            .filter_map(|e| e.pass.upgrade())
            .find(|pass| pass.tools == tools);
        if let Some(pass) = reusable {
            return Ok(pass);
        }
        let token = secret().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        let file = inner
            .dir
            .join(format!("mcp-{}-{}.json", std::process::id(), &token[..16]));
        write_private(&file, &inner.mcp_config(caller, &token))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let pass = Arc::new(ToolPass {
            mcp_config: file.clone(),
            tools,
            revoke: Box::new(Revoke {
                inner: Arc::downgrade(inner),
                token: token.clone(),
                file,
            }),
        });
        passes.retain(|_, e| e.pass.strong_count() > 0);
        passes.insert(
            token,
            Entry {
                caller: caller.clone(),
                pass: Arc::downgrade(&pass),
            },
        );
        Ok(pass)
    }

    fn close(&self) {
        let inner = &self.inner;
        let mut passes = inner.passes.lock().unwrap_or_else(|p| p.into_inner());
        for entry in passes.values() {
            if let Some(pass) = entry.pass.upgrade() {
                let _ = std::fs::remove_file(&pass.mcp_config);
            }
        }
        passes.clear();
        if *inner.listening.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = std::fs::remove_file(&inner.socket);
        }
    }
}

/// Forgets a pass's secret and removes its file once the pass is dropped.
struct Revoke {
    inner: Weak<Inner>,
    token: String,
    file: PathBuf,
}

impl Drop for Revoke {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner
                .passes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.token);
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if *self.listening.get_mut().unwrap_or_else(|p| p.into_inner()) {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

impl Inner {
    /// The `--mcp-config` for `caller`: one stdio server per tools plugin.
    fn mcp_config(&self, caller: &ToolCaller, token: &str) -> String {
        let servers: serde_json::Map<String, serde_json::Value> = caller
            .tools_from
            .iter()
            .map(|plugin| {
                let server = serde_json::json!({
                    "type": "stdio",
                    "command": self.mission,
                    "args": ["mcp-tools", "--socket", self.socket, "--plugin", plugin.as_str()],
                    "env": { TOKEN_ENV: token },
                });
                (plugin.to_string(), server)
            })
            .collect();
        serde_json::json!({ "mcpServers": servers }).to_string()
    }

    /// Opens the socket, once, and serves it while the gateway lives.
    fn listen(self: &Arc<Self>) -> Result<(), String> {
        let mut listening = self.listening.lock().unwrap_or_else(|p| p.into_inner());
        if *listening {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        remove_stale(&self.dir);
        let _ = std::fs::remove_file(&self.socket);
        let listener = {
            let _entered = runtime.enter();
            UnixListener::bind(&self.socket)
                .map_err(|e| format!("cannot listen on {}: {e}", self.socket.display()))?
        };
        *listening = true;
        let inner = Arc::downgrade(self);
        let held = Connections::new(fd_limit::connection_cap(MAX_CONNECTIONS, 4));
        runtime.spawn(async move {
            let mut backoff = AcceptBackoff::new("tool-call socket");
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        backoff.failed(&e).await;
                        continue;
                    }
                };
                backoff.accepted();
                let admitted = held.admit().await;
                let Some(inner) = inner.upgrade() else { return };
                tokio::spawn(async move { inner.serve(stream, admitted).await });
            }
        });
        Ok(())
    }

    /// Answers the one request on `stream`, unless its line takes longer
    /// than [`PEER_TIMEOUT`] or the connection is shed for a newer one
    /// before it comes.
    async fn serve(&self, stream: UnixStream, admitted: Arc<Connection>) {
        let same_user = stream
            .peer_cred()
            .is_ok_and(|peer| peer.uid() == crate::os::user_id());
        let (read, mut write) = stream.into_split();
        let mut line = Vec::new();
        let mut reader = BufReader::new(read.take(MAX_LINE as u64));
        let read = tokio::select! {
            read = tokio::time::timeout(PEER_TIMEOUT, reader.read_until(b'\n', &mut line)) => read,
            () = admitted.shed() => return,
        };
        let _busy = admitted.busy();
        let answer = match read {
            _ if !same_user => refused("the tool-call socket serves only its own user"),
            Ok(Ok(0) | Err(_)) => return,
            Err(_) => {
                tracing::debug!("a tool-call connection sent no line within {PEER_TIMEOUT:?}: closed");
                return;
            }
            Ok(Ok(_)) => match serde_json::from_slice::<Ask>(&line) {
                Ok(ask) => self.answer(ask).await,
                Err(e) => refused(&format!("not a request: {e}")),
            },
        };
        let mut text = serde_json::to_vec(&answer).unwrap_or_default();
        text.push(b'\n');
        let _ = tokio::time::timeout(PEER_TIMEOUT, write.write_all(&text)).await;
    }

    async fn answer(&self, ask: Ask) -> Answer {
        let caller = {
            let passes = self.passes.lock().unwrap_or_else(|p| p.into_inner());
            passes
                .iter()
                .find(|(token, e)| {
                    bool::from(token.as_bytes().ct_eq(ask.token.as_bytes())) && e.pass.strong_count() > 0
                })
                .map(|(_, e)| e.caller.clone())
        };
        let Some(caller) = caller else {
            return refused("no such pass: the CLI process it was made for is gone");
        };
        if !caller.tools_from.iter().any(|p| p.as_str() == ask.plugin) {
            return refused(&format!(
                "`{}` is not among this pass's tools plugins",
                ask.plugin
            ));
        }
        let Some(host) = self.host.upgrade() else {
            return refused("the host is shutting down");
        };
        match ask.op {
            Op::List => match tools_of(&host, &ask.plugin) {
                Some(tools) => Answer::Tools { tools },
                None => refused(&format!("the tools plugin `{}` is not loaded", ask.plugin)),
            },
            Op::Call { tool, input } => {
                let answer = host
                    .call_tool(ToolRequest {
                        caller: &caller.plugin,
                        plugin: &ask.plugin,
                        tool: &tool,
                        input,
                        chat: caller.chat,
                        run: caller.run,
                        shadow: caller.shadow,
                    })
                    .await;
                Answer::Called {
                    text: answer.text,
                    is_error: answer.is_error,
                }
            }
        }
    }
}

/// The tools `plugin` offers as it serves now: a loaded tools plugin's, or
/// the host's own; none if it is neither.
fn tools_of(host: &Host, plugin: &str) -> Option<Vec<ToolSpec>> {
    if plugin == HOST_TOOLS {
        return host.host_tools().map(|tools| tools.tools());
    }
    host.registry().get(plugin).map(|loaded| loaded.tools.clone())
}

fn refused(why: &str) -> Answer {
    Answer::Refused {
        error: why.to_owned(),
    }
}

/// 32 random bytes from the kernel, in hex.
fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// Writes `text` to a new file at `path` only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Removes the sockets and MCP configs of host processes that are gone (a
/// `kill -9` leaves them).
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let pid = name
            .strip_prefix("tools-")
            .and_then(|rest| rest.strip_suffix(".sock"))
            .or_else(|| name.strip_prefix("mcp-").and_then(|rest| rest.split('-').next()))
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !crate::os::process_exists(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
