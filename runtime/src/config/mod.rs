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
//! state_bytes = "16MiB"          # what `state` may hold: bytes of keys and values
//! state_keys = 10000             # and keys
//!
//! [plugins.briefing]
//! world = "task"
//! wasm = "plugins/target/wasm32-wasip2/release/briefing.wasm"
//! source = "plugins/briefing"     # its source directory, for `mission build`
//! grants = ["state", "history"]
//! timeout = "10s"
//! config = { greeting = "Good morning" }
//! ```

pub mod after;
pub mod alerts;
pub mod backup;
pub mod claude;
pub mod credit;
pub mod cron;
pub mod files;
pub mod http;
mod plugin;
pub mod process;
pub mod retention;
mod telegram;
pub mod units;
pub mod watches;
pub mod web;
pub mod webhooks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::os::regular_file;
use alerts::{AlertsConfig, RawAlerts};
use backup::{BackupConfig, RawBackup};
use claude::{ClaudeConfig, RawClaude};
pub use plugin::{Grant, Limits, PluginConfig, PluginName, World};
use plugin::{RawLimits, RawPlugin};
use retention::{RawRetention, Retention};
use telegram::RawTelegram;
pub use telegram::{
    InstanceMode, TelegramConfig, TranscribeEndpoint, TranscribeProgram, Transcriber, GROUP_STREAM_EVERY,
};
use units::HumanDuration;
use watches::{RawWatch, WatchConfig};
use web::{RawWeb, WebConfig};
use webhooks::{RawWebhooks, WebhooksConfig};

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
    /// How long records are kept.
    pub retention: Retention,
    /// The status page, if served.
    pub web: Option<WebConfig>,
    /// The webhook listener and its webhooks, if configured.
    pub webhooks: Option<WebhooksConfig>,
    /// The watched directories, by name.
    pub watches: Vec<WatchConfig>,
    /// Where failing jobs are told, if anywhere.
    pub alerts: Option<AlertsConfig>,
    /// The backups `mission up` takes on its own, if any.
    pub backup: Option<BackupConfig>,
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
        let text = regular_file::read_to_string(file, regular_file::MAX_CONFIG).map_err(|e| ConfigError {
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
        // Every path is made absolute here, once: the host hands them to
        // programs (the `claude` CLI, a transcriber) that run elsewhere.
        let absolute_file = std::path::absolute(file)
            .map_err(|e| error(format!("cannot resolve the config file's directory: {e}")))?;
        let base = absolute_file.parent().unwrap_or(Path::new("/"));
        let data_dir = base.join(raw.data_dir);
        let defaults = raw.defaults.unwrap_or_default().apply(Limits::default());
        let history = raw
            .history
            .map_or_else(HistoryPolicy::default, RawHistory::validate);
        let plugins = raw
            .plugins
            .into_iter()
            .map(|(name, plugin)| plugin.validate(&name, base, &data_dir, defaults, history))
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        check_tools_from(&plugins).map_err(error)?;
        let telegram = raw
            .telegram
            .map(|telegram| telegram.validate(&plugins, base, &data_dir))
            .transpose()
            .map_err(error)?;
        let claude = raw
            .claude
            .map(|claude| claude.validate(base, &data_dir))
            .transpose()
            .map_err(error)?;
        let retention = raw
            .retention
            .map_or_else(|| Ok(Retention::default()), RawRetention::validate)
            .map_err(error)?;
        let web = raw.web.map(RawWeb::validate).transpose().map_err(error)?;
        let webhooks = raw
            .webhooks
            .map(|webhooks| webhooks.validate(&plugins))
            .transpose()
            .map_err(error)?;
        if let (Some(web), Some(webhooks)) = (&web, &webhooks) {
            if same_port(web.listen, webhooks.listen) {
                return Err(error(format!(
                    "webhooks.listen: {} takes the port of web.listen ({}): the page and the webhooks \
                     each need a port of their own",
                    webhooks.listen, web.listen
                )));
            }
        }
        let alerts = raw
            .alerts
            .map(|alerts| alerts.validate(telegram.as_ref()))
            .transpose()
            .map_err(error)?;
        let backup = raw
            .backup
            .map(|backup| backup.validate(base, &data_dir))
            .transpose()
            .map_err(error)?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let watches = watches::validate(raw.watches, &plugins, base, home.as_deref()).map_err(error)?;
        Ok(Config {
            file: file.to_owned(),
            data_dir,
            schedules_dir: base.join(raw.schedules_dir.unwrap_or_else(|| "schedules".into())),
            shutdown_grace: raw.shutdown_grace.map_or(Duration::from_secs(10), |g| g.0),
            plugins,
            telegram,
            claude,
            retention,
            web,
            webhooks,
            watches,
            alerts,
            backup,
        })
    }

    /// Appends `text` (new sections) to the config file, only if the
    /// result is a valid config: that config, and the file's text before,
    /// for a caller that must undo more than this.
    pub fn append(&self, text: &str) -> Result<(Config, String), ConfigError> {
        let error = |message: String| ConfigError {
            file: self.file.clone(),
            message,
        };
        let original = regular_file::read_to_string(&self.file, regular_file::MAX_CONFIG)
            .map_err(|e| error(format!("cannot read the config file: {e}")))?;
        let mut updated = original.clone();
        if !updated.ends_with('\n') {
            updated.push('\n');
        }
        updated.push_str(text);
        let config = Config::parse(&self.file, &updated).map_err(|e| {
            error(format!(
                "with the new sections it would not load, so it is unchanged: {}",
                e.message
            ))
        })?;
        std::fs::write(&self.file, &updated)
            .map_err(|e| error(format!("cannot write the config file: {e}")))?;
        Ok((config, original))
    }

    /// The plugin named `name`, if configured.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name.as_str() == name)
    }

    /// How long a tool-use approval waits for a person.
    pub fn approval_timeout(&self) -> std::time::Duration {
        self.telegram
            .as_ref()
            .map_or(telegram::DEFAULT_APPROVAL_TIMEOUT, |t| t.approval_timeout)
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
    /// How long records are kept.
    retention: Option<RawRetention>,
    /// The status page.
    web: Option<RawWeb>,
    /// Webhooks.
    webhooks: Option<RawWebhooks>,
    /// Where failing jobs are told.
    alerts: Option<RawAlerts>,
    /// Backups `mission up` takes.
    backup: Option<RawBackup>,
    /// Watched directories. Example: `[watches.new-exports]`
    #[serde(default)]
    watches: BTreeMap<String, RawWatch>,
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

impl RawHistory {
    fn validate(self) -> HistoryPolicy {
        let default = HistoryPolicy::default();
        HistoryPolicy {
            ttl: self.ttl.map_or(default.ttl, |t| t.0),
            max_exchanges: self.max_exchanges.unwrap_or(default.max_exchanges),
        }
    }
}

/// Each plugin a Claude grant names in `tools_from` is a tools plugin,
/// and none reaches its own tools, directly or through other tools
/// plugins (a tool whose Claude could call it again, without end).
fn check_tools_from(plugins: &[PluginConfig]) -> Result<(), String> {
    for plugin in plugins {
        for name in &plugin.claude.tools_from {
            let field = format!("plugins.{}.claude.tools_from", plugin.name);
            if name == &plugin.name {
                return Err(format!("{field}: a plugin cannot offer its tools to itself"));
            }
            if name.as_str() == claude::HOST_TOOLS {
                continue;
            }
            match plugins.iter().find(|p| &p.name == name) {
                None => return Err(format!("{field}: no plugin named `{name}`")),
                Some(other) if other.world != World::Tools => {
                    return Err(format!(
                    "{field}: `{name}` is a {} plugin; tools come from a tools plugin (world = \"tools\")",
                    other.world
                ))
                }
                Some(_) => {}
            }
        }
    }
    for plugin in plugins {
        if let Some(path) = path_back(plugins, &plugin.name, &mut vec![plugin.name.clone()]) {
            let path: Vec<&str> = path.iter().map(PluginName::as_str).collect();
            return Err(format!(
                "plugins.{}.claude.tools_from: a tools plugin's Claude can call back into it ({})",
                plugin.name,
                path.join(" → ")
            ));
        }
    }
    Ok(())
}

/// Whether listening on `a` and on `b` would take the same port: a port
/// chosen by the system (0) never does; the same port does on the same
/// address or where either is every address.
fn same_port(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The path `path` continued through `tools_from` back to `start`, if
/// there is one.
fn path_back(
    plugins: &[PluginConfig],
    start: &PluginName,
    path: &mut Vec<PluginName>,
) -> Option<Vec<PluginName>> {
    let last = plugins.iter().find(|p| Some(&p.name) == path.last())?;
    for next in &last.claude.tools_from {
        if next == start {
            let mut found = path.clone();
            found.push(next.clone());
            return Some(found);
        }
        if path.contains(next) {
            continue;
        }
        path.push(next.clone());
        if let Some(found) = path_back(plugins, start, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/mission/mission.toml"), text)
    }

    #[test]
    fn a_relative_config_file_gives_absolute_paths() {
        let config = Config::parse(
            Path::new("mission.toml"),
            r#"
            data_dir = "data"
            [claude]
            [plugins.p]
            world = "task"
            wasm = "plugins/p.wasm"
            grants = ["process"]
            [plugins.p.process]
            programs = ["/bin/true"]
            "#,
        )
        .unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(config.data_dir, here.join("data"));
        assert_eq!(config.schedules_dir, here.join("schedules"));
        let plugin = config.plugin("p").unwrap();
        assert_eq!(plugin.wasm, here.join("plugins/p.wasm"));
        assert_eq!(plugin.process.as_ref().unwrap().workdir, here.join("data"));
        assert_eq!(config.claude.unwrap().workdir, here.join("data/claude"));
    }

    #[test]
    fn the_page_and_the_webhooks_cannot_share_a_port() {
        let config = |web: &str, hooks: &str| {
            parse(&format!(
                "data_dir = \"d\"\n[web]\nlisten = \"{web}\"\n[webhooks]\nlisten = \"{hooks}\""
            ))
        };
        for (web, hooks) in [
            ("127.0.0.1:8640", "127.0.0.1:8640"),
            ("127.0.0.1:8640", "0.0.0.0:8640"),
        ] {
            let error = config(web, hooks).unwrap_err();
            assert!(
                error.message.contains(&format!(
                    "webhooks.listen: {hooks} takes the port of web.listen ({web})"
                )),
                "{error}"
            );
        }
        config("127.0.0.1:8640", "127.0.0.1:8641").unwrap();
        config("127.0.0.1:0", "127.0.0.1:0").unwrap();
        config("127.0.0.1:8640", "192.168.1.2:8640").unwrap();
    }

    #[test]
    fn tools_plugins_whose_tools_could_share_a_name_are_refused() {
        for name in ["ev__x", "ev_"] {
            let error = parse(&format!(
                "data_dir = \"d\"\n[plugins.{name}]\nworld = \"tools\"\nwasm = \"t.wasm\""
            ))
            .unwrap_err();
            assert!(
                error.message.contains(&format!(
                    "plugins.{name}: a tools plugin's name may not hold `__` or end in `_`"
                )),
                "{error}"
            );
        }
        // Other worlds have no tool names: their names are free.
        parse("data_dir = \"d\"\n[plugins.ev__x]\nworld = \"task\"\nwasm = \"t.wasm\"").unwrap();
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
                ..Limits::default()
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
    fn tools_from_names_tools_plugins_that_never_call_back() {
        let plugins = |grants: [&str; 3]| {
            let mut text = String::from("data_dir = \"d\"\n");
            for (name, (world, tools_from)) in ["chat", "crm", "mail"].iter().zip([
                ("chat", grants[0]),
                ("tools", grants[1]),
                ("tools", grants[2]),
            ]) {
                text.push_str(&format!(
                    "[plugins.{name}]\nworld = \"{world}\"\nwasm = \"{name}.wasm\"\ngrants = [\"claude\"]\n\
                     [plugins.{name}.claude]\ntools_from = [{tools_from}]\n"
                ));
            }
            parse(&text).map(drop).map_err(|e| e.to_string())
        };
        // The assistant uses crm, whose Claude uses mail: fine.
        plugins(["\"crm\"", "\"mail\"", ""]).unwrap();
        let error = plugins(["\"crm\"", "\"mail\"", "\"crm\""]).unwrap_err();
        assert!(
            error.ends_with("plugins.crm.claude.tools_from: a tools plugin's Claude can call back into it (crm → mail → crm)"),
            "{error}"
        );
        let error = plugins(["", "\"crm\"", ""]).unwrap_err();
        assert!(
            error.ends_with("a plugin cannot offer its tools to itself"),
            "{error}"
        );
        let error = plugins(["", "\"chat\"", ""]).unwrap_err();
        assert!(
            error.ends_with("`chat` is a chat plugin; tools come from a tools plugin (world = \"tools\")"),
            "{error}"
        );
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

    #[test]
    fn only_a_tools_plugin_records_its_calls_contents() {
        let plugin = |world: &str| {
            parse(&format!(
                "data_dir = \"d\"\n[plugins.p]\nworld = \"{world}\"\nwasm = \"p.wasm\"\nrecord_contents = true\n"
            ))
        };
        assert!(plugin("tools").unwrap().plugin("p").unwrap().record_contents);
        let error = plugin("task").unwrap_err().to_string();
        assert!(
            error.contains("plugins.p.record_contents: only a tools plugin's calls are recorded"),
            "{error}"
        );
    }

    #[test]
    fn only_a_task_plugin_follows_a_schedule_and_its_parents_are_names() {
        let plugin = |world: &str, after: &str| {
            parse(&format!(
                "data_dir = \"d\"\n[plugins.p]\nworld = \"{world}\"\nwasm = \"p.wasm\"\nafter = {after}\n"
            ))
        };
        let config = plugin(
            "task",
            "[{ schedule = \"sync\" }, { schedule = \"crm\", on = \"any\" }]",
        )
        .unwrap();
        let after = &config.plugin("p").unwrap().after;
        assert_eq!(
            after
                .iter()
                .map(|a| (a.schedule.as_str(), a.on))
                .collect::<Vec<_>>(),
            [("sync", after::FollowOn::Success), ("crm", after::FollowOn::Any)]
        );
        let error = plugin("chat", "{ schedule = \"sync\" }").unwrap_err().to_string();
        assert!(
            error.contains(
                "plugins.p.after: a run's end starts a task plugin's `run`, and this is a chat plugin"
            ),
            "{error}"
        );
        let error = plugin("task", "{ schedule = \"../sync\" }")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("plugins.p.after: `../sync` is not a valid schedule name"),
            "{error}"
        );
    }

    #[test]
    fn the_host_s_own_tools_are_named_mission_and_ask_by_themselves() {
        let grant = |lines: &str| {
            parse(&format!(
                "data_dir = \"d\"\n[plugins.p]\nworld = \"chat\"\nwasm = \"p.wasm\"\n\
                 grants = [\"claude\"]\n[plugins.p.claude]\n{lines}\n"
            ))
            .map_err(|e| e.to_string())
        };
        let config = grant("tools_from = [\"mission\"]\nallow_outright = [\"mission.pause\"]").unwrap();
        assert_eq!(
            config.plugin("p").unwrap().claude.allow_outright,
            ["mission.pause"]
        );
        let error = grant("tools_from = [\"mission\"]\nask_tools = [\"mission.pause\"]").unwrap_err();
        assert!(
            error.contains("the host's own tools ask by themselves"),
            "{error}"
        );
        let error = grant("allow_outright = [\"mission.pause\"]").unwrap_err();
        assert!(error.contains("is not one of the host's own tools"), "{error}");
        let error = parse("data_dir = \"d\"\n[plugins.mission]\nworld = \"tools\"\nwasm = \"m.wasm\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`mission` names the host's own tools"), "{error}");
    }

    fn transcriber(section: &str) -> Result<Transcriber, String> {
        parse(&format!(
            "data_dir = \"data\"\n[plugins.bot]\nworld = \"chat\"\nwasm = \"bot.wasm\"\n\
             [telegram]\ntoken_env = \"T\"\nallowed_users = [1]\nhandler = \"bot\"\n\
             [telegram.transcribe]\n{section}"
        ))
        .map(|c| c.telegram.unwrap().transcribe.unwrap())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_transcriber_is_a_program_or_an_endpoint_never_both() {
        let Transcriber::Program(program) =
            transcriber("command = [\"bin/whisper\", \"-l\", \"en\"]").unwrap()
        else {
            panic!("not a program")
        };
        assert_eq!(program.program, Path::new("/etc/mission/bin/whisper"));
        assert_eq!(program.args, ["-l", "en"]);
        let Transcriber::Endpoint(endpoint) =
            transcriber("url = \"http://127.0.0.1:8000/v1/audio/transcriptions\"\nkey_env = \"KEY\"")
                .unwrap()
        else {
            panic!("not an endpoint")
        };
        assert_eq!(endpoint.model, "whisper-1");
        assert_eq!(endpoint.key_env.as_deref(), Some("KEY"));
        assert_eq!(endpoint.timeout, Duration::from_secs(120));
        for (section, wanted) in [
            ("command = [\"w\"]\nurl = \"http://a\"", "give either `command`"),
            ("timeout = \"1m\"", "give either `command`"),
            (
                "url = \"ftp://a/x\"",
                "telegram.transcribe.url: `ftp://a/x` is not an http",
            ),
            (
                "url = \"http://a\"\nenv = [\"PATH\"]",
                "`env` goes with `command`",
            ),
            (
                "command = [\"w\"]\nkey_env = \"K\"",
                "`model` and `key_env` go with `url`",
            ),
            (
                "url = \"http://a\"\nkey_env = \"\"",
                "telegram.transcribe.key_env",
            ),
        ] {
            let error = transcriber(section).unwrap_err();
            assert!(error.contains(wanted), "{section}: {error}");
        }
    }
}
