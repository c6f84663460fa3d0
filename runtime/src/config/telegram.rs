//! `[telegram]`: the bot's token variable, API, allowlist, handler, shadow
//! handlers and how long a tool-use approval may wait; and `[history]`.
//!
//! ```toml
//! [telegram]
//! token_env = "TELEGRAM_BOT_TOKEN"   # the variable holding the token; never the token itself
//! api_url = "https://api.telegram.org"  # the default; point it at a local server to test
//! allowed_users = [123456789, 987654321] # Telegram user ids; anyone else never reaches a plugin
//! handler = "echo"                   # the chat plugin that answers
//! stranger_reply = "This is a private bot."  # optional
//! instance = "fresh"                 # or "warm": one instance per chat, kept between messages
//! warm_idle = "15m"                  # a warm instance idle this long is dropped
//! poll_timeout = "10s"
//! approval_timeout = "2m"            # no press on a tool-use prompt within this is a deny
//! shadow = ["assistant-api"]         # optional: candidate handlers run beside `handler`
//! markdown = true                    # a plain reply is Markdown, sent as Telegram HTML (default: if the handler asks Claude)
//! streaming = true                   # show Claude's text while it is written (the default)
//! stream_every = "1s"                # how often the shown text changes (groups: 3 s at least)
//!
//! [telegram.transcribe]              # voice notes and audio to text: a program that prints it
//! command = ["/usr/local/bin/transcribe-voice", "--lang", "en"]  # the file's path is added last
//! env = ["PATH", "HOME"]             # all of the host's environment it gets
//! timeout = "2m"
//! # or, instead of `command`, an OpenAI-compatible endpoint:
//! # url = "https://api.openai.com/v1/audio/transcriptions"
//! # model = "whisper-1"
//! # key_env = "OPENAI_API_KEY"       # the variable holding its key, sent as a Bearer token
//!
//! [history]                          # what `history.read` gives any plugin
//! ttl = "4h"
//! max_exchanges = 15
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::process::ProcessGrant;
use super::units::HumanDuration;
use super::{Grant, PluginConfig, PluginName, World};

/// How long a tool-use approval waits unless `approval_timeout` says.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(120);

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
    /// Chat plugins that get every allowed message too, after the handler;
    /// their replies are recorded, never sent.
    pub shadow: Vec<PluginName>,
    /// How long a tool-use approval waits for a press before it is a deny.
    pub approval_timeout: Duration,
    /// What a user not on the allowlist is told; none says nothing.
    pub stranger_reply: Option<String>,
    /// How long one `getUpdates` long poll waits.
    pub poll_timeout: Duration,
    /// A fresh instance per message, or one kept per chat.
    pub instance: InstanceMode,
    /// How long a kept instance may sit idle before it is dropped.
    pub warm_idle: Duration,
    /// Whether a reply without a parse mode is read as Markdown (Claude's)
    /// and sent as Telegram HTML.
    pub markdown: bool,
    /// What turns a voice note or audio into text, if anything.
    pub transcribe: Option<Transcriber>,
    /// How often Claude's text is shown anew while it is written (for a
    /// plugin that streams); none shows only the reply.
    pub stream_every: Option<Duration>,
}

/// The least time between two updates of the text shown in a group
/// (Telegram allows a group about 20 messages a minute).
pub const GROUP_STREAM_EVERY: Duration = Duration::from_secs(3);

/// `[telegram.transcribe]`: what turns a voice note or audio into text.
#[derive(Debug, Clone, PartialEq)]
pub enum Transcriber {
    /// A program given the audio file's path as its last argument, which
    /// prints the text.
    Program(TranscribeProgram),
    /// An OpenAI-compatible `/v1/audio/transcriptions` endpoint.
    Endpoint(TranscribeEndpoint),
}

/// A transcribing program (`command = [...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeProgram {
    /// The program.
    pub program: PathBuf,
    /// Its arguments before the file's path.
    pub args: Vec<String>,
    /// How it runs: the environment it gets, where, for how long, how much
    /// output is kept (the process capability's machinery and limits).
    pub limits: ProcessGrant,
}

/// A transcription endpoint (`url = "..."`), sent the file as multipart
/// form data, answering `{"text": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscribeEndpoint {
    /// Where the file is posted.
    pub url: url::Url,
    /// The `model` form field.
    pub model: String,
    /// The environment variable holding the key, if the endpoint takes one.
    pub key_env: Option<String>,
    /// How long one transcription may take.
    pub timeout: Duration,
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

/// `[telegram]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelegram {
    /// Example: `token_env = "TELEGRAM_BOT_TOKEN"`; the token itself never
    /// goes in the file.
    token_env: String,
    /// Example: `api_url = "http://127.0.0.1:8081"` (default Telegram's)
    api_url: Option<String>,
    /// Example: `allowed_users = [408258968]`
    allowed_users: Vec<u64>,
    /// Example: `handler = "echo"`
    handler: String,
    /// Example: `shadow = ["assistant-api"]`
    #[serde(default)]
    shadow: Vec<String>,
    /// Example: `approval_timeout = "2m"` (the default)
    approval_timeout: Option<HumanDuration>,
    /// Example: `stranger_reply = "This is a private bot."`
    stranger_reply: Option<String>,
    /// Example: `poll_timeout = "10s"` (the default; teloxide gives up after 17s)
    poll_timeout: Option<HumanDuration>,
    /// Example: `instance = "warm"` (default `"fresh"`)
    #[serde(default)]
    instance: InstanceMode,
    /// Example: `warm_idle = "15m"` (the default)
    warm_idle: Option<HumanDuration>,
    /// Example: `markdown = false` (default true when the handler has the
    /// `claude` grant, since Claude writes Markdown; else false, and such
    /// replies go as plain text)
    markdown: Option<bool>,
    /// Example: `[telegram.transcribe]`
    transcribe: Option<RawTranscribe>,
    /// Example: `streaming = false` (default true: a plugin that streams
    /// has Claude's text shown while it is written)
    streaming: Option<bool>,
    /// Example: `stream_every = "1s"` (the default; at least 250 ms)
    stream_every: Option<HumanDuration>,
}

/// `[telegram.transcribe]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTranscribe {
    /// Example: `command = ["/usr/local/bin/transcribe-voice", "--lang", "en"]`
    command: Option<Vec<String>>,
    /// Example: `env = ["PATH", "HOME"]` (default: none; with `command`)
    env: Option<Vec<String>>,
    /// Example: `url = "https://api.openai.com/v1/audio/transcriptions"`
    /// (instead of `command`)
    url: Option<String>,
    /// Example: `model = "whisper-1"` (the default; with `url`)
    model: Option<String>,
    /// Example: `key_env = "OPENAI_API_KEY"` (with `url`; default: no key)
    key_env: Option<String>,
    /// Example: `timeout = "2m"` (the default)
    timeout: Option<HumanDuration>,
}

impl RawTelegram {
    /// `[telegram]` validated: its handler and shadows must be chat plugins
    /// among `plugins`, each named once.
    pub(super) fn validate(
        self,
        plugins: &[PluginConfig],
        base: &Path,
        data_dir: &Path,
    ) -> Result<TelegramConfig, String> {
        let chat_plugin = |field: &str, name: &str| {
            let plugin = plugins
                .iter()
                .find(|p| p.name.as_str() == name)
                .ok_or_else(|| format!("{field}: no plugin named `{name}`"))?;
            if plugin.world != World::Chat {
                return Err(format!(
                    "{field}: `{}` is a {} plugin; the bot needs a chat plugin",
                    plugin.name, plugin.world
                ));
            }
            Ok(plugin.name.clone())
        };
        let handler = chat_plugin("telegram.handler", &self.handler)?;
        let handler_asks_claude = plugins
            .iter()
            .any(|p| p.name == handler && p.grants.contains(&Grant::Claude));
        let mut shadow = Vec::new();
        for name in &self.shadow {
            let name = chat_plugin("telegram.shadow", name)?;
            if name == handler || shadow.contains(&name) {
                return Err(format!(
                    "telegram.shadow: `{name}` is named twice (the handler cannot shadow itself)"
                ));
            }
            shadow.push(name);
        }
        let approval_timeout = self.approval_timeout.map_or(DEFAULT_APPROVAL_TIMEOUT, |t| t.0);
        if approval_timeout.is_zero() {
            return Err("telegram.approval_timeout: must be more than zero".into());
        }
        let stream_every = self.stream_every.map_or(Duration::from_secs(1), |t| t.0);
        if stream_every < Duration::from_millis(250) {
            return Err(
                "telegram.stream_every: must be at least 250ms (Telegram limits edits to about one a second)"
                    .into(),
            );
        }
        Ok(TelegramConfig {
            stream_every: self.streaming.unwrap_or(true).then_some(stream_every),
            token_env: self.token_env,
            api_url: self
                .api_url
                .unwrap_or_else(|| "https://api.telegram.org".to_owned()),
            allowed_users: self.allowed_users.into_iter().collect(),
            handler,
            shadow,
            approval_timeout,
            stranger_reply: self.stranger_reply,
            poll_timeout: self.poll_timeout.map_or(Duration::from_secs(10), |t| t.0),
            instance: self.instance,
            warm_idle: self.warm_idle.map_or(Duration::from_secs(15 * 60), |t| t.0),
            markdown: self.markdown.unwrap_or(handler_asks_claude),
            transcribe: self.transcribe.map(|t| t.validate(base, data_dir)).transpose()?,
        })
    }
}

impl RawTranscribe {
    fn validate(self, base: &Path, data_dir: &Path) -> Result<Transcriber, String> {
        let timeout = self.timeout.map_or(Duration::from_secs(120), |t| t.0);
        if timeout.is_zero() {
            return Err("telegram.transcribe.timeout: must be more than zero".into());
        }
        match (self.command, self.url) {
            (Some(_), Some(_)) | (None, None) => {
                Err("telegram.transcribe: give either `command` (a program) or `url` (an endpoint)".into())
            }
            (Some(command), None) => {
                if self.model.is_some() || self.key_env.is_some() {
                    return Err(
                        "telegram.transcribe: `model` and `key_env` go with `url`, not `command`".into(),
                    );
                }
                let mut command = command.into_iter();
                let program = command
                    .next()
                    .filter(|p| !p.trim().is_empty())
                    .ok_or("telegram.transcribe.command: name the program, then its arguments")?;
                let program = base.join(program);
                Ok(Transcriber::Program(TranscribeProgram {
                    args: command.collect(),
                    limits: ProcessGrant {
                        programs: vec![program.clone()],
                        env: self.env.unwrap_or_default(),
                        set_env: BTreeMap::new(),
                        workdir: data_dir.join("transcribe"),
                        timeout,
                        max_output: 256 << 10,
                    },
                    program,
                }))
            }
            (None, Some(url)) => {
                if self.env.is_some() {
                    return Err("telegram.transcribe: `env` goes with `command`, not `url`".into());
                }
                let url = url::Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| format!("telegram.transcribe.url: `{url}` is not an http or https URL"))?;
                if let Some(key_env) = &self.key_env {
                    if key_env.trim().is_empty() || key_env.contains('=') {
                        return Err(format!(
                            "telegram.transcribe.key_env: `{key_env}` is not a variable's name"
                        ));
                    }
                }
                Ok(Transcriber::Endpoint(TranscribeEndpoint {
                    url,
                    model: self.model.unwrap_or_else(|| "whisper-1".to_owned()),
                    key_env: self.key_env,
                    timeout,
                }))
            }
        }
    }
}
