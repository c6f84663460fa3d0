//! Claude's tool use approved from Telegram: the fake `claude` (persistent
//! backend, `--permission-prompt-tool=stdio`) asks before running `Bash`,
//! the host posts a prompt with inline buttons in the chat, and a press on
//! the fake Bot API decides: allow once, allow for the conversation, deny;
//! a stranger's press, no answer, a restart while waiting. The command is
//! real (`sh -c` in Claude's working directory), so a file it creates shows
//! whether it ran.

use std::path::PathBuf;

use serde_json::Value;

use crate::bot_host::{up, BotHost};
use crate::fake_telegram::FakeTelegram;
use crate::support::{fake_claude, guest, text, PluginSpec, Setup};

const ANNA: u64 = 100;
const BEN: u64 = 200;
const STRANGER: u64 = 999;
const CHAT: i64 = 100;

/// The assistant on the persistent backend with `Bash` to ask about, over
/// the fake Bot API; approvals wait `wait`.
fn approval_setup(telegram: &FakeTelegram, wait: &str) -> Setup {
    approval_setup_with(telegram, wait, "", "")
}

/// [`approval_setup`] with more lines in `[claude]` and (`limits`) in the
/// plugin's table.
fn approval_setup_with(telegram: &FakeTelegram, wait: &str, claude: &str, limits: &str) -> Setup {
    approval_bot(telegram, wait, claude)
        .users(&[ANNA, BEN])
        .setup(vec![PluginSpec::chat("assistant", guest("assistant"))
            .with("grants = [\"claude\", \"history\"]")
            .with("config = { tools = \"Bash\" }")
            .with(limits)
            .with(
                "[plugins.assistant.claude]\nbackends = [\"persistent\"]\nask_tools = [\"Bash\"]",
            )])
}

/// The assistant's bot on `telegram`, approvals waiting `wait`, and
/// `[claude]` on the fake CLI with `HOME` and `PATH` (for `sh`) plus `claude`.
fn approval_bot(telegram: &FakeTelegram, wait: &str, claude: &str) -> BotHost {
    BotHost::on(telegram)
        .handler("assistant")
        .telegram(&format!("approval_timeout = \"{wait}\""))
        .claude_bare(&format!(
            "workdir = \"claude-work\"\nenv = [\"HOME\", \"PATH\"]\n{claude}"
        ))
}

/// A file in Claude's working directory, where the tool's command runs.
fn made(setup: &Setup, name: &str) -> PathBuf {
    setup.dir.path().join("claude-work").join(name)
}

/// Every approval as `mission approvals --json` lists it, oldest first.
fn approvals(setup: &Setup) -> Vec<Value> {
    let output = setup.mission(&["approvals", "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let mut list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    list.reverse();
    list
}

/// The texts the prompt `message` was edited to.
fn edits(telegram: &FakeTelegram, message: i64) -> Vec<String> {
    telegram
        .calls()
        .into_iter()
        .filter(|c| c.method == "editMessageText" && c.message_id == Some(message))
        .filter_map(|c| c.text)
        .collect()
}

/// The press answers (`answerCallbackQuery`) so far: their texts.
fn press_answers(telegram: &FakeTelegram) -> Vec<String> {
    telegram
        .calls()
        .into_iter()
        .filter(|c| c.method == "answerCallbackQuery")
        .filter_map(|c| c.text)
        .collect()
}

#[test]
fn allow_once_runs_the_tool_the_next_use_asks_again_and_deny_keeps_it_from_running() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "30s");
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "please #bash:touch once.txt && echo made-once");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    let shown = prompt.text.clone().unwrap();
    assert!(
        shown.contains("Claude (assistant) wants to use Bash:\ntouch once.txt && echo made-once"),
        "{shown}"
    );
    assert!(shown.contains("No answer within 30s is a deny."), "{shown}");
    let labels: Vec<&str> = prompt.buttons.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Allow once", "Allow for this conversation", "Deny"]);
    assert!(
        !made(&setup, "once.txt").exists(),
        "the tool ran before anyone allowed it"
    );
    // While the prompt waits for the user, the bot does not say it is typing
    // (it would say so every 4 s).
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let typing_since = telegram
        .calls()
        .iter()
        .filter(|c| c.method == "sendChatAction" && c.at > prompt.at + std::time::Duration::from_millis(200))
        .count();
    assert_eq!(typing_since, 0, "typing… shown while waiting for the user");

    telegram.press(
        CHAT,
        ANNA,
        prompt.message_id.unwrap(),
        &prompt.button("Allow once"),
    );
    let replies = telegram.wait_for_messages(CHAT, 1);
    assert_eq!(replies[0], "fake claude ran Bash: made-once");
    assert!(made(&setup, "once.txt").exists());
    assert_eq!(
        edits(&telegram, prompt.message_id.unwrap()),
        ["✅ Allowed once by User100: Bash — touch once.txt && echo made-once"]
    );
    assert_eq!(press_answers(&telegram), ["✅ Allowed once by User100"]);

    // Once was once: the next use asks again, and this time it is denied.
    telegram.send_text(CHAT, ANNA, "and #bash:touch denied.txt");
    let second = telegram.wait_for_prompts(CHAT, 2).remove(1);
    telegram.press(CHAT, ANNA, second.message_id.unwrap(), &second.button("Deny"));
    let replies = telegram.wait_for_messages(CHAT, 2);
    assert_eq!(
        replies[1],
        "fake claude Bash denied: Denied from the chat by User100"
    );
    assert!(!made(&setup, "denied.txt").exists(), "a denied tool ran");
    assert_eq!(
        edits(&telegram, second.message_id.unwrap()),
        ["🚫 Denied by User100: Bash — touch denied.txt"]
    );

    let recorded = approvals(&setup);
    let outcomes: Vec<&str> = recorded.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["allowed_once", "denied"]);
    assert!(recorded
        .iter()
        .all(|a| a["decided_by"] == ANNA && a["decided_by_name"] == "User100"));
    assert_eq!(recorded[1]["summary"], "touch denied.txt");
    assert_eq!(recorded[1]["chat_id"], CHAT);
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn stop_while_a_prompt_waits_denies_the_tool_settles_the_prompt_and_ends_the_turn() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "60s");
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "please #bash:touch stopped.txt");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    telegram.send_text(CHAT, ANNA, "/stop");
    // Answered long before the prompt's 60 s: the turn ends stopped.
    let replies = telegram.wait_for_messages(CHAT, 2);
    assert_eq!(
        replies,
        [
            "⏹ Stopping Claude's answer. Messages you sent meanwhile are answered next.",
            "Claude could not answer: stopped by /stop in the chat"
        ]
    );
    assert!(!made(&setup, "stopped.txt").exists(), "a stopped tool ran");
    let message = prompt.message_id.unwrap();
    telegram.wait_for(|c| c.method == "editMessageText" && c.message_id == Some(message));
    assert_eq!(
        edits(&telegram, message),
        ["⏹ Bash: touch stopped.txt — stopped by /stop in the chat, so it was not allowed."]
    );
    let recorded = approvals(&setup);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["outcome"], "abandoned");
    assert_eq!(recorded[0]["reason"], "stopped by /stop in the chat");
    // A late press runs nothing; the chat goes on.
    telegram.press(CHAT, ANNA, message, &prompt.button("Allow once"));
    telegram.send_text(CHAT, ANNA, "still there?");
    assert!(
        telegram.wait_for_messages(CHAT, 3)[2].starts_with("fake claude heard \"still there?\""),
        "{:?}",
        telegram.wait_for_messages(CHAT, 3)
    );
    assert!(!made(&setup, "stopped.txt").exists(), "a late press ran the tool");
    drop(host);
}

#[test]
fn allow_for_the_conversation_asks_once_until_reset() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "30s");
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:echo first");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    telegram.press(
        CHAT,
        ANNA,
        prompt.message_id.unwrap(),
        &prompt.button("Allow for this conversation"),
    );
    assert_eq!(
        telegram.wait_for_messages(CHAT, 1)[0],
        "fake claude ran Bash: first"
    );
    telegram.send_text(CHAT, ANNA, "#bash:touch second.txt && echo second");
    assert_eq!(
        telegram.wait_for_messages(CHAT, 2)[1],
        "fake claude ran Bash: second"
    );
    assert!(made(&setup, "second.txt").exists());
    assert_eq!(telegram.wait_for_prompts(CHAT, 1).len(), 1, "no second prompt");
    // A reset forgets what was allowed.
    telegram.send_text(CHAT, ANNA, "/reset");
    telegram.send_text(CHAT, ANNA, "#bash:echo third");
    let prompts = telegram.wait_for_prompts(CHAT, 2);
    telegram.press(
        CHAT,
        ANNA,
        prompts[1].message_id.unwrap(),
        &prompts[1].button("Allow once"),
    );
    let replies = telegram.wait_for_messages(CHAT, 4);
    assert_eq!(replies[2], "History cleared: I start afresh.");
    assert_eq!(replies[3], "fake claude ran Bash: third");
    let outcomes: Vec<String> = approvals(&setup)
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        ["allowed_conversation", "allowed_earlier", "allowed_once"]
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_strangers_press_is_refused_and_no_answer_in_time_is_a_deny() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "3s");
    let mut host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:touch late.txt");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    let message = prompt.message_id.unwrap();
    let press = telegram.press(CHAT, STRANGER, message, &prompt.button("Allow once"));
    let answered = telegram.wait_for(|c| c.method == "answerCallbackQuery");
    assert_eq!(answered.callback_query_id.as_deref(), Some(press.as_str()));
    assert_eq!(
        answered.text.as_deref(),
        Some("You are not allowed to decide this.")
    );
    host.wait_for_log_line(&[
        "button press from a user not on the allowlist: refused",
        "sender=999",
    ]);
    // An allowed user, but the press comes from another chat than the prompt's.
    let elsewhere = telegram.press(BEN as i64, BEN, message, &prompt.button("Allow once"));
    let answered = telegram.wait_for(|c| c.callback_query_id.as_deref() == Some(elsewhere.as_str()));
    assert_eq!(
        answered.text.as_deref(),
        Some("You are not allowed to decide this.")
    );
    host.wait_for_log_line(&[
        "button press from another chat or message than the prompt's: refused",
        "sender=200",
    ]);
    // In the right chat, but its data put under another message.
    let forged = telegram.press(CHAT, ANNA, message + 1000, &prompt.button("Allow once"));
    let answered = telegram.wait_for(|c| c.callback_query_id.as_deref() == Some(forged.as_str()));
    assert_eq!(
        answered.text.as_deref(),
        Some("You are not allowed to decide this.")
    );
    let replies = telegram.wait_for_messages(CHAT, 1);
    assert_eq!(
        replies[0],
        "fake claude Bash denied: Denied: nobody answered within 3s in the chat"
    );
    assert!(
        !made(&setup, "late.txt").exists(),
        "the stranger's press let the tool run"
    );
    assert_eq!(
        edits(&telegram, message),
        ["⌛ Bash: touch late.txt — nobody answered within 3s, so it was not allowed."]
    );
    // A press after the fact decides nothing.
    telegram.press(CHAT, ANNA, message, &prompt.button("Allow once"));
    telegram.wait_for(|c| {
        c.method == "answerCallbackQuery"
            && c.text.as_deref() == Some("This request is no longer waiting for an answer.")
    });
    let recorded = approvals(&setup);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["outcome"], "timed_out");
    assert_eq!(recorded[0]["decided_by"], Value::Null);
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_restart_while_waiting_is_a_deny_the_user_is_told_of() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "30s");
    let mut host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:touch restarted.txt && echo after-restart");
    let first = telegram.wait_for_prompts(CHAT, 1).remove(0);
    host.wait_for_log("asked in the chat to allow a tool use");
    host.signal("-KILL");
    let _ = host.wait();
    let host = up(&setup);
    // The old prompt is settled and the user told; the message, never
    // answered, is handled again and asks again.
    let told = telegram.wait_for_messages(CHAT, 1);
    assert_eq!(
        told[0],
        "Mission Control restarted while waiting for an answer about Bash \
         (touch restarted.txt && echo after-restart): it did not run."
    );
    assert!(!made(&setup, "restarted.txt").exists());
    assert_eq!(
        edits(&telegram, first.message_id.unwrap()),
        ["⏹ Bash: touch restarted.txt && echo after-restart — not allowed: Mission Control restarted while waiting for an answer."]
    );
    let again = telegram.wait_for_prompts(CHAT, 2).remove(1);
    // The old prompt's buttons decide nothing now.
    telegram.press(CHAT, ANNA, first.message_id.unwrap(), &first.button("Allow once"));
    telegram.wait_for(|c| {
        c.method == "answerCallbackQuery"
            && c.text.as_deref() == Some("This request is no longer waiting for an answer.")
    });
    assert!(!made(&setup, "restarted.txt").exists());
    telegram.press(CHAT, ANNA, again.message_id.unwrap(), &again.button("Allow once"));
    assert_eq!(
        telegram.wait_for_messages(CHAT, 2)[1],
        "fake claude ran Bash: after-restart"
    );
    let outcomes: Vec<String> = approvals(&setup)
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["abandoned", "allowed_once"]);
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn stopping_the_host_while_waiting_denies_and_does_not_hang() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "2m");
    let mut host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:touch stopped.txt");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    host.wait_for_log("asked in the chat to allow a tool use");
    host.signal("-TERM");
    // The chat's message finishes without the tool, inside the shutdown grace.
    assert_eq!(
        telegram.wait_for_messages(CHAT, 1)[0],
        "fake claude Bash denied: Not allowed: Mission Control is stopping"
    );
    assert!(host.wait().0);
    assert_eq!(
        edits(&telegram, prompt.message_id.unwrap()),
        ["⏹ Not allowed: Mission Control is stopping."]
    );
    assert!(!made(&setup, "stopped.txt").exists());
    assert_eq!(approvals(&setup)[0]["outcome"], "abandoned");
}

#[test]
fn the_wait_for_a_person_counts_toward_the_plugins_deadline() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup_with(&telegram, "2m", "", "timeout = \"2s\"");
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:touch too-late.txt");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    // Nobody answers: the plugin's 2 s end the call, and the wait with it.
    let replies = telegram.wait_for_messages(CHAT, 1);
    assert_eq!(
        replies[0],
        "Sorry, I could not answer that: it took too long. Try again, or /reset."
    );
    let message = prompt.message_id.unwrap();
    telegram.wait_for(|c| c.method == "editMessageText" && c.message_id == Some(message));
    assert_eq!(
        edits(&telegram, message),
        ["⏹ Not allowed: the call ended before an answer."]
    );
    telegram.press(CHAT, ANNA, message, &prompt.button("Allow once"));
    telegram.wait_for(|c| c.method == "answerCallbackQuery");
    assert!(!made(&setup, "too-late.txt").exists());
    let recorded = approvals(&setup);
    assert_eq!(recorded[0]["outcome"], "abandoned");
    assert_eq!(recorded[0]["reason"], "the call ended before an answer");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn backends_that_cannot_ask_deny_and_check_warns() {
    let setup = Setup::new();
    setup.config_with(
        &format!(
            "[claude]\ncommand = {:?}\nworkdir = \"claude-work\"\ntimeout = \"1m\"\n",
            fake_claude()
        ),
        vec![PluginSpec::chat("assistant", guest("assistant"))
            .with("grants = [\"claude\"]")
            .with("config = { tools = \"Bash\", backend = \"cli\" }")
            .with("[plugins.assistant.claude]\nbackends = [\"cli\"]\nask_tools = [\"Bash\"]")],
    );
    let output = setup.mission(&["chat", "assistant", "#bash:touch never.txt"]);
    let (stdout, _) = text(&output);
    assert_eq!(
        stdout.trim(),
        "I'm not allowed to ask Claude: tool `Bash` needs a person's approval, which the `cli` backend \
         cannot ask for (only `persistent` can)."
    );
    assert!(!made(&setup, "never.txt").exists());
    let output = setup.mission(&["check"]);
    let (stdout, _) = text(&output);
    assert!(
        stdout.contains(
            "warning: plugins.assistant.claude.ask_tools: only the `persistent` backend can ask a person; \
             through `cli` these tools are always denied"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: plugins.assistant.claude.timeout (1m) is shorter than telegram.approval_timeout (2m): \
             the call can end before a person answers about Bash"
        ),
        "{stdout}"
    );
}

#[test]
fn a_prompt_telegram_refuses_is_a_deny_with_the_reason_recorded() {
    let telegram = FakeTelegram::start();
    let setup = approval_setup(&telegram, "30s");
    let host = up(&setup);
    telegram.fail_next(
        "sendMessage",
        400,
        serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
    );
    telegram.send_text(CHAT, ANNA, "#bash:touch unposted.txt");
    // Claude's reply is Markdown, shown as Telegram HTML: `Bash` as code.
    assert_eq!(
        telegram.wait_for_messages(CHAT, 1)[0],
        "fake claude Bash denied: Bash needs a person's approval, and the prompt could not be posted in the chat"
    );
    assert!(!made(&setup, "unposted.txt").exists());
    let recorded = approvals(&setup);
    assert_eq!(recorded[0]["outcome"], "abandoned");
    let reason = recorded[0]["reason"].as_str().unwrap();
    assert!(reason.contains("chat not found"), "{reason}");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_call_waiting_for_a_person_gives_up_its_place_in_line() {
    let telegram = FakeTelegram::start();
    // One Claude call at a time: Anna's waits for her answer, Ben's goes on.
    let setup = approval_setup_with(&telegram, "30s", "max_concurrent = 1", "");
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "#bash:echo at-last");
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    let ben = BEN as i64;
    telegram.send_text(ben, BEN, "meanwhile");
    assert_eq!(
        telegram.wait_for_messages(ben, 1),
        ["fake claude heard \"meanwhile\"; earlier: []"]
    );
    assert!(
        telegram.messages(CHAT).is_empty(),
        "Anna's call went on without her"
    );
    telegram.press(
        CHAT,
        ANNA,
        prompt.message_id.unwrap(),
        &prompt.button("Allow once"),
    );
    assert_eq!(
        telegram.wait_for_messages(CHAT, 1),
        ["fake claude ran Bash: at-last"]
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_task_s_tool_use_is_asked_in_the_alerts_chat_and_the_run_waits_for_it() {
    let telegram = FakeTelegram::start();
    let setup = approval_bot(&telegram, "1s", "")
        .users(&[ANNA])
        .tables(&format!("[alerts]\nchat = {CHAT}\napproval_wait = \"30s\""))
        .setup(vec![
            PluginSpec::chat("assistant", guest("assistant")).with("grants = [\"claude\", \"history\"]"),
            PluginSpec::task("report", guest("ask"))
                .with("grants = [\"claude\"]")
                .with("config = { prompt = \"#bash:echo ok > report.txt\", tools = \"Bash\", backend = \"persistent\" }")
                .with("timeout = \"60s\"")
                .with("[plugins.report.claude]\nbackends = [\"persistent\"]\nask_tools = [\"Bash\"]\ntimeout = \"60s\""),
        ],
    );
    setup.schedule("report", "plugin = \"report\"\ncron = \"0 4 1 1 *\"\n");
    let host = up(&setup);
    let trigger = {
        let command = setup.command(&["trigger", "report"]);
        std::thread::spawn(move || {
            let mut command = command;
            command.output().unwrap()
        })
    };
    let prompt = telegram.wait_for_prompts(CHAT, 1).remove(0);
    assert!(
        prompt
            .text
            .as_deref()
            .unwrap()
            .starts_with("🔐 Claude (report) wants to use Bash"),
        "{prompt:?}"
    );
    // Past the chat's 1 s approval timeout, the task still waits: its own is 30 s.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let runs: Vec<Value> = serde_json::from_slice(&setup.mission(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["waiting_for_approval"], true, "{runs:?}");
    let table = text(&setup.mission(&["runs"])).0;
    assert!(table.contains("waiting for approval"), "{table}");
    assert!(!made(&setup, "report.txt").exists());

    telegram.press(
        CHAT,
        ANNA,
        prompt.message_id.unwrap(),
        &prompt.button("Allow once"),
    );
    let output = trigger.join().unwrap();
    assert!(output.status.success(), "{:?}", text(&output));
    assert!(made(&setup, "report.txt").exists(), "the allowed command ran");
    let runs: Vec<Value> = serde_json::from_slice(&setup.mission(&["runs", "--json"]).stdout).unwrap();
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:?}");
    assert_eq!(runs[0]["waiting_for_approval"], false);
    drop(host);
}
