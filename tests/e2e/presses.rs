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

/// The accounting API `invoice-reminder` talks to: two unpaid invoices
/// (one 14 days overdue, one not yet due); every request kept.
fn accounting_api(seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>) -> String {
    let paid = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::loopback::serve(move |request| {
        let (seen, paid) = (seen.clone(), paid.clone());
        async move {
            let auth = request.header("authorization").unwrap_or_default().to_owned();
            seen.lock().unwrap().push((request.line.clone(), auth));
            let today = chrono::Utc::now().date_naive();
            let invoice =
                |number: &str, customer: &str, amount: u32, due: chrono::NaiveDate, status: &str| {
                    serde_json::json!({"number": number, "customer": customer, "amount": amount,
                    "currency": "EUR", "due": due.to_string(), "status": status})
                };
            let status = if paid.load(std::sync::atomic::Ordering::SeqCst) {
                "paid"
            } else {
                "unpaid"
            };
            let overdue = invoice(
                "2024-117",
                "Ada Lovelace",
                400,
                today - chrono::Days::new(14),
                status,
            );
            let body = match (request.line.split_whitespace().next(), request.path()) {
                (Some("GET"), "/invoices?status=unpaid") => serde_json::json!([
                    overdue,
                    invoice(
                        "2024-200",
                        "Charles Babbage",
                        90,
                        today + chrono::Days::new(5),
                        "unpaid"
                    ),
                ]),
                (Some("GET"), "/invoices/2024-117") => overdue,
                (Some("POST"), "/invoices/2024-117/paid") => {
                    paid.store(true, std::sync::atomic::Ordering::SeqCst);
                    serde_json::json!({"ok": true})
                }
                (Some("POST"), "/invoices/2024-117/reminders") => serde_json::json!({"ok": true}),
                _ => return "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
            }
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    })
}

#[test]
fn the_invoice_reminder_asks_about_an_overdue_invoice_and_acts_on_each_press() {
    let fake = FakeTelegram::start();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let api = accounting_api(seen.clone());
    let setup = BotHost::on(&fake).setup(vec![
        PluginSpec::chat("chat", guest("echo_chat")),
        PluginSpec::task("invoice-reminder", guest("invoice_reminder")).with(&format!(
            "grants = [\"http\", \"notify\", \"later\"]\nconfig = {{ api = \"{api}\", chat = \"{ANNA}\" }}\n\
             [plugins.invoice-reminder.http]\nallowed = [\"{api}\"]\n\
             [plugins.invoice-reminder.http.secrets.\"{api}\"]\nheader = \"Authorization\"\n\
             env = \"ACCOUNTING_API_TOKEN\"\nprefix = \"Bearer \"\n\
             [plugins.invoice-reminder.notify]\nchats = [{ANNA}]"
        )),
    ]);
    let start = || {
        let mut command = up_command(&setup);
        command.env("ACCOUNTING_API_TOKEN", "books-key");
        crate::bot_host::polling(command)
    };
    let ask = || {
        let output = setup
            .command(&["run", "--json", "invoice-reminder"])
            .env(TOKEN_ENV, TOKEN)
            .env("ACCOUNTING_API_TOKEN", "books-key")
            .output()
            .unwrap();
        let (stdout, stderr) = text(&output);
        assert!(output.status.success(), "{stdout}\n{stderr}");
        let record: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(record["summary"], "1 overdue of 2 unpaid: asked about each");
    };
    let posts = |count: usize| -> Call { fake.wait_for_prompts(ANNA as i64, count).remove(count - 1) };
    let host = start();

    // Asked about the overdue invoice only; Send reminder posts to the API.
    ask();
    let first = posts(1);
    let shown = first.text.clone().unwrap();
    assert_eq!(
        shown,
        "<b>Invoice 2024-117</b> to Ada Lovelace, €400, 14 days overdue"
    );
    fake.press(
        ANNA as i64,
        ANNA,
        first.message_id.unwrap(),
        &first.button("Send reminder"),
    );
    let said = fake.wait_for(|c| {
        c.method == "editMessageText" && c.text.as_deref().is_some_and(|t| t.starts_with("Reminder sent"))
    });
    assert_eq!(
        said.text.unwrap(),
        "Reminder sent for invoice 2024-117 (User100)."
    );
    let requests = seen.lock().unwrap().clone();
    let reminder = requests
        .iter()
        .find(|(line, _)| line.starts_with("POST /invoices/2024-117/reminders"))
        .expect("the reminder was posted");
    assert_eq!(reminder.1, "Bearer books-key", "the host added the key");

    // Snooze: a wake-up in three days; when it comes, asked again.
    ask();
    let second = posts(2);
    fake.press(
        ANNA as i64,
        ANNA,
        second.message_id.unwrap(),
        &second.button("Snooze 3 days"),
    );
    fake.wait_for(|c| {
        c.method == "editMessageText"
            && c.text
                .as_deref()
                .is_some_and(|t| t.contains("snoozed for 3 days"))
    });
    let waiting: Vec<Value> = serde_json::from_slice(&setup.mission(&["later", "--json"]).stdout).unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let in_three_days = waiting[0]["due_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        - chrono::Utc::now();
    assert!(in_three_days > chrono::Duration::hours(71), "{in_three_days}");
    // Three days on, as far as the wake-up knows; the host killed meanwhile.
    db(&setup).execute("UPDATE wakeups SET due_at = 0", []).unwrap();
    host.signal("-KILL");
    let _ = host.wait();
    let host = start();
    let third = posts(3);
    assert_eq!(third.text.as_deref(), first.text.as_deref());

    // Mark paid, and the host killed right after the press is answered:
    // the press runs to its end once (a run the kill cut short runs again,
    // so the API may hear it twice: marking paid is idempotent there).
    let press = fake.press(
        ANNA as i64,
        ANNA,
        third.message_id.unwrap(),
        &third.button("Mark paid"),
    );
    fake.wait_for(|c| c.callback_query_id.as_deref() == Some(press.as_str()));
    host.signal("-KILL");
    let _ = host.wait();
    let host = start();
    wait_for("the press to be done", Duration::from_secs(30), || {
        let state: String = db(&setup)
            .query_row("SELECT state FROM presses WHERE label = 'Mark paid'", [], |r| {
                r.get(0)
            })
            .unwrap();
        if state == "done" {
            Ok(())
        } else {
            Err(state)
        }
    });
    let paid = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(line, _)| line.starts_with("POST /invoices/2024-117/paid"))
        .count();
    assert!(paid >= 1, "marked paid");
    let finished: Vec<Value> = pressed_runs(&setup)
        .into_iter()
        .filter(|r| {
            r["outcome"] == "succeeded" && r["summary"].as_str().is_some_and(|s| s.contains("marked paid"))
        })
        .collect();
    assert_eq!(finished.len(), 1, "{finished:#?}");
    fake.wait_for(|c| {
        c.method == "editMessageText" && c.text.as_deref() == Some("Invoice 2024-117 marked paid (User100).")
    });
    drop(host);
}

#[test]
fn a_javascript_plugin_posts_a_message_with_buttons() {
    let fake = FakeTelegram::start();
    let setup = BotHost::on(&fake).setup(vec![
        PluginSpec::chat("chat", guest("echo_chat")),
        PluginSpec::task("snooze", crate::support::js_guest("snooze")).with(&format!(
            "grants = [\"later\", \"notify\"]\nconfig = {{ chat = \"{ANNA}\", after_ms = \"3600000\" }}\n\
             [plugins.snooze.notify]\nchats = [{ANNA}]"
        )),
    ]);
    let output = setup
        .command(&["run", "--json", "snooze"])
        .env(TOKEN_ENV, TOKEN)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let posted = fake.wait_for_prompts(ANNA as i64, 1).remove(0);
    assert_eq!(posted.text.as_deref(), Some("Asked from <i>JavaScript</i>"));
    assert_eq!(posted.buttons.len(), 1);
    assert_eq!(posted.buttons[0].0, "OK");
}
