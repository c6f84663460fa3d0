//! A bot host: `mission up` with a `[telegram]` table on a `FakeTelegram`
//! (and, when asked, a `[claude]` table on the fake `claude` CLI), the token
//! in its environment. Every Telegram and Claude test writes its config and
//! starts its host through here.

use std::process::Command;

use crate::fake_anthropic::{FakeAnthropic, API_KEY, KEY_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{fake_claude, guest, PluginSpec, RunningHost, Setup};

/// The variable `[telegram].token_env` names; [`up_command`] sets it.
pub const TOKEN_ENV: &str = "MISSION_TEST_TELEGRAM_TOKEN";
/// The bot token the host is given (the fake Bot API accepts any).
pub const TOKEN: &str = "123:test-token";
/// The user [`BotHost::on`] allows unless told otherwise.
pub const ANNA: u64 = 100;

/// The tables of a bot host's `mission.toml`, built up, then written into a
/// [`Setup`] (`write`, `setup`) or written and started (`up`).
#[derive(Clone, Debug)]
pub struct BotHost {
    api_url: Option<String>,
    allowed_users: Vec<u64>,
    handler: String,
    poll_timeout: Option<String>,
    telegram: String,
    claude: Option<String>,
    tables: String,
}

impl BotHost {
    /// `[telegram]` on `fake`: [`ANNA`] allowed, `chat` the handler, a 2 s
    /// poll timeout; no `[claude]`.
    pub fn on(fake: &FakeTelegram) -> BotHost {
        BotHost {
            api_url: Some(fake.url.clone()),
            poll_timeout: Some("2s".into()),
            ..BotHost::offline()
        }
    }

    /// `[telegram]` with no `api_url` and no `poll_timeout` (the real Bot
    /// API's defaults), for configs that are checked or never reach a bot.
    pub fn offline() -> BotHost {
        BotHost {
            api_url: None,
            allowed_users: vec![ANNA],
            handler: "chat".into(),
            poll_timeout: None,
            telegram: String::new(),
            claude: None,
            tables: String::new(),
        }
    }

    /// `allowed_users`.
    pub fn users(mut self, users: &[u64]) -> BotHost {
        self.allowed_users = users.to_vec();
        self
    }

    /// The `handler` plugin.
    pub fn handler(mut self, handler: &str) -> BotHost {
        self.handler = handler.into();
        self
    }

    /// `poll_timeout`.
    pub fn poll_timeout(mut self, timeout: &str) -> BotHost {
        self.poll_timeout = Some(timeout.into());
        self
    }

    /// More lines in `[telegram]` (and its sub-tables, such as
    /// `[telegram.transcribe]`).
    pub fn telegram(mut self, lines: &str) -> BotHost {
        self.telegram.push_str(lines);
        self.telegram.push('\n');
        self
    }

    /// `[claude]` on the fake CLI, working in `claude-work/` with `HOME`,
    /// plus `lines` (more keys, or `[claude.*]` tables).
    pub fn claude(self, lines: &str) -> BotHost {
        self.claude_bare(&format!("workdir = \"claude-work\"\nenv = [\"HOME\"]\n{lines}"))
    }

    /// `[claude]` on the fake CLI with only `lines` after its `command`.
    pub fn claude_bare(mut self, lines: &str) -> BotHost {
        self.claude = Some(format!("command = {:?}\n{lines}", fake_claude()));
        self
    }

    /// Other tables (`[alerts]`, `[web]`, `[history]`, ...), written first.
    pub fn tables(mut self, lines: &str) -> BotHost {
        self.tables.push_str(lines);
        self.tables.push('\n');
        self
    }

    /// The config's tables, as `Setup::config_with` takes them.
    pub fn toml(&self) -> String {
        let mut toml = self.tables.clone();
        if let Some(claude) = &self.claude {
            toml.push_str(&format!("[claude]\n{claude}\n"));
        }
        let users: Vec<String> = self.allowed_users.iter().map(u64::to_string).collect();
        toml.push_str(&format!(
            "[telegram]\ntoken_env = \"{TOKEN_ENV}\"\nallowed_users = [{}]\nhandler = \"{}\"\n",
            users.join(", "),
            self.handler
        ));
        if let Some(url) = &self.api_url {
            toml.push_str(&format!("api_url = \"{url}\"\n"));
        }
        if let Some(timeout) = &self.poll_timeout {
            toml.push_str(&format!("poll_timeout = \"{timeout}\"\n"));
        }
        toml.push_str(&self.telegram);
        toml
    }

    /// Writes the config, with `plugins`, into `setup`.
    pub fn write(&self, setup: &Setup, plugins: Vec<PluginSpec>) {
        setup.config_with(&self.toml(), plugins);
    }

    /// A new [`Setup`] with the config and `plugins`.
    pub fn setup(&self, plugins: Vec<PluginSpec>) -> Setup {
        let setup = Setup::new();
        self.write(&setup, plugins);
        setup
    }

    /// A new [`Setup`] with the config and `plugins`, and [`up`] on it.
    pub fn up(&self, plugins: Vec<PluginSpec>) -> (Setup, RunningHost) {
        let setup = self.setup(plugins);
        let host = up(&setup);
        (setup, host)
    }
}

/// `mission up` on `setup` with the bot token in its environment (add more
/// variables, then start it with [`polling`] or `RunningHost::spawn`).
pub fn up_command(setup: &Setup) -> Command {
    let mut command = setup.command(&["up"]);
    command.env(TOKEN_ENV, TOKEN);
    command
}

/// Starts `command` (an [`up_command`]) and returns once its bot polls.
pub fn polling(command: Command) -> RunningHost {
    let mut host = RunningHost::spawn(command);
    host.wait_for_log("telegram bot polling");
    host
}

/// `mission up` on `setup`, once its bot polls.
pub fn up(setup: &Setup) -> RunningHost {
    polling(up_command(setup))
}

/// The `assistant` chat plugin with the claude and history grants, `config`
/// as its config table and `grant` lines for its `[plugins.assistant.claude]`.
pub fn assistant(config: &str, grant: &str) -> PluginSpec {
    PluginSpec::chat("assistant", guest("assistant"))
        .with("grants = [\"claude\", \"history\"]")
        .with(&format!("config = {{ {config} }}"))
        .with(&format!("[plugins.assistant.claude]\n{grant}"))
}

/// A bot host on `telegram` whose handler is the assistant, on the fake CLI
/// (add tables, then `up` it with the assistant).
pub fn claude_bot(telegram: &FakeTelegram) -> BotHost {
    BotHost::on(telegram).handler("assistant").claude("")
}

/// `mission up` with the assistant over the fake Bot API through `backends`.
pub fn chat_host(telegram: &FakeTelegram, backends: &str) -> (Setup, RunningHost) {
    chat_host_with(telegram, assistant("", &format!("backends = [{backends}]")))
}

/// `mission up` with `handler` (the assistant) over the fake Bot API.
pub fn chat_host_with(telegram: &FakeTelegram, handler: PluginSpec) -> (Setup, RunningHost) {
    claude_bot(telegram).up(vec![handler])
}

/// `mission up` with the assistant on the api backend (the fake Messages
/// API, `more_api` lines in `[claude.api]`) over the fake Bot API
/// (`more_telegram` lines in `[telegram]`).
pub fn api_chat_host(
    api: &FakeAnthropic,
    telegram: &FakeTelegram,
    more_api: &str,
    more_telegram: &str,
) -> (Setup, RunningHost) {
    let setup = BotHost::on(telegram)
        .handler("assistant")
        .claude(&format!(
            "backend = \"api\"\nmodel = \"claude-sonnet-4-5\"\n[claude.api]\nurl = \"{}\"\nkey_env = \"{KEY_ENV}\"\n{more_api}\n\
             [claude.prices.claude-sonnet-4-5]\ninput = 3.0\noutput = 15.0\ncache_write = 3.75\ncache_read = 0.30",
            api.url
        ))
        .telegram(more_telegram)
        .setup(vec![assistant("", "backends = [\"api\"]")]);
    let mut command = up_command(&setup);
    command.env(KEY_ENV, API_KEY);
    let host = polling(command);
    (setup, host)
}
