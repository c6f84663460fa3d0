//! `[claude]` in `mission.toml` (how the host reaches Claude, its limits,
//! prices and global budgets) and `[plugins.NAME.claude]` (what one plugin
//! may ask for). Both as written and validated; errors name the field.
//!
//! ```toml
//! [claude]
//! backend = "cli"                  # default backend: cli | persistent | api
//! model = "claude-sonnet-4-5"      # default model (none: the CLI's own default)
//! timeout = "2m"                   # default deadline per call, waiting in line included
//! max_concurrent = 2               # calls at once; more wait their turn
//! max_output = "1MiB"              # a CLI printing more is stopped
//! command = "claude"               # the CLI; a bare name is looked up on PATH
//! workdir = "data/claude"          # the CLI's working directory (the default)
//! env = ["HOME", "PATH", "ANTHROPIC_API_KEY"]  # all of the host's environment the CLI gets
//!
//! [claude.persistent]
//! idle = "10m"                     # an unused session's process is stopped (and resumed later)
//! max_processes = 4                # the least recently used idle one makes room
//!
//! [claude.api]
//! url = "https://api.anthropic.com"
//! key_env = "ANTHROPIC_API_KEY"    # the variable holding the key; never the key itself
//! max_tokens = 4096
//! stream = false                   # true: read the answer as server-sent events
//! retries = 3                      # 429 and 529 retried after `retry-after`, never past the deadline
//!
//! [claude.budget]                  # all plugins together, calendar day / month in the host's zone
//! daily_usd = 5.0
//! monthly_usd = 100.0
//!
//! [claude.credit]                  # the Agent SDK credit (see `credit`)
//! plan = "max5x"
//! then = "api"
//!
//! [claude.prices.claude-sonnet-4-5]  # USD per million tokens, for the api backend
//! input = 3.0
//! output = 15.0
//! cache_write = 3.75
//! cache_read = 0.30
//!
//! [plugins.assistant.claude]       # what one plugin may ask (it also lists "claude" in grants)
//! backends = ["persistent", "cli"] # the first is its default
//! models = ["claude-sonnet-4-5"]   # empty: any
//! max_turns = 3
//! tools = ["Read"]                 # tools the model may use outright; none unless listed
//! ask_tools = ["Bash", "Write"]    # each use allowed by a person in the chat (persistent only)
//! mcp_config = "mcp.json"          # passed with --strict-mcp-config
//! tools_from = ["crm", "mission"]  # tools plugins whose tools Claude may call (over MCP); "mission": the host's own
//! allow_outright = ["mission.run_now"]  # the host's acting or changing tools that need no press
//! timeout = "5m"                   # the longest deadline it may ask for
//! daily_usd = 1.0                  # its calls, and its tools' calls for it
//! monthly_usd = 20.0
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::credit::{CreditConfig, RawCredit};
use crate::config::units::{ByteSize, HumanDuration};
use crate::config::PluginName;

/// A way of reaching Claude (the WIT `backend` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A fresh `claude -p --output-format json` per call.
    Cli,
    /// One long-lived stream-json `claude` process per session key.
    Persistent,
    /// The Anthropic Messages API.
    Api,
}

impl Backend {
    /// The name used in config, the ledger and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cli => "cli",
            Backend::Persistent => "persistent",
            Backend::Api => "api",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Spending limits in US dollars; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    /// Per calendar day in the host's time zone.
    pub daily_usd: Option<f64>,
    /// Per calendar month in the host's time zone.
    pub monthly_usd: Option<f64>,
}

/// What a model costs, in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input tokens at the full rate.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
    /// Input tokens read from the prompt cache.
    pub cache_read: f64,
}

/// The validated `[claude]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaudeConfig {
    /// The backend of a plugin whose grant names none.
    pub backend: Backend,
    /// The model when a call names none; `None` leaves it to the CLI.
    pub model: Option<String>,
    /// The deadline of a call when neither the call nor the grant sets one.
    pub timeout: Duration,
    /// Calls in flight at once over all plugins; more wait in line.
    pub max_concurrent: usize,
    /// The most a CLI call may print before it is stopped.
    pub max_output: u64,
    /// The `claude` executable.
    pub command: PathBuf,
    /// The CLI's working directory.
    pub workdir: PathBuf,
    /// Names of the host's environment variables the CLI is given; it gets
    /// no others.
    pub env: Vec<String>,
    /// The persistent backend's processes.
    pub persistent: PersistentConfig,
    /// The Messages API backend.
    pub api: ApiConfig,
    /// Limits over all plugins together.
    pub budget: Budget,
    /// Prices per model, for the API backend (the CLI reports its own cost).
    pub prices: BTreeMap<String, Price>,
    /// The Agent SDK credit the CLI backends draw from, if tracked.
    pub credit: Option<CreditConfig>,
}

/// `[claude.persistent]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersistentConfig {
    /// A session's process unused this long is stopped (its session can
    /// still be resumed).
    pub idle: Duration,
    /// The most processes alive at once; the least recently used idle one
    /// makes room.
    pub max_processes: usize,
}

/// `[claude.api]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// The API's base URL.
    pub url: String,
    /// The environment variable holding the API key.
    pub key_env: String,
    /// `max_tokens` of each request.
    pub max_tokens: u32,
    /// Whether to stream the answer (server-sent events).
    pub stream: bool,
    /// How often a 429 or 529 answer is retried.
    pub retries: u32,
}

/// The validated `[plugins.NAME.claude]` table: what one plugin may ask.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaudeGrant {
    /// Backends it may use, the first being its default; empty is the
    /// host's default backend only.
    pub backends: Vec<Backend>,
    /// Models it may name; empty is any.
    pub models: Vec<String>,
    /// The most agentic turns a call may take.
    pub max_turns: Option<u32>,
    /// Tools the model may use on its behalf (CLI backends) without
    /// asking anyone; empty is none.
    pub tools: Vec<String>,
    /// Tools it may use only once a person allows each use from the chat
    /// (the `persistent` backend asks; the others deny them).
    pub ask_tools: Vec<String>,
    /// An MCP server config passed to the CLI.
    pub mcp_config: Option<PathBuf>,
    /// Tools plugins whose tools Claude may call; one named in
    /// `ask_tools` as `PLUGIN.TOOL` is asked about first. `mission` is the
    /// host's own tools.
    pub tools_from: Vec<PluginName>,
    /// The host's acting and changing tools (`mission.pause`) that run
    /// without a person's press.
    pub allow_outright: Vec<String>,
    /// The longest deadline it may have.
    pub timeout: Option<Duration>,
    /// Its own spending limits.
    pub budget: Budget,
}

impl ClaudeConfig {
    /// The CLI as it will be started: a bare name looked up on the host's
    /// `PATH` (the child's environment may have none), else as written.
    pub fn resolved_command(&self) -> Option<PathBuf> {
        if self.command.components().count() > 1 {
            return self.command.is_file().then(|| self.command.clone());
        }
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(&self.command))
            .find(|path| path.is_file())
    }
}

impl ClaudeGrant {
    /// The backends this grant allows under `config`.
    pub fn allowed_backends(&self, config: &ClaudeConfig) -> Vec<Backend> {
        if self.backends.is_empty() {
            vec![config.backend]
        } else {
            self.backends.clone()
        }
    }
}

/// `[claude]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaude {
    /// Example: `backend = "persistent"` (default `"cli"`)
    backend: Option<Backend>,
    /// Example: `model = "claude-sonnet-4-5"`
    model: Option<String>,
    /// Example: `timeout = "2m"` (the default)
    timeout: Option<HumanDuration>,
    /// Example: `max_concurrent = 2` (the default)
    max_concurrent: Option<usize>,
    /// Example: `max_output = "1MiB"` (the default)
    max_output: Option<ByteSize>,
    /// Example: `command = "/usr/local/bin/claude"` (default `"claude"`)
    command: Option<PathBuf>,
    /// Example: `workdir = "data/claude"` (the default: `claude` in the data directory)
    workdir: Option<PathBuf>,
    /// Example: `env = ["HOME", "PATH", "ANTHROPIC_API_KEY"]` (the default)
    env: Option<Vec<String>>,
    persistent: Option<RawPersistent>,
    api: Option<RawApi>,
    budget: Option<RawBudget>,
    credit: Option<RawCredit>,
    /// Example: `[claude.prices.claude-sonnet-4-5]`
    #[serde(default)]
    prices: BTreeMap<String, Price>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersistent {
    /// Example: `idle = "10m"` (the default)
    idle: Option<HumanDuration>,
    /// Example: `max_processes = 4` (the default)
    max_processes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    /// Example: `url = "https://api.anthropic.com"` (the default)
    url: Option<String>,
    /// Example: `key_env = "ANTHROPIC_API_KEY"` (the default)
    key_env: Option<String>,
    /// Example: `max_tokens = 4096` (the default)
    max_tokens: Option<u32>,
    /// Example: `stream = true` (default false)
    stream: Option<bool>,
    /// Example: `retries = 3` (the default)
    retries: Option<u32>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    /// Example: `daily_usd = 5.0`
    daily_usd: Option<f64>,
    /// Example: `monthly_usd = 100.0`
    monthly_usd: Option<f64>,
}

/// `[plugins.NAME.claude]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaudeGrant {
    /// Example: `backends = ["persistent", "cli"]`
    #[serde(default)]
    backends: Vec<Backend>,
    /// Example: `models = ["claude-sonnet-4-5"]`
    #[serde(default)]
    models: Vec<String>,
    /// Example: `max_turns = 3`
    max_turns: Option<u32>,
    /// Example: `tools = ["WebSearch"]`
    #[serde(default)]
    tools: Vec<String>,
    /// Example: `ask_tools = ["Bash", "Write", "Edit"]`
    #[serde(default)]
    ask_tools: Vec<String>,
    /// Example: `mcp_config = "mcp.json"`
    mcp_config: Option<PathBuf>,
    /// Example: `tools_from = ["crm"]` (tools plugins; `ask_tools` may
    /// name one of their tools as `"crm.create_lead"`; `"mission"` is the
    /// host's own tools)
    #[serde(default)]
    tools_from: Vec<String>,
    /// Example: `allow_outright = ["mission.pause"]` (the host's acting and
    /// changing tools otherwise wait for a press)
    #[serde(default)]
    allow_outright: Vec<String>,
    /// Example: `timeout = "5m"`
    timeout: Option<HumanDuration>,
    /// Example: `daily_usd = 1.0`
    daily_usd: Option<f64>,
    /// Example: `monthly_usd = 20.0`
    monthly_usd: Option<f64>,
}

/// The name in `tools_from` of the host's own tools (its schedules, runs
/// and changes to them), offered as a tools plugin's are.
pub const HOST_TOOLS: &str = "mission";

/// The most processes `max_processes` may ask for.
const MAX_PROCESSES: usize = 64;

impl RawClaude {
    /// Validates the section; `base` resolves relative paths, `data_dir`
    /// holds the default working directory.
    pub(crate) fn validate(self, base: &Path, data_dir: &Path) -> Result<ClaudeConfig, String> {
        let max_concurrent = self.max_concurrent.unwrap_or(2);
        if max_concurrent == 0 {
            return Err("claude.max_concurrent: must be at least 1".into());
        }
        let persistent = self.persistent.map_or(
            PersistentConfig {
                idle: Duration::from_secs(600),
                max_processes: max_concurrent.max(4),
            },
            |p| PersistentConfig {
                idle: p.idle.map_or(Duration::from_secs(600), |i| i.0),
                max_processes: p.max_processes.unwrap_or(max_concurrent.max(4)),
            },
        );
        if persistent.max_processes < max_concurrent || persistent.max_processes > MAX_PROCESSES {
            return Err(format!(
                "claude.persistent.max_processes: must be between claude.max_concurrent ({max_concurrent}) \
                 and {MAX_PROCESSES}, so a call in line always finds room"
            ));
        }
        let api = self.api.map_or(Ok(RawApi::default_config()), RawApi::validate)?;
        for (model, price) in &self.prices {
            let rates = [price.input, price.output, price.cache_write, price.cache_read];
            if rates.iter().any(|r| !r.is_finite() || *r < 0.0) {
                return Err(format!("claude.prices.{model}: rates must be zero or more"));
            }
        }
        let command = self.command.unwrap_or_else(|| "claude".into());
        // A bare name is looked up on PATH; a path is taken from the config file.
        let command = if command.components().count() > 1 {
            base.join(command)
        } else {
            command
        };
        let env = self
            .env
            .unwrap_or_else(|| ["HOME", "PATH", "ANTHROPIC_API_KEY"].map(String::from).to_vec());
        if let Some(bad) = env.iter().find(|n| n.is_empty() || n.contains('=')) {
            return Err(format!("claude.env: `{bad}` is not an environment variable name"));
        }
        Ok(ClaudeConfig {
            backend: self.backend.unwrap_or(Backend::Cli),
            model: self.model,
            timeout: self.timeout.map_or(Duration::from_secs(120), |t| t.0),
            max_concurrent,
            max_output: self.max_output.map_or(1 << 20, |m| m.0),
            command,
            workdir: self
                .workdir
                .map_or_else(|| data_dir.join("claude"), |w| base.join(w)),
            env,
            persistent,
            api,
            budget: budget("claude.budget", self.budget.unwrap_or_default())?,
            prices: self.prices,
            credit: self.credit.map(RawCredit::validate).transpose()?,
        })
    }
}

impl RawApi {
    fn default_config() -> ApiConfig {
        ApiConfig {
            url: "https://api.anthropic.com".into(),
            key_env: "ANTHROPIC_API_KEY".into(),
            max_tokens: 4096,
            stream: false,
            retries: 3,
        }
    }

    fn validate(self) -> Result<ApiConfig, String> {
        let default = RawApi::default_config();
        let url = self.url.unwrap_or(default.url);
        url::Url::parse(&url).map_err(|e| format!("claude.api.url: `{url}` is not a URL: {e}"))?;
        Ok(ApiConfig {
            url: url.trim_end_matches('/').to_owned(),
            key_env: self.key_env.unwrap_or(default.key_env),
            max_tokens: self.max_tokens.unwrap_or(default.max_tokens),
            stream: self.stream.unwrap_or(default.stream),
            retries: self.retries.unwrap_or(default.retries),
        })
    }
}

fn budget(field: &str, raw: RawBudget) -> Result<Budget, String> {
    for (name, value) in [("daily_usd", raw.daily_usd), ("monthly_usd", raw.monthly_usd)] {
        if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
            return Err(format!("{field}.{name}: must be zero or more"));
        }
    }
    Ok(Budget {
        daily_usd: raw.daily_usd,
        monthly_usd: raw.monthly_usd,
    })
}

impl RawClaudeGrant {
    /// Validates the table `field` (`plugins.NAME.claude`); `base` resolves
    /// the MCP config path.
    pub(crate) fn validate(self, field: &str, base: &Path) -> Result<ClaudeGrant, String> {
        if self.max_turns == Some(0) {
            return Err(format!("{field}.max_turns: must be at least 1"));
        }
        if let Some(both) = self.ask_tools.iter().find(|t| self.tools.contains(t)) {
            return Err(format!(
                "{field}.ask_tools: `{both}` is also in {field}.tools; a tool is either allowed outright or asked about"
            ));
        }
        let mut tools_from = Vec::new();
        for name in &self.tools_from {
            let name = PluginName::parse(name).map_err(|e| format!("{field}.tools_from: {e}"))?;
            if tools_from.contains(&name) {
                return Err(format!("{field}.tools_from: `{name}` is named twice"));
            }
            tools_from.push(name);
        }
        for tool in &self.ask_tools {
            if let Some((plugin, _)) = tool.split_once('.') {
                if plugin == HOST_TOOLS {
                    return Err(format!(
                        "{field}.ask_tools: `{tool}`: the host's own tools ask by themselves (a reading \
                         tool runs outright, an acting or changing one waits for a press unless \
                         {field}.allow_outright names it)"
                    ));
                }
                if !tools_from.iter().any(|p| p.as_str() == plugin) {
                    return Err(format!(
                        "{field}.ask_tools: `{tool}` names a tool of `{plugin}`, which is not in {field}.tools_from"
                    ));
                }
            }
        }
        for tool in &self.allow_outright {
            if !tool.starts_with("mission.") || !tools_from.iter().any(|p| p.as_str() == HOST_TOOLS) {
                return Err(format!(
                    "{field}.allow_outright: `{tool}` is not one of the host's own tools (`mission.TOOL`, \
                     with \"mission\" in {field}.tools_from)"
                ));
            }
        }
        Ok(ClaudeGrant {
            tools_from,
            allow_outright: self.allow_outright,
            backends: self.backends,
            models: self.models,
            max_turns: self.max_turns,
            tools: self.tools,
            ask_tools: self.ask_tools,
            mcp_config: self.mcp_config.map(|p| base.join(p)),
            timeout: self.timeout.map(|t| t.0),
            budget: budget(
                field,
                RawBudget {
                    daily_usd: self.daily_usd,
                    monthly_usd: self.monthly_usd,
                },
            )?,
        })
    }
}
