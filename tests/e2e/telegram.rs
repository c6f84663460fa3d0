//! The Telegram bot inside `mission up`, against the fake Bot API server:
//! allowlist, order within a chat, chats in parallel, splitting, history
//! across messages, restarts and `/reset`, a kill -9 mid-message, faults.

use std::time::Duration;

use serde_json::json;

use crate::bot_host::{up, BotHost, TOKEN_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, wait_for, PluginSpec, Setup};

const ANNA: u64 = 100;
const BEN: u64 = 200;
const STRANGER: u64 = 999;

/// Anna and Ben allowed, strangers told so, `chat_fixture` with history,
/// `extra` tables.
fn bot_setup(fake: &FakeTelegram, extra: &str) -> Setup {
    BotHost::on(fake)
        .users(&[ANNA, BEN])
        .telegram("stranger_reply = \"This is a private bot.\"")
        .tables(extra)
        .setup(vec![
            PluginSpec::chat("chat", guest("chat_fixture")).with("grants = [\"history\"]")
        ])
}

#[test]
fn allowed_users_are_answered_and_strangers_never_reach_the_plugin() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let mut host = up(&setup);
    fake.send_text(7, STRANGER, "let me in");
    assert_eq!(fake.wait_for_messages(7, 1), ["This is a private bot."]);
    host.wait_for_log_line(&["not on the allowlist"]);
    // In the same chat an allowed user is the first to reach the plugin.
    fake.send_text(7, ANNA, "hi");
    assert_eq!(fake.wait_for_messages(7, 2)[1], "hi (message 1)");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn one_chat_is_answered_in_order_while_chats_run_in_parallel() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(1, ANNA, "sleep 700");
    fake.send_text(1, ANNA, "a");
    fake.send_text(1, ANNA, "b");
    fake.send_text(2, BEN, "sleep 700");
    assert_eq!(
        fake.wait_for_messages(1, 3),
        ["slept 700 (message 1)", "a (message 2)", "b (message 3)"]
    );
    assert_eq!(fake.wait_for_messages(2, 1), ["slept 700 (message 1)"]);
    let calls = fake.calls();
    let first_reply_in_chat_1 = calls
        .iter()
        .find(|c| c.method == "sendMessage" && c.chat_id == 1)
        .unwrap()
        .at;
    let typing_in_chat_2 = calls
        .iter()
        .find(|c| c.method == "sendChatAction" && c.chat_id == 2)
        .unwrap()
        .at;
    assert!(
        typing_in_chat_2 < first_reply_in_chat_1,
        "chat 2 waited for chat 1: {calls:#?}"
    );
    drop(host);
}

#[test]
fn a_long_reply_is_split_under_telegrams_limit() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(3, ANNA, "long 9000");
    let messages = fake.wait_for_messages(3, 3);
    assert_eq!(
        messages.len(),
        3,
        "{:?}",
        messages.iter().map(String::len).collect::<Vec<_>>()
    );
    assert!(messages.iter().all(|m| m.chars().count() <= 4096));
    assert!(messages[2].ends_with("(message 1)"));
    assert_eq!(messages.concat().matches("word").count(), 1800);
    drop(host);
}

#[test]
fn history_survives_a_restart_and_reset_clears_it() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(4, ANNA, "one");
    fake.wait_for_messages(4, 1);
    host.signal("-TERM");
    assert!(host.wait().0);

    let host = up(&setup);
    fake.send_text(4, ANNA, "two");
    assert_eq!(fake.wait_for_messages(4, 2)[1], "two (message 2)");
    fake.send_text(4, ANNA, "/reset");
    fake.send_text(4, ANNA, "three");
    let messages = fake.wait_for_messages(4, 4);
    assert!(messages[2].starts_with("History cleared"), "{messages:?}");
    assert_eq!(messages[3], "three (message 1)");
    fake.send_text(4, ANNA, "/status");
    assert!(fake.wait_for_messages(4, 5)[4].starts_with("Mission Control up"));
    drop(host);
}

#[test]
fn history_older_than_its_ttl_is_forgotten() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "[history]\nttl = \"1s\"\n");
    let host = up(&setup);
    fake.send_text(5, ANNA, "first");
    fake.wait_for_messages(5, 1);
    std::thread::sleep(Duration::from_millis(1500)); // kept: the 1 s ttl must pass, and no event marks it
    fake.send_text(5, ANNA, "later");
    assert_eq!(fake.wait_for_messages(5, 2)[1], "later (message 1)");
    drop(host);
}

#[test]
fn a_message_in_flight_when_the_host_is_killed_is_answered_once_after_restart() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(6, ANNA, "sleep 3000");
    fake.wait_for_call("sendChatAction", 6); // the plugin is working on it
    host.signal("-KILL");
    host.wait();
    assert!(fake.messages(6).is_empty());

    let host = up(&setup);
    assert_eq!(fake.wait_for_messages(6, 1), ["slept 3000 (message 1)"]);
    fake.send_text(6, ANNA, "next");
    assert_eq!(
        fake.wait_for_messages(6, 2),
        ["slept 3000 (message 1)", "next (message 2)"]
    );
    assert!(fake.wait_all_confirmed(), "the bot never confirmed its updates");
    drop(host);
}

#[test]
fn telegram_faults_never_lose_a_reply() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.fail_next(
        "sendChatAction",
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    );
    fake.fail_next(
        "sendMessage",
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1",
               "parameters": {"retry_after": 1}}),
    );
    fake.send_text(8, ANNA, "sleep 700");
    assert_eq!(fake.wait_for_messages(8, 1), ["slept 700 (message 1)"]);
    // Both failures were served.
    let mut failed: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.failed)
        .map(|c| c.method)
        .collect();
    failed.sort();
    assert_eq!(failed, ["sendChatAction", "sendMessage"]);
    drop(host);
}

#[test]
fn a_trapping_plugin_gets_the_user_a_short_error_and_the_next_message_works() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(9, ANNA, "panic");
    fake.send_text(9, ANNA, "fine?");
    let messages = fake.wait_for_messages(9, 2);
    assert!(
        messages[0].starts_with("Sorry, I could not answer that: it crashed"),
        "{messages:?}"
    );
    assert_eq!(messages[1], "fine? (message 1)");
    drop(host);
}

#[test]
fn warm_and_fresh_instances_answer_the_same_and_a_trap_drops_the_warm_one() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    let texts = ["instance", "hello", "instance", "panic", "instance"];

    let host = up(&setup);
    for text in texts {
        fake.send_text(10, ANNA, text);
    }
    let fresh = fake.wait_for_messages(10, 5);
    host.signal("-TERM");
    assert!(host.wait().0);

    std::fs::write(
        setup.config_path(),
        config.replace("poll_timeout", "instance = \"warm\"\npoll_timeout"),
    )
    .unwrap();
    let host = up(&setup);
    for text in texts {
        fake.send_text(11, ANNA, text);
    }
    let warm = fake.wait_for_messages(11, 5);
    // The conversation is the same; only the instance differs.
    assert_eq!(fresh[1], "hello (message 2)");
    assert_eq!(warm[1], "hello (message 2)");
    assert_eq!(fresh[2], "call 1 of this instance (message 3)");
    assert_eq!(
        warm[2], "call 2 of this instance (message 3)",
        "the warm instance was not kept"
    );
    assert!(warm[3].starts_with("Sorry, I could not answer that: it crashed"));
    assert_eq!(
        warm[4], "call 1 of this instance (message 4)",
        "the trapped instance was kept"
    );
    drop(host);
}

#[test]
fn server_errors_on_polling_and_sending_are_retried() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    let bad_gateway = json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
    fake.fail_next("getUpdates", 502, bad_gateway.clone());
    fake.fail_next("sendMessage", 502, bad_gateway);
    fake.send_text(12, ANNA, "through the storm");
    assert_eq!(fake.wait_for_messages(12, 1), ["through the storm (message 1)"]);
    // Either can fail first: the poll in flight when the failures were
    // queued may be the one that brings the message.
    let mut failed: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.failed)
        .map(|c| c.method)
        .collect();
    failed.sort();
    assert_eq!(failed, ["getUpdates", "sendMessage"]);
    drop(host);
}

#[test]
fn check_warns_of_a_missing_token_variable_and_refuses_a_handler_of_the_wrong_world() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let output = setup.command(&["check"]).env_remove(TOKEN_ENV).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // A token not set here is a warning: the host runs without the bot.
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "warning: telegram.token_env: the environment variable `{TOKEN_ENV}` is not set: the bot would not start"
        )),
        "{stdout}"
    );

    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    let config = config.replace("world = \"chat\"", "world = \"task\"");
    std::fs::write(setup.config_path(), config).unwrap();
    let output = setup.command(&["check"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("telegram.handler: `chat` is a task plugin"),
        "{stderr}"
    );
}

#[test]
fn a_plain_reply_is_read_as_markdown_and_sent_as_telegram_html_with_a_plain_fallback() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    let config = config.replace(
        "poll_timeout = \"2s\"\n",
        "poll_timeout = \"2s\"\nmarkdown = true\n",
    );
    std::fs::write(setup.config_path(), config).unwrap();
    let host = up(&setup);
    fake.send_text(5, ANNA, "**bold** and `a < b`");
    fake.wait_for_messages(5, 1);
    let sent = fake.wait_for(|c| c.method == "sendMessage" && c.chat_id == 5);
    assert_eq!(sent.parse_mode.as_deref(), Some("HTML"));
    assert_eq!(
        sent.text.as_deref(),
        Some("<b>bold</b> and <code>a &lt; b</code> (message 1)")
    );
    // Telegram refusing the entities: the same words go as plain text.
    fake.fail_next(
        "sendMessage",
        400,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: unsupported start tag"}),
    );
    fake.send_text(5, ANNA, "*again*");
    assert_eq!(fake.wait_for_messages(5, 2)[1], "again (message 2)");
    drop(host);
}

#[test]
fn an_update_the_library_cannot_read_is_logged_by_its_kind_and_the_bot_goes_on() {
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let mut host = up(&setup);
    // A button press without `chat_instance`: teloxide cannot read it.
    fake.send_raw(json!({"callback_query": {"id": "cb1", "data": "x",
        "from": {"id": ANNA, "is_bot": false, "first_name": "Anna"}}}));
    let line = host.wait_for_log_line(&["could not read"]);
    assert!(
        line.contains("kind=\"callback_query\"") || line.contains("kind=callback_query"),
        "{line}"
    );
    fake.send_text(5, ANNA, "still here");
    assert_eq!(fake.wait_for_messages(5, 1)[0], "still here (message 1)");
    drop(host);
}

#[test]
fn a_chat_plugin_reads_its_message_s_files_only_with_the_attachments_grant() {
    for (grant, read) in [
        ("grants = [\"history\", \"attachments\"]", "read 12 bytes"),
        (
            "grants = [\"history\"]",
            "not read: denied: plugin `chat` has no `attachments` grant in its config",
        ),
    ] {
        let fake = FakeTelegram::start();
        let (_setup, host) =
            BotHost::on(&fake).up(vec![PluginSpec::chat("chat", guest("chat_fixture")).with(grant)]);
        fake.send_file(5, ANNA, "document", crate::fake_telegram::FakeFile::notes());
        assert_eq!(
            fake.wait_for_messages(5, 1)[0],
            format!("0 text/plain 12 bytes, {read} (message 1)")
        );
        drop(host);
    }
}

#[test]
fn a_reply_carries_files_as_a_document_and_a_photo_within_the_grant_and_the_working_directory() {
    let fake = FakeTelegram::start();
    let setup = BotHost::on(&fake)
        .claude_bare("workdir = \"claude-work\"")
        .setup(vec![PluginSpec::chat("chat", guest("chat_fixture"))
            .with("grants = [\"history\", \"attachments\"]")
            .with("[plugins.chat.attachments]\nmax_bytes = \"1KiB\"")]);
    let work = setup.dir.path().join("claude-work");
    std::fs::create_dir_all(work.join("out")).unwrap();
    std::fs::write(work.join("out/invoice.pdf"), b"%PDF-1.4 invoice").unwrap();
    std::fs::write(setup.dir.path().join("secret.txt"), b"host secret").unwrap();
    std::os::unix::fs::symlink(setup.dir.path().join("secret.txt"), work.join("sneaky.txt")).unwrap();
    let host = up(&setup);

    fake.send_text(5, ANNA, "attach 100");
    assert_eq!(
        fake.wait_for_messages(5, 1),
        ["attached report.csv and chart.png (message 1)"]
    );
    let sent = fake.wait_for(|c| c.method == "sendPhoto");
    let document = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "sendDocument")
        .expect("the CSV went as a document");
    let (name, bytes) = document.file.clone().unwrap();
    assert_eq!((name.as_str(), bytes.len()), ("report.csv", 100));
    assert!(bytes.starts_with(b"date,amount\n"));
    assert_eq!(
        sent.file.as_ref().unwrap().0,
        "chart.png",
        "an image goes as a photo"
    );
    assert!(
        document.at < sent.at,
        "files go in the order attached, after the text"
    );
    let outbox = setup.dir.path().join("data/outbox");
    wait_for(
        "the kept copies removed once sent",
        Duration::from_secs(10),
        || {
            let kept: Vec<_> = outbox.read_dir().unwrap().map(|e| e.unwrap().path()).collect();
            if kept.is_empty() {
                Ok(())
            } else {
                Err(kept)
            }
        },
    );

    fake.send_text(5, ANNA, "attach 2000");
    fake.send_text(5, ANNA, "attach-written out/invoice.pdf");
    fake.send_text(5, ANNA, "attach-written ../secret.txt");
    fake.send_text(5, ANNA, "attach-written sneaky.txt");
    let replies = fake.wait_for_messages(5, 5);
    assert!(
        replies[1].starts_with("not attached: over budget: `report.csv` has 2000 bytes"),
        "past the grant's max_bytes: {replies:?}"
    );
    assert_eq!(replies[2], "attached out/invoice.pdf (message 3)");
    assert!(
        replies[3].starts_with("not attached: denied: `../secret.txt`"),
        "{replies:?}"
    );
    assert!(
        replies[4].starts_with("not attached: denied: `sneaky.txt`: it leads outside"),
        "{replies:?}"
    );
    let documents: Vec<_> = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendDocument")
        .filter_map(|c| c.file)
        .collect();
    assert_eq!(documents.len(), 2, "only the invoice went besides the first CSV");
    assert_eq!(
        documents[1],
        ("invoice.pdf".to_owned(), b"%PDF-1.4 invoice".to_vec())
    );
    drop(host);

    // Without the grant nothing is attached.
    let fake = FakeTelegram::start();
    let setup = bot_setup(&fake, "");
    let host = up(&setup);
    fake.send_text(5, ANNA, "attach 10");
    assert_eq!(
        fake.wait_for_messages(5, 1),
        ["not attached: denied: plugin `chat` has no `attachments` grant in its config (message 1)"]
    );
    assert!(!fake.calls().iter().any(|c| c.method == "sendDocument"));
    drop(host);
}
