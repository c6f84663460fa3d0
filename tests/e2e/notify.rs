//! The `notify` capability: a task plugin (the `briefing` example) sends
//! its summary to a Telegram chat through the host's Bot API client, only
//! to the chats its grant lists, against the fake Bot API server.

use serde_json::json;

use crate::bot_host::{BotHost, TOKEN, TOKEN_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, PluginSpec, Setup};

/// The briefing plugin sending to `chat`, with `grants` and `[notify]` lines.
fn setup(fake: &FakeTelegram, chat: i64, grants: &str, notify: &str) -> Setup {
    BotHost::on(fake).users(&[1]).handler("echo").setup(vec![
        PluginSpec::task("briefing", guest("briefing"))
            .with(&format!("grants = {grants}"))
            .with(&format!("config = {{ chat = \"{chat}\" }}"))
            .with(notify),
        PluginSpec::chat("echo", guest("echo_chat")),
    ])
}

/// `mission run --json briefing` with the token in the environment (or not).
fn run(setup: &Setup, with_token: bool) -> serde_json::Value {
    let mut command = setup.command(&["run", "--json", "briefing"]);
    if with_token {
        command.env(TOKEN_ENV, TOKEN);
    }
    let output = command.output().unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
}

#[test]
fn a_task_sends_to_a_granted_chat_and_nowhere_else() {
    let fake = FakeTelegram::start();
    let granted = "[plugins.briefing.notify]\nchats = [42]";
    let setup = setup(&fake, 42, "[\"state\", \"notify\"]", granted);
    let record = run(&setup, true);
    assert_eq!(record["outcome"], "succeeded", "{record}");
    assert_eq!(
        fake.wait_for_messages(42, 1),
        ["Good morning, team! Briefing #1 from `briefing`."]
    );
    // A chat the grant does not list.
    let setup_43 = self::setup(&fake, 43, "[\"state\", \"notify\"]", granted);
    let record = run(&setup_43, true);
    assert_eq!(
        record["error"],
        "the plugin returned an error: cannot send the briefing to chat 43: \
         denied: chat 43 is not in plugins.briefing.notify.chats"
    );
    // No `notify` grant at all.
    let ungranted = self::setup(&fake, 42, "[\"state\"]", "");
    let record = run(&ungranted, true);
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("has no `notify` grant"),
        "{record}"
    );
    assert!(fake.messages(43).is_empty());
    assert_eq!(fake.messages(42).len(), 1);
}

#[test]
fn without_a_token_notify_is_unavailable_and_a_refusal_is_a_failure() {
    let fake = FakeTelegram::start();
    let setup = setup(
        &fake,
        42,
        "[\"state\", \"notify\"]",
        "[plugins.briefing.notify]\nchats = [42]",
    );
    let record = run(&setup, false);
    assert!(
        record["error"].as_str().unwrap().contains(
            "unavailable: no Telegram bot: [telegram] is not configured or its token variable is not set"
        ),
        "{record}"
    );
    fake.fail_next(
        "sendMessage",
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    );
    let record = run(&setup, true);
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("failed: Telegram did not take the message:") && error.contains("chat not found"),
        "{record}"
    );
}

#[test]
fn a_notify_table_without_the_grant_is_a_config_error() {
    let fake = FakeTelegram::start();
    let setup = setup(
        &fake,
        42,
        "[\"state\"]",
        "[plugins.briefing.notify]\nchats = [42]",
    );
    let output = setup.mission(&["check"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugins.briefing.notify: the plugin has no `notify` grant"),
        "{stderr}"
    );
}
