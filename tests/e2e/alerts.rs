//! Alerts on a real `mission up` against the fake Bot API: a failing
//! schedule is told once per streak, after `after_failures`, and once when
//! it works again; an alert queued while Telegram cannot be reached (here:
//! no token) is sent after a restart.

use std::time::Duration;

use crate::bot_host::{up_command, BotHost, TOKEN_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, wait_for, PluginSpec, RunningHost, Setup};

const ANNA: i64 = 100;

/// How long a wait on the host may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

/// A job that exits 3 every second (`exit 0` once `fixed`), alerts to
/// Anna's chat after `after` failures.
fn setup(fake: &FakeTelegram, after: u32) -> Setup {
    let setup = Setup::new();
    setup.config_with(
        &bot(fake)
            .tables(&format!("[alerts]\nchat = {ANNA}\nafter_failures = {after}"))
            .toml(),
        vec![
            PluginSpec::chat("chat", guest("chat_fixture")),
            PluginSpec::task("job", guest("run_command"))
                .with("grants = [\"process\"]\n[plugins.job.process]\nprograms = [\"/bin/sh\"]"),
        ],
    );
    fail(&setup, true);
    setup
}

/// The schedule, failing or not.
fn fail(setup: &Setup, failing: bool) {
    let script = if failing {
        "echo disk full >&2; exit 3"
    } else {
        "exit 0"
    };
    setup.schedule(
        "backup",
        &format!(
            "plugin = \"job\"\nevery = \"1s\"\nconfig = {{ program = \"/bin/sh\", args = '[\"-c\", \"{script}\"]' }}\n"
        ),
    );
}

/// The bot on `fake` for Anna, with a 1 s poll timeout.
fn bot(fake: &FakeTelegram) -> BotHost {
    BotHost::on(fake).users(&[ANNA as u64]).poll_timeout("1s")
}

/// `mission up` on `setup`, with the bot token or without it.
fn up(setup: &Setup, token: bool) -> RunningHost {
    let mut command = up_command(setup);
    if !token {
        command.env_remove(TOKEN_ENV);
    }
    RunningHost::spawn(command)
}

fn failed_runs(setup: &Setup) -> usize {
    let output = setup.mission(&["runs", "--json", "--limit", "200"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    runs.iter().filter(|r| r["outcome"] == "failed").count()
}

/// Waits until at least `count` runs have failed.
fn wait_for_failed_runs(setup: &Setup, count: usize) {
    wait_for(&format!("{count} failed runs"), LIMIT, || {
        let failed = failed_runs(setup);
        if failed >= count {
            Ok(())
        } else {
            Err(failed)
        }
    });
}

/// The database, read directly.
fn db(setup: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap()
}

/// The failed runs `schedule`'s streak counts (0 with no streak). The
/// streak and the alert it calls for are written in one transaction, so
/// once it counts N, the alert for the Nth failure is queued or never is.
fn streak(setup: &Setup, schedule: &str) -> u32 {
    use rusqlite::OptionalExtension;
    db(setup)
        .query_row(
            "SELECT failures FROM schedule_streaks WHERE schedule = ?1",
            [schedule],
            |row| row.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or(0)
}

/// Waits until `schedule`'s streak counts at least `failures`.
fn wait_for_streak(setup: &Setup, schedule: &str, failures: u32) {
    wait_for(&format!("{schedule}'s streak at {failures}"), LIMIT, || {
        let now = streak(setup, schedule);
        if now >= failures {
            Ok(())
        } else {
            Err(now)
        }
    });
}

#[test]
fn a_failing_schedule_is_told_once_per_streak_and_when_it_works_again() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 2);
    let host = up(&setup, true);
    let alert = fake.wait_for_texts(ANNA, 1).remove(0);
    assert!(
        alert.starts_with("⚠️ backup (plugin job) failed 2 runs in a row.\nCause: disk full\n"),
        "{alert}"
    );
    assert!(
        alert.contains(" ms.\nDetails shows the whole error (or send /runs "),
        "{alert}"
    );
    assert!(!alert.contains('`') && !alert.contains("mission "), "{alert}");
    // Several more failures: no more alerts, not even queued.
    wait_for_streak(&setup, "backup", streak(&setup, "backup") + 3);
    assert_eq!(queued_alerts(&setup).len(), 1, "{:?}", queued_alerts(&setup));
    assert_eq!(fake.texts(ANNA).len(), 1, "{:?}", fake.texts(ANNA));
    // Fixed: one recovery, saying how long.
    fail(&setup, false);
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("✅ backup (plugin job) works again, after ")
            && told[1].contains(" failed runs since ")
            && told[1].contains(" (broken for "),
        "{told:?}"
    );
    // Failing again is a new streak: one more alert.
    fail(&setup, true);
    let told = fake.wait_for_texts(ANNA, 3);
    assert!(told[2].starts_with("⚠️ backup (plugin job) failed"), "{told:?}");
    wait_for_streak(&setup, "backup", streak(&setup, "backup") + 3);
    assert_eq!(queued_alerts(&setup).len(), 3, "{:?}", queued_alerts(&setup));
    assert_eq!(fake.texts(ANNA).len(), 3, "{:?}", fake.texts(ANNA));
    drop(host);
}

#[test]
fn an_alert_queued_while_telegram_is_out_of_reach_is_sent_after_a_restart() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1);
    let host = up(&setup, false);
    wait_for("the alert to be queued", LIMIT, || {
        let queued = queued_alerts(&setup);
        if queued.is_empty() {
            Err(queued)
        } else {
            Ok(())
        }
    });
    host.signal("-TERM");
    assert!(host.wait().0);
    assert!(fake.texts(ANNA).is_empty());
    // Still failing, but the streak was told already: only the queued alert.
    let failures = streak(&setup, "backup");
    let host = up(&setup, true);
    let told = fake.wait_for_texts(ANNA, 1);
    assert!(
        told[0].starts_with("⚠️ backup (plugin job) failed.\nCause: disk full\n"),
        "{told:?}"
    );
    wait_for_streak(&setup, "backup", failures + 2);
    assert_eq!(queued_alerts(&setup).len(), 1, "{:?}", queued_alerts(&setup));
    // Sent once: the outbox sends oldest first, so a second sending of it
    // would come before the recovery, queued behind it.
    fail(&setup, false);
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("✅ backup (plugin job) works again"),
        "sent once: {told:?}"
    );
    assert_eq!(fake.texts(ANNA).len(), 2, "sent once: {:?}", fake.texts(ANNA));
    drop(host);
}

#[test]
fn schedules_are_listed_run_paused_and_resumed_from_the_chat() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1000);
    setup.schedule(
        "yearly",
        "plugin = \"job\"\ncron = \"0 4 1 1 *\"\ntimezone = \"Europe/Berlin\"\n\
         config = { program = \"/bin/sh\", args = '[\"-c\", \"echo ran\"]' }\n",
    );
    let mut host = up(&setup, true);
    fake.send_text(ANNA, ANNA as u64, "/schedules");
    let listed = fake.wait_for_texts(ANNA, 1).remove(0);
    assert!(listed.contains("backup: every 1s"), "{listed}");
    assert!(
        listed.contains("yearly: 0 4 1 1 * — next ") && listed.contains(" 04:00 CET, not run yet"),
        "in the schedule's zone: {listed}"
    );

    // /run queues it like `mission trigger`; the run is recorded as a trigger.
    fake.send_text(ANNA, ANNA as u64, "/run yearly");
    assert!(fake.wait_for_texts(ANNA, 2)[1].starts_with("yearly runs now (request "));
    let run = wait_for("a run of yearly", Duration::from_secs(20), || {
        let output = setup.mission(&["runs", "--schedule", "yearly", "--json"]);
        let mut runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        if runs.first().is_some_and(|r| r["outcome"] == "succeeded") {
            Ok(runs.remove(0))
        } else {
            Err(runs)
        }
    });
    assert_eq!(run["trigger"], "trigger");
    assert!(run["request"].is_number(), "{run:?}");

    wait_for_failed_runs(&setup, 1);
    fake.send_text(ANNA, ANNA as u64, "/pause backup");
    assert_eq!(
        fake.wait_for_texts(ANNA, 3)[2],
        "backup is paused: /resume backup starts it again."
    );
    // Its due times come, and are held: none of them runs.
    host.wait_for_log_line(&["paused: not run", "schedule=backup"]);
    let before = runs_of(&setup, "backup");
    host.wait_for_log_line(&["paused: not run", "schedule=backup"]);
    host.wait_for_log_line(&["paused: not run", "schedule=backup"]);
    assert_eq!(
        runs_of(&setup, "backup"),
        before,
        "a paused schedule does not run"
    );
    fake.send_text(ANNA, ANNA as u64, "/runs");
    let failures = fake.wait_for_texts(ANNA, 4).remove(3);
    assert!(
        failures.contains(" backup failed ") && failures.contains(" UTC: disk full"),
        "{failures}"
    );
    fake.send_text(ANNA, ANNA as u64, "/resume backup");
    assert_eq!(
        fake.wait_for_texts(ANNA, 5)[4],
        "backup runs on its schedule again."
    );
    fake.send_text(ANNA, ANNA as u64, "/run nope");
    assert_eq!(
        fake.wait_for_texts(ANNA, 6)[5],
        "There is no schedule named nope (see /schedules)."
    );
    drop(host);
}

/// The texts of the press answers (`answerCallbackQuery`) so far.
fn press_answers(fake: &FakeTelegram) -> Vec<String> {
    fake.calls()
        .into_iter()
        .filter(|c| c.method == "answerCallbackQuery")
        .filter_map(|c| c.text)
        .collect()
}

fn paused(setup: &Setup) -> bool {
    let output = setup.mission(&["schedules", "--json"]);
    let schedules: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    schedules
        .iter()
        .any(|s| s["name"] == "backup" && s["paused"] == true)
}

#[test]
fn an_alert_s_buttons_run_pause_and_mute_its_schedule_and_a_stranger_s_press_is_refused() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1);
    let host = up(&setup, true);
    let alert = fake.wait_for_prompts(ANNA, 1).remove(0);
    let labels: Vec<&str> = alert.buttons.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(labels, ["Details", "Run again", "Pause", "Mute 24 h"]);
    let button = |label: &str| alert.buttons.iter().find(|(l, _)| l == label).unwrap().1.clone();
    let message = alert.message_id.unwrap();

    // Someone not on the allowlist: refused, nothing changes.
    fake.press(ANNA, 666, message, &button("Pause"));
    fake.wait_for(|c| c.method == "answerCallbackQuery");
    assert_eq!(press_answers(&fake), ["You are not allowed to decide this."]);
    assert!(!paused(&setup));

    // Run again: queued like /run, and said in the chat.
    fake.press(ANNA, ANNA as u64, message, &button("Run again"));
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("backup runs now (request ") && told[1].ends_with("(User100)"),
        "{told:?}"
    );
    let triggered = || {
        let output = setup.mission(&["runs", "--schedule", "backup", "--json", "--limit", "200"]);
        let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
        runs.iter().any(|r| r["trigger"] == "trigger")
    };
    wait_for("the run Run again asked for", Duration::from_secs(20), || {
        if triggered() {
            Ok(())
        } else {
            Err("no run with trigger \"trigger\"")
        }
    });

    // Mute: the streak's recovery and the next streak's alert stay unsaid.
    fake.press(ANNA, ANNA as u64, message, &button("Mute 24 h"));
    let told = fake.wait_for_texts(ANNA, 3);
    assert!(
        told[2].starts_with("backup's alerts are muted until ") && told[2].ends_with(". (User100)"),
        "{told:?}"
    );
    fail(&setup, false);
    wait_for("a run that works again", LIMIT, || {
        match streak(&setup, "backup") {
            0 => Ok(()),
            failures => Err(failures),
        }
    });
    fail(&setup, true);
    wait_for_streak(&setup, "backup", 2);
    assert_eq!(
        queued_alerts(&setup).len(),
        1,
        "muted: {:?}",
        queued_alerts(&setup)
    );
    assert_eq!(fake.texts(ANNA).len(), 3, "muted: {:?}", fake.texts(ANNA));

    // Pause: as /pause.
    fake.press(ANNA, ANNA as u64, message, &button("Pause"));
    let told = fake.wait_for_texts(ANNA, 4);
    assert_eq!(
        told[3],
        "backup is paused: /resume backup starts it again. (User100)"
    );
    assert!(paused(&setup));
    drop(host);
}

#[test]
fn missed_runs_and_a_refused_reload_are_told_once_each_with_why() {
    let fake = FakeTelegram::start();
    let setup = Setup::new();
    let wasm = setup.file("job.wasm", &std::fs::read(guest("run_command")).unwrap());
    setup.config_with(
        &bot(&fake).tables(&format!("[alerts]\nchat = {ANNA}")).toml(),
        vec![
            PluginSpec::chat("chat", guest("chat_fixture")),
            PluginSpec::task("job", wasm.clone())
                .with("grants = [\"process\"]\n[plugins.job.process]\nprograms = [\"/bin/sh\"]"),
        ],
    );
    // Due every second, each run taking 2.5 s: most due times are skipped.
    setup.schedule(
        "slow",
        "plugin = \"job\"\nevery = \"1s\"\nconfig = { program = \"/bin/sh\", args = '[\"-c\", \"sleep 2.5\"]' }\n",
    );
    let host = up(&setup, true);
    let told = fake.wait_for_texts(ANNA, 1);
    assert!(
        told[0].starts_with("⏭ slow (plugin job) did not run at "),
        "{told:?}"
    );
    assert!(
        told[0].contains(": its previous run was still going, and this schedule skips a run"),
        "{told:?}"
    );
    // Counted in the transaction that would queue their alert.
    let counted = || -> u32 {
        db(&setup)
            .query_row(
                "SELECT coalesce(sum(missed), 0) FROM schedule_misses WHERE schedule = 'slow'",
                [],
                |row| row.get(0),
            )
            .unwrap()
    };
    wait_for("two more skips counted", LIMIT, || match counted() {
        missed if missed >= 3 => Ok(()),
        missed => Err(missed),
    });
    assert_eq!(
        queued_alerts(&setup).len(),
        1,
        "skips after the first are counted: {:?}",
        queued_alerts(&setup)
    );
    assert_eq!(
        fake.texts(ANNA).len(),
        1,
        "skips after the first are counted: {:?}",
        fake.texts(ANNA)
    );

    // A broken new version: told once, however often the file is touched.
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0 garbage").unwrap();
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("🧩 The new version of plugin job was refused; the old one keeps serving.")
            && told[1].contains("not a valid WebAssembly component"),
        "{told:?}"
    );
    std::fs::write(&wasm, b"\0asm\x0d\0\x01\0 garbage").unwrap();
    // A refused load is recorded after its alert is queued or not.
    wait_for("the second refusal recorded", LIMIT, || {
        let refused: u32 = db(&setup)
            .query_row(
                "SELECT count(*) FROM plugin_loads WHERE plugin = 'job' AND outcome = 'refused'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        if refused >= 2 {
            Ok(())
        } else {
            Err(refused)
        }
    });
    assert_eq!(queued_alerts(&setup).len(), 2, "{:?}", queued_alerts(&setup));
    assert_eq!(fake.texts(ANNA).len(), 2, "{:?}", fake.texts(ANNA));
    std::fs::write(&wasm, std::fs::read(guest("run_command")).unwrap()).unwrap();

    // Down for a few seconds with catch_up = "none": told on start.
    setup.schedule(
        "ticker",
        "plugin = \"job\"\nevery = \"1s\"\nconfig = { program = \"/bin/sh\", args = '[\"-c\", \"exit 0\"]' }\n",
    );
    wait_for_runs_past(&setup, "ticker", 0);
    host.signal("-TERM");
    assert!(host.wait().0);
    std::thread::sleep(Duration::from_secs(3));
    let host = up(&setup, true);
    let down = fake.wait_for(|c| {
        c.text
            .as_deref()
            .is_some_and(|t| t.starts_with("⏭ ticker (plugin job) did not run "))
    });
    assert_eq!(down.buttons.len(), 1, "{:?}", down.buttons);
    assert_eq!(down.buttons[0].0, "Run now");
    let text = down.text.unwrap();
    assert!(
        text.contains(" times, from ")
            && text.contains(
                "the host was down, and this schedule does not make up runs missed while it is down."
            ),
        "{text}"
    );
    drop(host);
}

#[test]
fn quiet_hours_hold_all_but_urgent_alerts_until_they_end() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1);
    let now = chrono::Utc::now();
    let quiet = format!(
        "quiet = \"{}-{}\"\ntimezone = \"UTC\"\n",
        (now - chrono::Duration::hours(1)).format("%H:%M"),
        (now + chrono::Duration::hours(1)).format("%H:%M")
    );
    let config = std::fs::read_to_string(setup.config_path()).unwrap();
    let quiet_config = config.replace("[alerts]\n", &format!("[alerts]\n{quiet}"));
    std::fs::write(setup.config_path(), &quiet_config).unwrap();
    setup.schedule(
        "payments",
        "plugin = \"job\"\nevery = \"1s\"\nurgent = true\n\
         config = { program = \"/bin/sh\", args = '[\"-c\", \"exit 4\"]' }\n",
    );
    let host = up(&setup, true);
    let told = fake.wait_for_texts(ANNA, 1);
    assert!(
        told[0].starts_with("⚠️ payments (plugin job) failed"),
        "the urgent one goes out: {told:?}"
    );
    // backup's alert is queued, and held while an urgent one queued after
    // it (payments works again) goes out.
    wait_for("backup's alert to be queued", LIMIT, || {
        let queued = queued_alerts(&setup);
        if queued.iter().any(|t| t.starts_with("⚠️ backup")) {
            Ok(())
        } else {
            Err(queued)
        }
    });
    setup.schedule(
        "payments",
        "plugin = \"job\"\nevery = \"1s\"\nurgent = true\n\
         config = { program = \"/bin/sh\", args = '[\"-c\", \"exit 0\"]' }\n",
    );
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("✅ payments (plugin job) works again"),
        "backup's alert is held: {told:?}"
    );
    // The quiet hours end (here: the config drops them): what was held goes out.
    std::fs::write(setup.config_path(), &config).unwrap();
    let told = fake.wait_for_texts(ANNA, 3);
    assert!(told[2].starts_with("⚠️ backup (plugin job) failed"), "{told:?}");
    drop(host);
}

#[test]
fn the_host_pings_start_fail_and_healthy_and_sends_its_digest() {
    let fake = FakeTelegram::start();
    let pings = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let seen = pings.clone();
    let monitor = crate::loopback::serve(move |request| {
        let seen = seen.clone();
        async move {
            let body = String::from_utf8_lossy(&request.body).into_owned();
            seen.lock().unwrap().push((request.line.clone(), body));
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK".to_owned()
        }
    });
    let setup = setup(&fake, 1);
    let config = std::fs::read_to_string(setup.config_path()).unwrap().replace(
        "[alerts]\n",
        &format!(
            "[alerts]\ndigest = \"* * * * *\"\nping = {{ url = \"{monitor}/ping/abc\", every = \"1s\" }}\n"
        ),
    );
    std::fs::write(setup.config_path(), config).unwrap();
    let host = up(&setup, true);
    let wait_for_ping = |wanted: &dyn Fn(&(String, String)) -> bool| {
        wait_for("such a ping", LIMIT, || {
            let pings = pings.lock().unwrap();
            pings.iter().find(|p| wanted(p)).cloned().ok_or(pings.clone())
        })
    };
    wait_for_ping(&|(line, _)| line.starts_with("POST /ping/abc/start "));
    let (_, body) = wait_for_ping(&|(line, _)| line.starts_with("POST /ping/abc/fail "));
    assert!(
        body.starts_with("failing: backup (") && body.contains("failed runs in a row"),
        "{body}"
    );
    fail(&setup, false);
    wait_for_ping(&|(line, _)| line.starts_with("POST /ping/abc "));
    let http = setup.mission(&["http", "--json"]);
    assert!(
        String::from_utf8_lossy(&http.stdout).contains("(host)"),
        "the pings are recorded"
    );

    // The digest comes at the next minute.
    let digest = wait_for("the digest", Duration::from_secs(90), || {
        let texts = fake.texts(ANNA);
        texts
            .iter()
            .find(|t| t.starts_with("📋 Digest, "))
            .cloned()
            .ok_or(texts)
    });
    assert!(
        digest.contains("\nRuns in 24 h: ") && digest.contains("\nFailed: backup failed ×"),
        "{digest}"
    );
    drop(host);
}

#[test]
fn an_alert_telegram_refuses_for_a_while_is_sent_once_it_takes_it() {
    let fake = FakeTelegram::start();
    // The alert's first sends fail: one the client retries by itself (a
    // 502), then two refusals the outbox tries again after its own waits.
    let refused =
        serde_json::json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"});
    fake.fail_next(
        "sendMessage",
        502,
        serde_json::json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
    );
    fake.fail_next("sendMessage", 400, refused.clone());
    fake.fail_next("sendMessage", 400, refused);
    let setup = setup(&fake, 1);
    let host = up(&setup, true);
    let told = fake.wait_for_texts(ANNA, 1);
    assert!(told[0].starts_with("⚠️ backup (plugin job) failed"), "{told:?}");
    let failed = fake
        .calls()
        .iter()
        .filter(|c| c.method == "sendMessage" && c.failed)
        .count();
    assert_eq!(failed, 3, "{:#?}", fake.calls());
    // Sent once: the outbox sends oldest first, so a second sending of it
    // would come before the recovery, queued behind it.
    fail(&setup, false);
    let told = fake.wait_for_texts(ANNA, 2);
    assert!(
        told[1].starts_with("✅ backup (plugin job) works again"),
        "sent once: {told:?}"
    );
    assert_eq!(fake.texts(ANNA).len(), 2, "sent once: {:?}", fake.texts(ANNA));
    drop(host);
}

/// The texts of every alert queued so far, sent or not, in order.
fn queued_alerts(setup: &Setup) -> Vec<String> {
    let db = db(setup);
    let mut statement = db.prepare("SELECT text FROM outbox ORDER BY id").unwrap();
    let texts = statement.query_map([], |row| row.get(0)).unwrap();
    texts.map(Result::unwrap).collect()
}

/// The runs of `schedule` recorded so far.
fn runs_of(setup: &Setup, schedule: &str) -> usize {
    let output = setup.mission(&["runs", "--schedule", schedule, "--json", "--limit", "200"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    runs.len()
}

/// Waits (up to 30 s) until `schedule` has more than `runs` runs.
fn wait_for_runs_past(setup: &Setup, schedule: &str, runs: usize) {
    wait_for(&format!("{schedule} to run"), LIMIT, || {
        match runs_of(setup, schedule) {
            now if now > runs => Ok(()),
            now => Err(now),
        }
    });
}

#[test]
fn a_schedule_paused_from_the_phone_is_not_told_as_missed_after_a_restart() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1000);
    let ok = "config = { program = \"/bin/sh\", args = '[\"-c\", \"exit 0\"]' }\n";
    setup.schedule("payroll", &format!("plugin = \"job\"\nevery = \"1s\"\n{ok}"));
    setup.schedule("ticker", &format!("plugin = \"job\"\nevery = \"1s\"\n{ok}"));
    let host = up(&setup, true);
    wait_for_runs_past(&setup, "payroll", 0);
    fake.send_text(ANNA, ANNA as u64, "/pause payroll");
    assert_eq!(
        fake.wait_for_texts(ANNA, 1)[0],
        "payroll is paused: /resume payroll starts it again."
    );
    // Due times pass while it is paused and the host is up ("paused: not run").
    let ticked = runs_of(&setup, "ticker");
    wait_for_runs_past(&setup, "ticker", ticked + 2);
    host.signal("-TERM");
    assert!(host.wait().0);
    // And while the host is down.
    std::thread::sleep(Duration::from_secs(3));
    let mut host = up(&setup, true);
    host.wait_for_logged(&["scheduler started"]);
    let queued = queued_alerts(&setup);
    assert!(
        queued
            .iter()
            .any(|t| t.starts_with("⏭ ticker (plugin job) did not run ")),
        "ticker ran before and was not paused: {queued:?}"
    );
    assert!(
        !queued.iter().any(|t| t.starts_with("⏭ payroll")),
        "payroll was paused, not missed: {queued:?}"
    );
    drop(host);
}

#[test]
fn an_alert_s_details_button_shows_the_whole_error_and_runs_tells_each_cause_in_the_schedule_s_zone() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1);
    setup.schedule(
        "backup",
        "plugin = \"job\"\nevery = \"1s\"\ntimezone = \"Asia/Tokyo\"\n\
         config = { program = \"/bin/sh\", args = '[\"-c\", \"echo fetching open orders from the shop >&2; \
         echo connection refused >&2; exit 3\"]' }\n",
    );
    let host = up(&setup, true);
    let alert = fake.wait_for_prompts(ANNA, 1).remove(0);
    let text = alert.text.clone().unwrap();
    assert!(
        text.starts_with("⚠️ backup (plugin job) failed.\nCause: connection refused\nThe run started ")
            && text.contains(" JST and took "),
        "{text}"
    );

    fake.press(
        ANNA,
        ANNA as u64,
        alert.message_id.unwrap(),
        &alert.button("Details"),
    );
    let details = fake.wait_for_texts(ANNA, 2).remove(1);
    assert!(
        details.starts_with("Run #") && details.contains(" of backup (plugin job) failed. It started "),
        "{details}"
    );
    assert!(
        details.contains(" JST and took ")
            && details.contains(".\n\nthe plugin returned an error: exit 3 in ")
            && details.ends_with(":\nfetching open orders from the shop\nconnection refused"),
        "{details}"
    );
    assert_eq!(press_answers(&fake), ["The whole error is in the chat."]);

    fake.send_text(ANNA, ANNA as u64, "/runs");
    let failures = fake.wait_for_texts(ANNA, 3).remove(2);
    let lines: Vec<&str> = failures.lines().collect();
    assert!(
        lines[0].starts_with('#')
            && lines[0].contains(" backup failed ")
            && lines[0].ends_with(" JST: connection refused"),
        "{failures}"
    );
    assert!(!failures.contains("UTC"), "{failures}");
    assert_eq!(
        lines.last().unwrap(),
        &"Send /runs ID (such as /runs 4) for one run's whole error."
    );
    drop(host);
}
