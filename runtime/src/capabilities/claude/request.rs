//! A plugin's `ask` checked against its grant and completed from the
//! config: the backend, model, tools, turns and deadline a call really gets.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use super::draft::Draft;
use super::tools::ToolPass;
use crate::capabilities::attachments::Attachment;
use crate::config::claude::{Backend, ClaudeConfig, ClaudeGrant};
use crate::wasm::bindings::task::mission::plugin::claude::{Backend as WitBackend, Options};
use crate::wasm::bindings::CapabilityError;

/// The longest session key a plugin may use.
const MAX_SESSION_KEY: usize = 256;

/// One call as it will be made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// What the plugin asks.
    pub prompt: String,
    /// Its system prompt.
    pub system: Option<String>,
    /// The model; `None` leaves the choice to the CLI.
    pub model: Option<String>,
    /// The most agentic turns.
    pub max_turns: Option<u32>,
    /// The plugin's conversation key.
    pub session_key: Option<String>,
    /// The tools the model may use without asking.
    pub tools: Vec<String>,
    /// The tools the model may use once a person allows it.
    pub ask_tools: Vec<String>,
    /// The plugin tools (`PLUGIN.TOOL`) a person must allow each use of.
    pub ask_plugin_tools: Vec<String>,
    /// The MCP server config from the grant.
    pub mcp_config: Option<PathBuf>,
    /// The way to ask.
    pub backend: Backend,
    /// How long the call may take, waiting in line included.
    pub deadline: Duration,
    /// The files of the message being answered that Claude is given.
    pub attachments: Vec<Attachment>,
    /// Where Claude's text goes while it is written, if it is shown.
    pub draft: Option<Draft>,
    /// How the CLI reaches the tools of the grant's `tools_from`.
    pub plugin_tools: Option<Arc<ToolPass>>,
}

impl Request {
    /// Checks `options` against `grant`: a backend, model or tool the grant
    /// does not list is denied; turns and the deadline are capped at the
    /// grant's.
    pub fn resolve(
        config: &ClaudeConfig,
        grant: &ClaudeGrant,
        prompt: String,
        options: Options,
    ) -> Result<Request, CapabilityError> {
        let allowed = grant.allowed_backends(config);
        let backend = match options.backend {
            None => allowed[0],
            Some(wanted) => {
                let wanted = match wanted {
                    WitBackend::Cli => Backend::Cli,
                    WitBackend::Persistent => Backend::Persistent,
                    WitBackend::Api => Backend::Api,
                };
                if !allowed.contains(&wanted) {
                    return Err(CapabilityError::Denied(format!(
                        "the `{wanted}` backend is not granted (allowed: {})",
                        list(allowed.iter().map(|b| b.as_str()))
                    )));
                }
                wanted
            }
        };
        // No model asked for: the host's default, unless the grant lists
        // models without it, then the grant's first.
        let model = options
            .model
            .or_else(|| match (&config.model, grant.models.first()) {
                (Some(default), _) if grant.models.is_empty() || grant.models.contains(default) => {
                    Some(default.clone())
                }
                (_, first) => first.cloned(),
            });
        if let Some(model) = &model {
            if !grant.models.is_empty() && !grant.models.contains(model) {
                return Err(CapabilityError::Denied(format!(
                    "model `{model}` is not granted (allowed: {})",
                    list(grant.models.iter().map(String::as_str))
                )));
            }
        }
        let granted = grant.tools.iter().chain(&grant.ask_tools);
        if let Some(tool) = options
            .allowed_tools
            .iter()
            .find(|t| !grant.tools.contains(t) && !grant.ask_tools.contains(t))
        {
            return Err(CapabilityError::Denied(format!(
                "tool `{tool}` is not granted (allowed: {})",
                list(granted.map(String::as_str))
            )));
        }
        let (ask_tools, tools): (Vec<String>, Vec<String>) = options
            .allowed_tools
            .into_iter()
            .partition(|t| grant.ask_tools.contains(t));
        if let (Some(tool), Backend::Cli | Backend::Api) = (ask_tools.first(), backend) {
            return Err(CapabilityError::Denied(format!(
                "tool `{tool}` needs a person's approval, which the `{backend}` backend cannot ask for \
                 (only `persistent` can)"
            )));
        }
        if backend == Backend::Api && !tools.is_empty() {
            return Err(CapabilityError::Failed(
                "the api backend runs no tools; ask through `cli` or `persistent`".into(),
            ));
        }
        if let Some(key) = &options.session_key {
            if key.is_empty() || key.len() > MAX_SESSION_KEY {
                return Err(CapabilityError::Failed(format!(
                    "a session key must be 1 to {MAX_SESSION_KEY} bytes"
                )));
            }
        }
        let max_turns = match (options.max_turns, grant.max_turns) {
            (Some(asked), Some(granted)) => Some(asked.clamp(1, granted)),
            (asked, granted) => asked.map(|a| a.max(1)).or(granted),
        };
        let ceiling = grant.timeout.unwrap_or(config.timeout);
        let deadline = options
            .timeout_ms
            .map_or(ceiling, |ms| Duration::from_millis(ms.into()).min(ceiling));
        Ok(Request {
            prompt,
            system: options.system,
            model,
            max_turns,
            session_key: options.session_key,
            tools,
            ask_tools,
            ask_plugin_tools: grant
                .ask_tools
                .iter()
                .filter(|t| t.contains('.'))
                .cloned()
                .collect(),
            mcp_config: grant.mcp_config.clone(),
            backend,
            deadline,
            attachments: Vec::new(),
            draft: None,
            plugin_tools: None,
        })
    }
}

impl Request {
    /// The CLI flags that carry this request (all but the prompt, which
    /// goes to stdin), each in `--flag=value` form so no value can be read
    /// as another flag. Tools are limited to the granted ones (none when
    /// none are), those to ask about are left to the CLI's permission prompt
    /// on stdio, and only the grant's MCP servers are loaded.
    pub fn cli_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(model) = &self.model {
            flags.push(format!("--model={model}"));
        }
        if let Some(system) = &self.system {
            flags.push(format!("--system-prompt={system}"));
        }
        if let Some(turns) = self.max_turns {
            flags.push(format!("--max-turns={turns}"));
        }
        let (outright, ask) = self.cli_tools();
        let every_tool: Vec<&str> = outright.iter().chain(&ask).map(String::as_str).collect();
        flags.push(format!("--tools={}", every_tool.join(",")));
        if !outright.is_empty() {
            flags.push(format!("--allowed-tools={}", outright.join(",")));
        }
        if !ask.is_empty() {
            flags.push("--permission-prompt-tool=stdio".into());
        }
        if let Some(mcp) = &self.mcp_config {
            flags.push(format!("--mcp-config={}", mcp.display()));
        }
        if let Some(pass) = &self.plugin_tools {
            flags.push(format!("--mcp-config={}", pass.mcp_config.display()));
        }
        flags.push("--strict-mcp-config".into());
        if self.draft.is_some() {
            flags.push("--include-partial-messages".into());
        }
        flags
    }
}

impl Request {
    /// The tools the CLI may use outright and those it must ask about, by
    /// the CLI's names: the call's, and each plugin tool of `tools_from`
    /// (asked about if the grant's `ask_tools` names it `PLUGIN.TOOL`;
    /// left out where nobody can be asked, on the `cli` backend).
    pub fn cli_tools(&self) -> (Vec<String>, Vec<String>) {
        let (mut outright, mut ask) = (self.tools.clone(), self.ask_tools.clone());
        for tool in self.plugin_tools.iter().flat_map(|pass| &pass.tools) {
            if !self.ask_plugin_tools.contains(&tool.grant_name) {
                outright.push(tool.cli_name.clone());
            } else if self.backend == Backend::Persistent {
                ask.push(tool.cli_name.clone());
            }
        }
        (outright, ask)
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<_> = items.map(|i| format!("`{i}`")).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config() -> ClaudeConfig {
        let text = "data_dir = \"d\"\n[claude]\nmodel = \"sonnet\"\ntimeout = \"60s\"\n";
        Config::parse("/m/mission.toml".as_ref(), text)
            .unwrap()
            .claude
            .unwrap()
    }

    fn options() -> Options {
        Options {
            system: None,
            model: None,
            max_turns: None,
            session_key: None,
            allowed_tools: Vec::new(),
            timeout_ms: None,
            backend: None,
        }
    }

    #[test]
    fn defaults_come_from_the_config() {
        let request = Request::resolve(&config(), &ClaudeGrant::default(), "hi".into(), options()).unwrap();
        assert_eq!(request.backend, Backend::Cli);
        assert_eq!(request.model.as_deref(), Some("sonnet"));
        assert_eq!(request.deadline, Duration::from_secs(60));
        assert_eq!(request.max_turns, None);
    }

    #[test]
    fn the_deadline_and_turns_never_exceed_the_grant() {
        let grant = ClaudeGrant {
            timeout: Some(Duration::from_secs(10)),
            max_turns: Some(3),
            ..ClaudeGrant::default()
        };
        let asked = Options {
            timeout_ms: Some(600_000),
            max_turns: Some(50),
            ..options()
        };
        let request = Request::resolve(&config(), &grant, "hi".into(), asked).unwrap();
        assert_eq!(request.deadline, Duration::from_secs(10));
        assert_eq!(request.max_turns, Some(3));
        let shorter = Options {
            timeout_ms: Some(2_000),
            ..options()
        };
        let request = Request::resolve(&config(), &grant, "hi".into(), shorter).unwrap();
        assert_eq!(request.deadline, Duration::from_secs(2));
    }

    #[test]
    fn plugin_values_stay_inside_their_flags() {
        let request = Request {
            system: Some("--dangerously-skip-permissions".into()),
            model: Some("sonnet --verbose".into()),
            max_turns: Some(2),
            ..Request::resolve(&config(), &ClaudeGrant::default(), "hi".into(), options()).unwrap()
        };
        assert_eq!(
            request.cli_flags(),
            [
                "--model=sonnet --verbose",
                "--system-prompt=--dangerously-skip-permissions",
                "--max-turns=2",
                "--tools=",
                "--strict-mcp-config",
            ]
        );
    }

    #[test]
    fn tools_to_ask_about_go_to_the_permission_prompt_and_only_persistent_may_ask() {
        let grant = ClaudeGrant {
            backends: vec![Backend::Persistent, Backend::Cli],
            tools: vec!["Read".into()],
            ask_tools: vec!["Bash".into(), "Write".into()],
            ..ClaudeGrant::default()
        };
        let asked = Options {
            allowed_tools: vec!["Read".into(), "Bash".into()],
            ..options()
        };
        let request = Request::resolve(&config(), &grant, "hi".into(), asked.clone()).unwrap();
        assert_eq!(request.tools, ["Read"]);
        assert_eq!(request.ask_tools, ["Bash"]);
        let flags = request.cli_flags();
        assert!(flags.contains(&"--tools=Read,Bash".to_owned()), "{flags:?}");
        assert!(flags.contains(&"--allowed-tools=Read".to_owned()), "{flags:?}");
        assert!(
            flags.contains(&"--permission-prompt-tool=stdio".to_owned()),
            "{flags:?}"
        );
        let through_cli = Options {
            backend: Some(WitBackend::Cli),
            ..asked
        };
        match Request::resolve(&config(), &grant, "hi".into(), through_cli) {
            Err(CapabilityError::Denied(message)) => assert_eq!(
                message,
                "tool `Bash` needs a person's approval, which the `cli` backend cannot ask for (only `persistent` can)"
            ),
            other => panic!("expected denied, got {other:?}"),
        }
        let outright = Request::resolve(&config(), &grant, "hi".into(), options()).unwrap();
        assert!(!outright
            .cli_flags()
            .iter()
            .any(|f| f.starts_with("--permission-prompt-tool")));
    }

    #[test]
    fn an_ungranted_backend_model_or_tool_is_denied_by_name() {
        let grant = ClaudeGrant {
            backends: vec![Backend::Persistent],
            models: vec!["sonnet".into()],
            tools: vec!["WebSearch".into()],
            ..ClaudeGrant::default()
        };
        let denied = |options| match Request::resolve(&config(), &grant, "hi".into(), options) {
            Err(CapabilityError::Denied(message)) => message,
            other => panic!("expected denied, got {other:?}"),
        };
        let message = denied(Options {
            backend: Some(WitBackend::Api),
            ..options()
        });
        assert_eq!(
            message,
            "the `api` backend is not granted (allowed: `persistent`)"
        );
        let message = denied(Options {
            model: Some("opus".into()),
            ..options()
        });
        assert_eq!(message, "model `opus` is not granted (allowed: `sonnet`)");
        let message = denied(Options {
            allowed_tools: vec!["Bash".into()],
            ..options()
        });
        assert_eq!(message, "tool `Bash` is not granted (allowed: `WebSearch`)");
        let request = Request::resolve(&config(), &grant, "hi".into(), options()).unwrap();
        assert_eq!(
            request.backend,
            Backend::Persistent,
            "the grant's first backend is its default"
        );
        let narrow = ClaudeGrant {
            models: vec!["haiku".into(), "sonnet-4".into()],
            ..ClaudeGrant::default()
        };
        let request = Request::resolve(&config(), &narrow, "hi".into(), options()).unwrap();
        assert_eq!(
            request.model.as_deref(),
            Some("haiku"),
            "the host's default is not granted"
        );
    }
}
