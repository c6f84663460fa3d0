//! One plugin's config: `[plugins.NAME]` as written and as validated, with
//! its name, world, grants and limits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::after::{After, RawAfter};
use super::claude::{ClaudeGrant, RawClaudeGrant};
use super::files::{FilesGrant, RawFilesGrant};
use super::http::{HttpGrant, RawHttpGrant};
use super::process::{ProcessGrant, RawProcessGrant};
use super::units::{ByteSize, HumanDuration};
use super::{scalar_values, HistoryPolicy};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// `world task`: exports `run`; started by schedules and `mission run`.
    Task,
    /// `world chat`: exports `handle`; answers chat messages.
    Chat,
    /// `world tools`: exports `tools` and `call`; Claude calls its tools
    /// for the plugins whose grant names it in `tools_from`.
    Tools,
}

impl World {
    /// The export a component of this world must have.
    pub fn export(self) -> &'static str {
        match self {
            World::Task => "run",
            World::Chat => "handle",
            World::Tools => "call",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Task => "task",
            World::Chat => "chat",
            World::Tools => "tools",
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
    /// `wasi:http/outgoing-handler`: HTTP requests to the origins of
    /// `[plugins.NAME.http]`.
    Http,
    /// `mission:plugin/process`: running the programs of
    /// `[plugins.NAME.process]`.
    Process,
    /// `wasi:filesystem`: the directories of `[plugins.NAME.files]`.
    Files,
    /// `mission:plugin/attachments`: reading the files of the message
    /// being answered.
    Attachments,
    /// `mission:plugin/later`: waking itself later, a task plugin only.
    Later,
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Grant::State => "state",
            Grant::History => "history",
            Grant::Claude => "claude",
            Grant::Notify => "notify",
            Grant::Http => "http",
            Grant::Process => "process",
            Grant::Files => "files",
            Grant::Attachments => "attachments",
            Grant::Later => "later",
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
    /// Bytes of stdout, stderr and `log.write` passed on to the log; the
    /// rest is dropped.
    pub output: u64,
    /// Bytes (keys and values) the plugin may keep in `state`.
    pub state_bytes: u64,
    /// Keys the plugin may keep in `state`.
    pub state_keys: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory: 64 << 20,
            output: 64 << 10,
            state_bytes: 16 << 20,
            state_keys: 10_000,
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
    /// Its source directory, for `mission build` (`source`, default
    /// `plugins/NAME` beside the config).
    pub source: PathBuf,
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
    /// How long the buttons of a message it posts may be pressed.
    pub button_expiry: Duration,
    /// What it may reach over HTTP, if it has the `http` grant.
    pub http: Option<Arc<HttpGrant>>,
    /// What it may run, if it has the `process` grant.
    pub process: Option<Arc<ProcessGrant>>,
    /// The directories it may read and write, if it has the `files` grant.
    pub files: Option<Arc<FilesGrant>>,
    /// The most bytes one `attachments.read` returns.
    pub attachment_bytes: u64,
    /// The most wake-ups it may have waiting, if it has the `later` grant.
    pub later_pending: u32,
    /// Whether a tools plugin's calls are recorded with their input and
    /// result, not only their sizes.
    pub record_contents: bool,
    /// The schedules whose runs' ends start a run of it (a task plugin).
    pub after: Vec<After>,
}

#[cfg(test)]
impl PluginConfig {
    /// A task plugin `name` with no grants and the default limits, for
    /// tests.
    pub fn for_test(name: PluginName) -> PluginConfig {
        PluginConfig {
            wasm: PathBuf::from(format!("{name}.wasm")),
            source: PathBuf::from(format!("plugins/{name}")),
            name,
            world: World::Task,
            grants: BTreeSet::new(),
            limits: Limits::default(),
            values: Vec::new(),
            history: HistoryPolicy::default(),
            claude: ClaudeGrant::default(),
            notify_chats: BTreeSet::new(),
            button_expiry: DEFAULT_BUTTON_EXPIRY,
            http: None,
            process: None,
            files: None,
            attachment_bytes: 20 << 20,
            later_pending: DEFAULT_LATER_PENDING,
            record_contents: false,
            after: Vec::new(),
        }
    }
}

/// One `[plugins.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugin {
    /// Example: `world = "task"` (or `"chat"`, `"tools"`)
    world: World,
    /// Example: `wasm = "plugins/target/wasm32-wasip2/release/briefing.wasm"`
    wasm: PathBuf,
    /// Example: `source = "plugins/briefing"` (the default: plugins/NAME)
    source: Option<PathBuf>,
    /// Example: `grants = ["state", "history"]`
    #[serde(default)]
    grants: Vec<Grant>,
    /// Example: `timeout = "10s"` (default: `[defaults]`, then 30s)
    timeout: Option<HumanDuration>,
    /// Example: `memory = "32MiB"` (default: `[defaults]`, then 64MiB)
    memory: Option<ByteSize>,
    /// Example: `output = "16KiB"` (default: `[defaults]`, then 64KiB)
    output: Option<ByteSize>,
    /// Example: `state_bytes = "1MiB"` (default: `[defaults]`, then 16MiB)
    state_bytes: Option<ByteSize>,
    /// Example: `state_keys = 500` (default: `[defaults]`, then 10000)
    state_keys: Option<u64>,
    /// Example: `config = { greeting = "Good morning" }`
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    /// Example: `[plugins.assistant.claude]`
    claude: Option<RawClaudeGrant>,
    /// Example: `[plugins.leads.notify]`
    notify: Option<RawNotify>,
    /// Example: `[plugins.shop-sync.http]`
    http: Option<RawHttpGrant>,
    /// Example: `[plugins.backup.process]`
    process: Option<RawProcessGrant>,
    /// Example: `[plugins.invoices.files]`
    files: Option<RawFilesGrant>,
    /// Example: `[plugins.assistant.attachments]`
    attachments: Option<RawAttachments>,
    /// Example: `[plugins.invoice-reminder.later]`
    later: Option<RawLater>,
    /// Example: `record_contents = true` (a tools plugin; default false:
    /// its calls are recorded by size and outcome only)
    #[serde(default)]
    record_contents: bool,
    /// Example: `after = { schedule = "sync-shop", on = "success" }` (a
    /// task plugin; `failure` or `any`; a list for several)
    after: Option<RawAfter>,
}

/// `[plugins.NAME.attachments]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachments {
    /// Example: `max_bytes = "20MiB"` (the default: what the Bot API lets a bot download)
    max_bytes: Option<ByteSize>,
}

/// The most wake-ups a plugin may have waiting unless its
/// `[plugins.NAME.later]` says.
pub const DEFAULT_LATER_PENDING: u32 = 1_000;

/// `[plugins.NAME.later]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLater {
    /// Example: `max_pending = 1000` (the default): wake-ups waiting at once.
    max_pending: Option<u32>,
}

/// `[plugins.NAME.notify]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    /// Example: `chats = [408258968]`: the Telegram chat ids it may write to.
    chats: Vec<i64>,
    /// Example: `button_expiry = "7d"` (the default): how long the buttons
    /// of a message it posts may be pressed.
    button_expiry: Option<HumanDuration>,
}

/// How long a posted message's buttons may be pressed unless the plugin's
/// `[plugins.NAME.notify]` says.
pub const DEFAULT_BUTTON_EXPIRY: Duration = Duration::from_secs(7 * 86_400);

/// Checks that a grant's table `[FIELD.GRANT]` comes only with the grant
/// and, when the grant `needs` what its table says, that it is there: the
/// one place the two must agree.
fn grant_table(
    field: &str,
    grants: &BTreeSet<Grant>,
    grant: Grant,
    present: bool,
    needs: Option<&str>,
) -> Result<(), String> {
    match (present, grants.contains(&grant), needs) {
        (true, false, _) => Err(format!(
            "{field}.{grant}: the plugin has no `{grant}` grant; add \"{grant}\" to {field}.grants"
        )),
        (false, true, Some(what)) => Err(format!(
            "{field}.grants: `{grant}` needs a [{field}.{grant}] table with {what}"
        )),
        _ => Ok(()),
    }
}

/// Limits as written; unset ones fall back to `[defaults]`, then built-ins.
#[derive(Deserialize, Default, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    /// Example: `timeout = "30s"`
    timeout: Option<HumanDuration>,
    /// Example: `memory = "64MiB"`
    memory: Option<ByteSize>,
    /// Example: `output = "64KiB"`
    output: Option<ByteSize>,
    /// Example: `state_bytes = "16MiB"`
    state_bytes: Option<ByteSize>,
    /// Example: `state_keys = 10000`
    state_keys: Option<u64>,
}

impl RawLimits {
    pub(super) fn apply(self, fallback: Limits) -> Limits {
        Limits {
            timeout: self.timeout.map_or(fallback.timeout, |t| t.0),
            memory: self.memory.map_or(fallback.memory, |m| m.0),
            output: self.output.map_or(fallback.output, |o| o.0),
            state_bytes: self.state_bytes.map_or(fallback.state_bytes, |b| b.0),
            state_keys: self.state_keys.unwrap_or(fallback.state_keys),
        }
    }
}

impl RawPlugin {
    /// The plugin `[plugins.NAME]` validated: paths from `base`, unset
    /// limits from `defaults`, the history policy `history`.
    pub(super) fn validate(
        self,
        name: &str,
        base: &Path,
        data_dir: &Path,
        defaults: Limits,
        history: HistoryPolicy,
    ) -> Result<PluginConfig, String> {
        let field = format!("plugins.{name}");
        let name = PluginName::parse(name).map_err(|e| format!("{field}: {e}"))?;
        let values = scalar_values(&format!("{field}.config"), self.config)?;
        let grants: BTreeSet<Grant> = self.grants.into_iter().collect();
        let table = |grant: Grant, present: bool, needed: Option<&str>| {
            grant_table(&field, &grants, grant, present, needed)
        };
        table(Grant::Claude, self.claude.is_some(), None)?;
        table(Grant::Notify, self.notify.is_some(), None)?;
        table(Grant::Attachments, self.attachments.is_some(), None)?;
        table(Grant::Later, self.later.is_some(), None)?;
        if grants.contains(&Grant::Later) && self.world != World::Task {
            return Err(format!(
                "{field}.grants: `later` wakes a task plugin's `run`, and this is a {} plugin",
                self.world
            ));
        }
        table(Grant::Http, self.http.is_some(), Some("the `allowed` origins"))?;
        table(
            Grant::Process,
            self.process.is_some(),
            Some("the `programs` it may run"),
        )?;
        let claude = match self.claude {
            Some(grant) => grant.validate(&format!("{field}.claude"), base)?,
            None => ClaudeGrant::default(),
        };
        let button_expiry = self
            .notify
            .as_ref()
            .and_then(|n| n.button_expiry)
            .map_or(DEFAULT_BUTTON_EXPIRY, |e| e.0);
        let notify_chats = self
            .notify
            .map(|n| n.chats.into_iter().collect())
            .unwrap_or_default();
        let http = match self.http {
            Some(http) => Some(Arc::new(http.validate(&format!("{field}.http"))?)),
            None => None,
        };
        let process = match self.process {
            Some(process) => Some(Arc::new(process.validate(
                &format!("{field}.process"),
                base,
                data_dir,
            )?)),
            None => None,
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let files = match self.files {
            Some(files) => Some(Arc::new(files.validate(
                &format!("{field}.files"),
                base,
                home.as_deref(),
            )?)),
            None => None,
        };
        let limits = RawLimits {
            timeout: self.timeout,
            memory: self.memory,
            output: self.output,
            state_bytes: self.state_bytes,
            state_keys: self.state_keys,
        };
        if name.as_str() == super::claude::HOST_TOOLS {
            return Err(format!(
                "{field}: `{name}` names the host's own tools (tools_from = [\"{name}\"]); give the plugin another name"
            ));
        }
        if self.world == World::Tools && (name.as_str().contains("__") || name.as_str().ends_with('_')) {
            return Err(format!(
                "{field}: a tools plugin's name may not hold `__` or end in `_`: Claude sees its tools \
                 as mcp__PLUGIN__TOOL, where `{name}` could not be told from another plugin's"
            ));
        }
        if self.record_contents && self.world != World::Tools {
            return Err(format!(
                "{field}.record_contents: only a tools plugin's calls are recorded (this is a {} plugin)",
                self.world
            ));
        }
        let after = RawAfter::links(self.after, &format!("{field}.after"))?;
        if !after.is_empty() && self.world != World::Task {
            return Err(format!(
                "{field}.after: a run's end starts a task plugin's `run`, and this is a {} plugin",
                self.world
            ));
        }
        let source = base.join(
            self.source
                .unwrap_or_else(|| Path::new("plugins").join(name.as_str())),
        );
        Ok(PluginConfig {
            source,
            name,
            world: self.world,
            wasm: base.join(self.wasm),
            grants,
            limits: limits.apply(defaults),
            values,
            history,
            claude,
            notify_chats,
            button_expiry,
            http,
            process,
            files,
            attachment_bytes: self
                .attachments
                .and_then(|a| a.max_bytes)
                .map_or(20 << 20, |b| b.0),
            later_pending: self
                .later
                .and_then(|l| l.max_pending)
                .unwrap_or(DEFAULT_LATER_PENDING),
            record_contents: self.record_contents,
            after,
        })
    }
}
