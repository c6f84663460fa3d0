//! A person in the loop: a task plugin posts a message with buttons, and a
//! press starts a run of it with the press in its event — once, only an
//! allowed user's, not past the buttons' expiry, and surviving a `kill -9`
//! between the press and its run.

use std::time::Duration;

use serde_json::Value;

use crate::bot_host::{up, up_command, BotHost, ANNA, TOKEN, TOKEN_ENV};
use crate::fake_telegram::{Call, FakeTelegram};
use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

fn plugins(extra: &str) -> Vec<PluginSpec> {
    vec![
        PluginSpec::chat("chat", guest("echo_chat")),
        PluginSpec::task("asker", guest("asker"))
            .with("grants = [\"notify\"]")
            .with(&format!("config = {{ chat = \"{ANNA}\"{extra} }}"))
            .with(&format!("[plugins.asker.notify]\nchats = [{ANNA}]")),
    ]
}

/// Runs `asker` from the command line: it posts its message; returns the
/// message as the fake Bot API got it.
fn post(setup: &Setup, fake: &FakeTelegram) -> Call {
    let output = setup
        .command(&["run", "--json", "asker"])
        .env(TOKEN_ENV, TOKEN)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let record: Value = serde_json::from_str(&stdout).unwrap();
    let posted: Value = serde_json::from_str(record["summary"].as_str().unwrap()).unwrap();
    let message = posted["posted"].as_i64().unwrap();
    fake.wait_for(|c| c.method == "sendMessage" && c.message_id == Some(message))
}

fn press_answers(fake: &FakeTelegram) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| c.method == "answerCallbackQuery")
        .filter_map(|c| c.text)
        .collect()
}

fn pressed_runs(setup: &Setup) -> Vec<Value> {
    let runs: Vec<Value> = serde_json::from_slice(&setup.mission(&["runs", "--json"]).stdout).unwrap();
    runs.into_iter().filter(|r| r["trigger"] == "press").collect()
}

fn db(setup: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap()
}

#[test]
fn a_press_runs_its_plugin_once_with_the_press_and_marks_the_message() {
    let fake = FakeTelegram::start();
    let (setup, host) = BotHost::on(&fake).up(plugins(""));
    let posted = post(&setup, &fake);
    let labels: Vec<&str> = posted.buttons.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(labels, ["Send reminder", "Snooze 3 days", "Mark paid"]);
    assert_eq!(posted.parse_mode.as_deref(), Some("HTML"));
    let shown = posted.text.clone().unwrap();
    assert!(
        shown.contains("<b>Invoice 2024-117</b> to Ada Lovelace"),
        "{shown}"
    );
    assert!(
        posted
            .buttons
            .iter()
            .all(|(_, data)| data.len() <= 64 && !data.contains("2024-117")),
        "the plugin's data stays with the host: {:?}",
        posted.buttons
    );
    let message = posted.message_id.unwrap();

    // Someone not on the allowlist: refused, nothing runs.
    fake.press(ANNA as i64, 666, message, &posted.button("Mark paid"));
    fake.wait_for(|c| c.method == "answerCallbackQuery");
    assert_eq!(press_answers(&fake), ["You are not allowed to decide this."]);

    fake.press(ANNA as i64, ANNA, message, &posted.button("Mark paid"));
    let run = wait_for("the press's run", Duration::from_secs(20), || {
        let runs = pressed_runs(&setup);
        match runs.first() {
            Some(run) if run["outcome"] == "succeeded" => Ok(run.clone()),
            _ => Err(runs),
        }
    });
    assert_eq!(press_answers(&fake)[1], "Done.");
    let told: Value = serde_json::from_str(run["summary"].as_str().unwrap()).unwrap();
    assert_eq!(told["pressed"], "Mark paid");
    assert_eq!(told["data"], "paid:2024-117");
    assert_eq!(told["user_id"], ANNA);
    assert_eq!(told["user_name"], "User100");
    assert_eq!(told["chat_id"], ANNA);
    assert_eq!(told["message_id"], message);
    // The host marked the message: who chose what, the buttons gone.
    let marked = fake.wait_for(|c| c.method == "editMessageText" && c.message_id == Some(message));
    let marked_text = marked.text.unwrap();
    assert!(marked_text.contains("✓ Mark paid — User100"), "{marked_text}");
    assert!(marked.buttons.is_empty(), "{:?}", marked.buttons);

    // The same message pressed again: answered, runs nothing.
    let again = fake.press(ANNA as i64, ANNA, message, &posted.button("Send reminder"));
    fake.wait_for(|c| c.callback_query_id.as_deref() == Some(again.as_str()));
    assert_eq!(press_answers(&fake)[2], "Already done by User100.");
    let presses: i64 = db(&setup)
        .query_row("SELECT count(*) FROM presses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(presses, 1);
    assert_eq!(pressed_runs(&setup).len(), 1);
    let shown = text(&setup.mission(&["runs", "--id", &run["id"].to_string()])).0;
    assert!(shown.contains("User100 pressed Mark paid"), "{shown}");
    drop(host);
}

#[test]
fn a_press_past_the_buttons_expiry_runs_nothing() {
    let fake = FakeTelegram::start();
    let (setup, host) = BotHost::on(&fake).up(plugins(""));
    let posted = post(&setup, &fake);
    // A week on, as far as the post knows.
    db(&setup).execute("UPDATE posts SET expires_at = 0", []).unwrap();
    fake.press(
        ANNA as i64,
        ANNA,
        posted.message_id.unwrap(),
        &posted.button("Snooze 3 days"),
    );
    fake.wait_for(|c| c.method == "answerCallbackQuery");
    assert_eq!(press_answers(&fake), ["This button has expired."]);
    let presses: i64 = db(&setup)
        .query_row("SELECT count(*) FROM presses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(presses, 0);
    drop(host);
}

#[test]
fn a_press_survives_a_kill_between_it_and_its_run_and_runs_once() {
    let fake = FakeTelegram::start();
    let bot = BotHost::on(&fake);
    let setup = bot.setup(plugins(", slow_ms = \"3000\""));
    let host = up(&setup);
    let posted = post(&setup, &fake);
    let message = posted.message_id.unwrap();
    fake.press(ANNA as i64, ANNA, message, &posted.button("Send reminder"));
    // Answered once stored; its run (3 s) is under way when the host dies.
    fake.wait_for(|c| c.method == "answerCallbackQuery");
    wait_for("the press's run to start", Duration::from_secs(20), || {
        let runs = pressed_runs(&setup);
        if runs.iter().any(|r| r["outcome"] == "running") {
            Ok(())
        } else {
            Err(runs)
        }
    });
    host.signal("-KILL");
    let _ = host.wait();
    let host = RunningHost::spawn(up_command(&setup));
    let done = wait_for(
        "the press run once after the restart",
        Duration::from_secs(30),
        || {
            let runs = pressed_runs(&setup);
            let succeeded: Vec<&Value> = runs.iter().filter(|r| r["outcome"] == "succeeded").collect();
            match succeeded.len() {
                1 => Ok(succeeded[0].clone()),
                _ => Err(runs),
            }
        },
    );
    let told: Value = serde_json::from_str(done["summary"].as_str().unwrap()).unwrap();
    assert_eq!(told["pressed"], "Send reminder");
    let state: String = db(&setup)
        .query_row("SELECT state FROM presses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(state, "done");
    let runs = pressed_runs(&setup);
    assert_eq!(
        runs.iter().filter(|r| r["outcome"] == "succeeded").count(),
        1,
        "once: {runs:#?}"
    );
    drop(host);
}
