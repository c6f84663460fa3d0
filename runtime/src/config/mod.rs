//! `mission.toml`: the raw file as serde reads it, and the validated
//! [`Config`] the rest of the host uses. Every error names the file and the
//! field.
//!
//! ```toml
//! data_dir = "data"              # SQLite file and compile cache
//! schedules_dir = "schedules"    # schedule files (*.toml)
//! shutdown_grace = "10s"         # for running tasks to finish on shutdown
//!
//! [defaults]                     # limits for plugins that set none
//! timeout = "30s"
//! memory = "64MiB"
//! output = "64KiB"
//!
//! [plugins.briefing]
//! world = "task"
//! wasm = "plugins/target/wasm32-wasip2/release/briefing.wasm"
//! grants = ["state", "history"]
//! timeout = "10s"
//! config = { greeting = "Good morning" }
//! ```

pub mod claude;
pub mod units;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use claude::{ClaudeConfig, ClaudeGrant, RawClaude, RawClaudeGrant};
use units::{ByteSize, HumanDuration};

/// A plugin's name as written under `[plugins.NAME]`: lowercase ASCII
/// letters, digits, `-` and `_`, at most 64 characters. It tags logs, run
/// records and every row of plugin-scoped data.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginName(String);

impl PluginName {
    /// Checks `name` against the rules above.
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "`{name}` is not a valid plugin name: use 1 to 64 lowercase letters, digits, `-` or `_`"
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which WIT world a plugin implements (`wit/worlds.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// `world task`: exports `run`; started by schedules and `mission run`.
    Task,
    /// `world chat`: exports `handle`; answers chat messages.
    Chat,
}

impl World {
    /// The export a component of this world must have.
    pub fn export(self) -> &'static str {
        match self {
            World::Task => "run",
            World::Chat => "handle",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Task => "task",
            World::Chat => "chat",
        })
    }
}

/// A capability a plugin may be granted. `log` needs no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// `mission:plugin/state`: the plugin's private key-value store.
    State,
    /// `mission:plugin/history`: the plugin's conversation history.
    History,
    /// `mission:plugin/claude`: asking Claude.
    Claude,
    /// `mission:plugin/notify`: sending Telegram messages.
    Notify,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::State => "state",
            Grant::History => "history",
            Grant::Claude => "claude",
            Grant::Notify => "notify",
        })
    }
}

/// What a plugin may do and use in one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time a call may take, including time spent in capabilities.
    pub timeout: Duration,
    /// Linear memory (all memories of the instance together), in bytes.
    pub memory: u64,
    /// Bytes of stdout and stderr passed on to the log; the rest is dropped.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory: 64 << 20,
            output: 64 << 10,
        }
    }
}

/// One plugin as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The name under `[plugins.NAME]`.
    pub name: PluginName,
    /// The world its component must implement.
    pub world: World,
    /// The component file, resolved against the config file's directory.
    pub wasm: PathBuf,
    /// The capabilities it may use; every other capability call is denied.
    pub grants: BTreeSet<Grant>,
    /// Its per-call limits.
    pub limits: Limits,
    /// Config values handed to every call, sorted by key.
    pub values: Vec<(String, String)>,
    /// How much conversation history its `history.read` returns.
    pub history: HistoryPolicy,
    /// What it may ask Claude, if it has the `claude` grant.
    pub claude: ClaudeGrant,
    /// The Telegram chats it may write to, if it has the `notify` grant.
    pub notify_chats: BTreeSet<i64>,
}

/// How much conversation history a plugin is given: `[history]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Entries older than this are left out.
    pub ttl: Duration,
    /// At most this many exchanges (a message and its reply) are returned.
    pub max_exchanges: u32,
}

impl Default for HistoryPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(4 * 3600),
            max_exchanges: 15,
        }
    }
}

/// The Telegram bot: `[telegram]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelegramConfig {
    /// The environment variable holding the bot token.
    pub token_env: String,
    /// The Bot API's base URL.
    pub api_url: String,
    /// Telegram user ids whose messages reach the handler.
    pub allowed_users: BTreeSet<u64>,
    /// The chat plugin that answers.
    pub handler: PluginName,
    /// What a user not on the allowlist is told; none says nothing.
    pub stranger_reply: Option<String>,
    /// How long one `getUpdates` long poll waits.
    pub poll_timeout: Duration,
    /// A fresh instance per message, or one kept per chat.
    pub instance: InstanceMode,
    /// How long a kept instance may sit idle before it is dropped.
    pub warm_idle: Duration,
}

/// How the chat plugin is instantiated for each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// A fresh instance for every message (the default).
    #[default]
    Fresh,
    /// One instance per chat, kept between messages; dropped when idle, on
    /// reload and after a trap. History and state live in the host either
    /// way, so both modes answer the same.
    Warm,
}

/// The validated contents of `mission.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from.
    pub file: PathBuf,
    /// Where the SQLite database and the compile cache live.
    pub data_dir: PathBuf,
    /// Where schedule files live.
    pub schedules_dir: PathBuf,
    /// How long running tasks may take to finish on shutdown before they
    /// are interrupted.
    pub shutdown_grace: Duration,
    /// The plugins, sorted by name.
    pub plugins: Vec<PluginConfig>,
    /// The Telegram bot, if configured.
    pub telegram: Option<TelegramConfig>,
    /// How the host reaches Claude, if configured.
    pub claude: Option<ClaudeConfig>,
}

/// A config file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Config {
    /// Reads and validates the config file at `file`. Relative paths in it
    /// are taken from the file's directory.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
            file: file.to_owned(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(file, &text)
    }

    /// Validates `text` as the contents of `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let data_dir = base.join(raw.data_dir);
        let defaults = raw.defaults.unwrap_or_default().apply(Limits::default());
        let history = raw
            .history
            .map_or_else(HistoryPolicy::default, |h| HistoryPolicy {
                ttl: h.ttl.map_or(HistoryPolicy::default().ttl, |t| t.0),
                max_exchanges: h.max_exchanges.unwrap_or(HistoryPolicy::default().max_exchanges),
            });
        let mut plugins = Vec::with_capacity(raw.plugins.len());
        for (name, plugin) in raw.plugins {
            let field = format!("plugins.{name}");
            let name = PluginName::parse(&name).map_err(|e| error(format!("{field}: {e}")))?;
            let values = scalar_values(&format!("{field}.config"), plugin.config).map_err(error)?;
            let grants: BTreeSet<Grant> = plugin.grants.into_iter().collect();
            let claude = match plugin.claude {
                Some(_) if !grants.contains(&Grant::Claude) => {
                    return Err(error(format!(
                        "{field}.claude: the plugin has no `claude` grant; add \"claude\" to {field}.grants"
                    )))
                }
                Some(grant) => grant.validate(&format!("{field}.claude"), base).map_err(error)?,
                None => ClaudeGrant::default(),
            };
            let notify_chats = match plugin.notify {
                Some(_) if !grants.contains(&Grant::Notify) => {
                    return Err(error(format!(
                        "{field}.notify: the plugin has no `notify` grant; add \"notify\" to {field}.grants"
                    )))
                }
                Some(notify) => notify.chats.into_iter().collect(),
                None => BTreeSet::new(),
            };
            plugins.push(PluginConfig {
                name,
                world: plugin.world,
                wasm: base.join(plugin.wasm),
                grants,
                limits: RawLimits {
                    timeout: plugin.timeout,
                    memory: plugin.memory,
                    output: plugin.output,
                }
                .apply(defaults),
                values,
                history,
                claude,
                notify_chats,
            });
        }
        let telegram = match raw.telegram {
            None => None,
            Some(telegram) => {
                let handler = plugins
                    .iter()
                    .find(|p| p.name.as_str() == telegram.handler)
                    .ok_or_else(|| {
                        error(format!(
                            "telegram.handler: no plugin named `{}`",
                            telegram.handler
                        ))
                    })?;
                if handler.world != World::Chat {
                    return Err(error(format!(
                        "telegram.handler: `{}` is a {} plugin; the bot needs a chat plugin",
                        handler.name, handler.world
                    )));
                }
                Some(TelegramConfig {
                    token_env: telegram.token_env,
                    api_url: telegram
                        .api_url
                        .unwrap_or_else(|| "https://api.telegram.org".to_owned()),
                    allowed_users: telegram.allowed_users.into_iter().collect(),
                    handler: handler.name.clone(),
                    stranger_reply: telegram.stranger_reply,
                    poll_timeout: telegram.poll_timeout.map_or(Duration::from_secs(10), |t| t.0),
                    instance: telegram.instance,
                    warm_idle: telegram.warm_idle.map_or(Duration::from_secs(15 * 60), |t| t.0),
                })
            }
        };
        let claude = match raw.claude {
            Some(claude) => Some(claude.validate(base, &data_dir).map_err(error)?),
            None => None,
        };
        Ok(Config {
            file: file.to_owned(),
            data_dir,
            schedules_dir: base.join(raw.schedules_dir.unwrap_or_else(|| "schedules".into())),
            shutdown_grace: raw.shutdown_grace.map_or(Duration::from_secs(10), |g| g.0),
            plugins,
            telegram,
            claude,
        })
    }

    /// The plugin named `name`, if configured.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name.as_str() == name)
    }
}

/// The `config = { .. }` table at path `table` as the `key = value` text
/// pairs a plugin receives, sorted by key; a table or array value is an
/// error naming its path.
pub(crate) fn scalar_values(
    table_path: &str,
    table: BTreeMap<String, toml::Value>,
) -> Result<Vec<(String, String)>, String> {
    table
        .into_iter()
        .map(|(key, value)| {
            config_value(&value)
                .map(|text| (key.clone(), text))
                .ok_or_else(|| {
                    format!(
                        "{table_path}.{key}: must be a string, number or boolean, not {}",
                        value.type_str()
                    )
                })
        })
        .collect()
}

/// A scalar config value as the text a plugin receives.
fn config_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

/// `mission.toml` exactly as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Directory for the SQLite file and the compile cache.
    /// Example: `data_dir = "data"`
    data_dir: PathBuf,
    /// Directory of schedule files. Example: `schedules_dir = "schedules"`
    schedules_dir: Option<PathBuf>,
    /// Grace period for running tasks on shutdown (default 10s).
    /// Example: `shutdown_grace = "30s"`
    shutdown_grace: Option<HumanDuration>,
    /// Limits for plugins that do not set their own.
    defaults: Option<RawLimits>,
    /// The plugins, by name. Example: `[plugins.briefing]`
    #[serde(default)]
    plugins: BTreeMap<String, RawPlugin>,
    /// How much history plugins are given.
    history: Option<RawHistory>,
    /// The Telegram bot.
    telegram: Option<RawTelegram>,
    /// How to reach Claude.
    claude: Option<RawClaude>,
}

/// `[history]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistory {
    /// Example: `ttl = "4h"` (the default)
    ttl: Option<HumanDuration>,
    /// Example: `max_exchanges = 15` (the default)
    max_exchanges: Option<u32>,
}

/// `[telegram]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    /// Example: `token_env = "TELEGRAM_BOT_TOKEN"`; the token itself never
    /// goes in the file.
    token_env: String,
    /// Example: `api_url = "http://127.0.0.1:8081"` (default Telegram's)
    api_url: Option<String>,
    /// Example: `allowed_users = [408258968]`
    allowed_users: Vec<u64>,
    /// Example: `handler = "echo"`
    handler: String,
    /// Example: `stranger_reply = "This is a private bot."`
    stranger_reply: Option<String>,
    /// Example: `poll_timeout = "10s"` (the default; teloxide gives up after 17s)
    poll_timeout: Option<HumanDuration>,
    /// Example: `instance = "warm"` (default `"fresh"`)
    #[serde(default)]
    instance: InstanceMode,
    /// Example: `warm_idle = "15m"` (the default)
    warm_idle: Option<HumanDuration>,
}

/// One `[plugins.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    /// Example: `world = "task"`
    world: World,
    /// Example: `wasm = "plugins/target/wasm32-wasip2/release/briefing.wasm"`
    wasm: PathBuf,
    /// Example: `grants = ["state", "history"]`
    #[serde(default)]
    grants: Vec<Grant>,
    /// Example: `timeout = "10s"` (default: `[defaults]`, then 30s)
    timeout: Option<HumanDuration>,
    /// Example: `memory = "32MiB"` (default: `[defaults]`, then 64MiB)
    memory: Option<ByteSize>,
    /// Example: `output = "16KiB"` (default: `[defaults]`, then 64KiB)
    output: Option<ByteSize>,
    /// Example: `config = { greeting = "Good morning" }`
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    /// Example: `[plugins.assistant.claude]`
    claude: Option<RawClaudeGrant>,
    /// Example: `[plugins.leads.notify]`
    notify: Option<RawNotify>,
}

/// `[plugins.NAME.notify]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    /// Example: `chats = [408258968]`: the Telegram chat ids it may write to.
    chats: Vec<i64>,
}

/// Limits as written; unset ones fall back to `[defaults]`, then built-ins.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    /// Example: `timeout = "30s"`
    timeout: Option<HumanDuration>,
    /// Example: `memory = "64MiB"`
    memory: Option<ByteSize>,
    /// Example: `output = "64KiB"`
    output: Option<ByteSize>,
}

impl RawLimits {
    fn apply(self, fallback: Limits) -> Limits {
        Limits {
            timeout: self.timeout.map_or(fallback.timeout, |t| t.0),
            memory: self.memory.map_or(fallback.memory, |m| m.0),
            output: self.output.map_or(fallback.output, |o| o.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/mission/mission.toml"), text)
    }

    #[test]
    fn reads_plugins_with_limits_grants_and_values() {
        let config = parse(
            r#"
            data_dir = "data"
            [defaults]
            memory = "32MiB"
            [plugins.briefing]
            world = "task"
            wasm = "briefing.wasm"
            grants = ["state", "history"]
            timeout = "10s"
            config = { greeting = "Hi", count = 3, loud = true }
            "#,
        )
        .unwrap();
        assert_eq!(config.data_dir, Path::new("/etc/mission/data"));
        assert_eq!(config.schedules_dir, Path::new("/etc/mission/schedules"));
        let plugin = config.plugin("briefing").unwrap();
        assert_eq!(plugin.world, World::Task);
        assert_eq!(plugin.wasm, Path::new("/etc/mission/briefing.wasm"));
        assert_eq!(plugin.grants, BTreeSet::from([Grant::State, Grant::History]));
        assert_eq!(
            plugin.limits,
            Limits {
                timeout: Duration::from_secs(10),
                memory: 32 << 20,
                output: Limits::default().output,
            }
        );
        let values: Vec<_> = plugin
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(values, [("count", "3"), ("greeting", "Hi"), ("loud", "true")]);
    }

    #[test]
    fn an_unknown_field_is_named_with_the_file() {
        let error = parse(
            r#"
            data_dir = "data"
            [plugins.briefing]
            world = "task"
            wasm = "b.wasm"
            tiemout = "10s"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("/etc/mission/mission.toml: "), "{error}");
        assert!(error.contains("tiemout"), "{error}");
    }

    #[test]
    fn an_unknown_top_level_section_is_an_error() {
        let error = parse("data_dir = \"d\"\n[telegarm]\ntoken = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("telegarm"), "{error}");
    }

    #[test]
    fn an_unknown_grant_or_world_is_named() {
        let error = parse(
            "data_dir = \"d\"\n[plugins.a]\nworld = \"task\"\nwasm = \"a.wasm\"\ngrants = [\"network\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("network") && error.contains("state"), "{error}");
        let error = parse("data_dir = \"d\"\n[plugins.a]\nworld = \"cron\"\nwasm = \"a.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("cron"), "{error}");
    }

    #[test]
    fn a_bad_limit_names_its_field() {
        let error =
            parse("data_dir = \"d\"\n[plugins.a]\nworld = \"task\"\nwasm = \"a.wasm\"\ntimeout = \"10\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("timeout") && error.contains("has no unit"),
            "{error}"
        );
    }

    #[test]
    fn a_table_config_value_is_refused_by_its_path() {
        let error = parse(
            "data_dir = \"d\"\n[plugins.a]\nworld = \"task\"\nwasm = \"a.wasm\"\n[plugins.a.config]\nnested = { x = 1 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("plugins.a.config.nested: must be a string"),
            "{error}"
        );
    }

    #[test]
    fn an_invalid_plugin_name_is_refused() {
        let error = parse("data_dir = \"d\"\n[plugins.\"Bad Name\"]\nworld = \"task\"\nwasm = \"a.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("plugins.Bad Name: `Bad Name` is not a valid plugin name"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_data_dir_is_named() {
        let error = parse("[plugins]\n").unwrap_err().to_string();
        assert!(error.contains("data_dir"), "{error}");
    }
}
