//! Shadow chat handlers over the fake Bot API: each gets every allowed
//! message after the live handler has answered, never delays or changes the
//! live reply, keeps its own history, Claude session and ledger rows, and is
//! measured; `mission shadow report` sets them side by side.

use serde_json::Value;

use crate::bot_host::{up, up_command, BotHost, TOKEN, TOKEN_ENV};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

/// How long a shadow gets to finish after the live reply.
const SHADOW_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

const ANNA: u64 = 100;
const CHAT: i64 = 100;

/// The live chat fixture, and four shadows: `assistant` (Claude through the
/// fake CLI, slow by the prompt's `#sleep=`), `frugal` (the same, with a
/// budget one call spends), `broken` (no history grant: every call fails)
/// and `hasty` (the same as `assistant` with a deadline shorter than
/// Claude's answers: every call is cut off).
fn shadow_setup(telegram: &FakeTelegram) -> Setup {
    let setup = Setup::new();
    let bot = BotHost::on(telegram)
        .handler("live")
        .telegram("shadow = [\"assistant\", \"frugal\", \"broken\", \"hasty\"]")
        .claude("");
    let assistant = |name: &str, limits: &str, grant: &str| {
        PluginSpec::chat(name, guest("assistant"))
            .with("grants = [\"claude\", \"history\"]")
            .with(limits)
            .with(&format!(
                "[plugins.{name}.claude]\nbackends = [\"persistent\"]\n{grant}"
            ))
    };
    bot.write(
        &setup,
        vec![
            PluginSpec::chat("live", guest("chat_fixture")).with("grants = [\"history\"]"),
            assistant("assistant", "", ""),
            assistant("frugal", "", "daily_usd = 0.01"),
            PluginSpec::chat("broken", guest("chat_fixture")),
            assistant("hasty", "timeout = \"1s\"", ""),
        ],
    );
    setup
}

/// `mission shadow report --json`.
fn report(setup: &Setup) -> Value {
    let output = setup.mission(&["shadow", "report", "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The figures of `plugin` in `report`.
fn figures<'a>(report: &'a Value, plugin: &str) -> &'a Value {
    report["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no {plugin} in {report:#}"))
}

/// Rows of `table` per plugin, straight from the SQLite file.
fn rows_per_plugin(setup: &Setup, table: &str) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let mut select = db
        .prepare(&format!(
            "SELECT plugin, COUNT(*) FROM {table} GROUP BY plugin ORDER BY plugin"
        ))
        .unwrap();
    select
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn slow_failing_hung_and_over_budget_shadows_leave_the_live_replies_alone_and_are_measured() {
    let telegram = FakeTelegram::start();
    let setup = shadow_setup(&telegram);
    let mut host = RunningHost::spawn(up_command(&setup));
    host.wait_for_log("shadow handlers get every message too");
    telegram.send_text(CHAT, ANNA, "one #sleep=1500");
    telegram.send_text(CHAT, ANNA, "two #sleep=1500");
    // Both live replies, unchanged, while the slow shadow is still on the
    // first message (it needs 1.5 s for each).
    let replies = telegram.wait_for_messages(CHAT, 2);
    assert_eq!(
        replies,
        ["one #sleep=1500 (message 1)", "two #sleep=1500 (message 2)"]
    );
    let measured = rows_per_plugin(&setup, "chat_calls");
    let slow_done = measured
        .iter()
        .find(|(p, _)| p == "assistant")
        .map_or(0, |(_, n)| *n);
    assert!(
        slow_done < 2,
        "the live replies waited for the shadow: {measured:?}"
    );

    // Wait for the shadows to finish both messages.
    let report = wait_for("the shadows to finish both messages", SHADOW_LIMIT, || {
        let report = report(&setup);
        let done = report["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["messages"] == 2)
            .count();
        if done == 5 {
            Ok(report)
        } else {
            Err(report)
        }
    });
    let live = figures(&report, "live");
    assert_eq!(live["role"], "live");
    assert_eq!(
        (live["errors"].as_u64(), live["timeouts"].as_u64()),
        (Some(0), Some(0))
    );
    // The live handler read no history for the first message, two entries for the second.
    assert_eq!(live["mean_history"], 1.0);
    assert_eq!(live["cost_usd"], 0.0);
    let slow = figures(&report, "assistant");
    assert_eq!(slow["role"], "shadow");
    assert!(slow["p50_ms"].as_u64().unwrap() >= 1500, "{slow}");
    assert_eq!(slow["errors"], 0);
    assert_eq!(slow["cost_per_message"], 0.0125);
    assert!(slow["month_projected_usd"].as_f64().unwrap() > 0.0);
    assert!(slow["mean_context_tokens"].as_f64().unwrap() > 0.0);
    let frugal = figures(&report, "frugal");
    assert_eq!(frugal["over_budget"], 1);
    assert_eq!(frugal["cost_usd"], 0.0125);
    let broken = figures(&report, "broken");
    assert_eq!(
        (broken["errors"].as_u64(), broken["error_rate"].as_f64()),
        (Some(2), Some(1.0))
    );
    let hasty = figures(&report, "hasty");
    assert_eq!(
        (hasty["timeouts"].as_u64(), hasty["timeout_rate"].as_f64()),
        (Some(2), Some(1.0))
    );

    // Nothing of theirs reached the chat.
    assert_eq!(telegram.messages(CHAT).len(), 2);
    // Their own history and ledger rows.
    // (`broken` may not keep any; `hasty` never answered.)
    assert_eq!(
        rows_per_plugin(&setup, "history"),
        [
            ("assistant".to_owned(), 4),
            ("frugal".to_owned(), 4),
            ("live".to_owned(), 4)
        ]
    );
    // A call cut off by the plugin's deadline is written to the ledger as
    // it is dropped, a moment after the handler's own record.
    let ledger = [
        ("assistant".to_owned(), 2),
        ("frugal".to_owned(), 2),
        ("hasty".to_owned(), 2),
    ];
    wait_for("the ledger's rows", std::time::Duration::from_secs(10), || {
        let rows = rows_per_plugin(&setup, "claude_calls");
        if rows == ledger {
            Ok(())
        } else {
            Err(rows)
        }
    });

    let table = setup.mission(&["shadow", "report", "--since", "1h"]);
    let (table, _) = text(&table);
    let header = table.lines().nth(1).unwrap();
    for column in ["live (live)", "assistant (shadow)", "broken (shadow)"] {
        assert!(header.contains(column), "{table}");
    }
    for label in [
        "latency p95",
        "errors",
        "cost / message",
        "month at this rate",
        "history given",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(label)),
            "no {label} in {table}"
        );
    }

    telegram.send_text(CHAT, ANNA, "/status");
    let status = &telegram.wait_for_messages(CHAT, 3)[2];
    assert!(status.contains("Shadow handlers running"), "{status}");
    assert!(status.contains("- assistant: 2 messages in 24h"), "{status}");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_shadow_reads_the_message_s_files_as_the_live_handler_does() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    let bot = BotHost::on(&telegram)
        .handler("live")
        .telegram("shadow = [\"candidate\"]");
    let reader = |name: &str| {
        PluginSpec::chat(name, guest("chat_fixture")).with("grants = [\"history\", \"attachments\"]")
    };
    bot.write(&setup, vec![reader("live"), reader("candidate")]);
    let host = up(&setup);
    telegram.send_file(CHAT, ANNA, "document", crate::fake_telegram::FakeFile::notes());
    let answer = "0 text/plain 12 bytes, read 12 bytes (message 1)";
    assert_eq!(telegram.wait_for_messages(CHAT, 1)[0], answer);
    // The shadow's reply, never sent, is in its own history.
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let shadow_reply = wait_for("the shadow's answer in its history", SHADOW_LIMIT, || {
        db.query_row(
            "SELECT text FROM history WHERE plugin = 'candidate' AND role = 'assistant'",
            [],
            |r| r.get::<_, String>(0),
        )
        .map_err(|e| e.to_string())
    });
    assert_eq!(shadow_reply, answer);
    assert_eq!(telegram.messages(CHAT).len(), 1, "the shadow's reply was sent");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_shadow_must_be_another_chat_plugin() {
    let setup = Setup::new();
    let plugins = || {
        vec![
            PluginSpec::chat("live", guest("chat_fixture")),
            PluginSpec::task("job", guest("chat_fixture")),
        ]
    };
    for (shadow, error) in [
        (
            "live",
            "telegram.shadow: `live` is named twice (the handler cannot shadow itself)",
        ),
        (
            "job",
            "telegram.shadow: `job` is a task plugin; the bot needs a chat plugin",
        ),
        ("nobody", "telegram.shadow: no plugin named `nobody`"),
    ] {
        setup.config_with(
            &BotHost::offline()
                .users(&[1])
                .handler("live")
                .telegram(&format!("shadow = [\"{shadow}\"]"))
                .toml(),
            plugins(),
        );
        let output = setup.mission(&["check"]);
        let (_, stderr) = text(&output);
        assert!(!output.status.success());
        assert!(stderr.contains(error), "{stderr}");
    }
}

#[test]
fn a_shadow_of_the_same_kind_keeps_its_own_claude_session_and_config() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    let bot = BotHost::on(&telegram)
        .handler("assistant")
        .telegram("shadow = [\"candidate\"]")
        .claude("");
    // The candidate asks through another backend, by its own config.
    let assistant = |name: &str, backend: &str| {
        PluginSpec::chat(name, guest("assistant"))
            .with("grants = [\"claude\"]")
            .with(&format!("config = {{ backend = \"{backend}\" }}"))
            .with(&format!(
                "[plugins.{name}.claude]\nbackends = [\"persistent\", \"cli\"]"
            ))
    };
    bot.write(
        &setup,
        vec![
            assistant("assistant", "persistent"),
            assistant("candidate", "cli"),
        ],
    );
    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "one");
    telegram.send_text(CHAT, ANNA, "two");
    // The live session heard only the live conversation, once each.
    let replies = telegram.wait_for_messages(CHAT, 2);
    assert_eq!(replies[1], "fake claude heard \"two\"; earlier: [\"one\"]");
    wait_for("the shadow to answer both", SHADOW_LIMIT, || {
        let rows = rows_per_plugin(&setup, "claude_calls");
        if rows.len() >= 2 && rows[1].1 >= 2 {
            Ok(())
        } else {
            Err(rows)
        }
    });
    // Two processes, one per plugin, each on its own session.
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let sessions: Vec<(String, String)> = db
        .prepare("SELECT plugin, session_id FROM claude_sessions ORDER BY plugin")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(
        (sessions[0].0.as_str(), sessions[1].0.as_str()),
        ("assistant", "candidate")
    );
    assert_ne!(sessions[0].1, sessions[1].1);
    // Each asked as its own config says.
    let backends: Vec<(String, String)> = db
        .prepare("SELECT DISTINCT plugin, backend FROM claude_calls ORDER BY plugin")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        backends,
        [
            ("assistant".to_owned(), "persistent".to_owned()),
            ("candidate".to_owned(), "cli".to_owned())
        ]
    );
    assert_eq!(telegram.messages(CHAT).len(), 2, "the shadow's replies were sent");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_shadow_sends_no_notification_and_check_asks_for_its_own_budget() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    let bot = BotHost::on(&telegram)
        .handler("live")
        .telegram("shadow = [\"echo\", \"capped\", \"uncapped\"]")
        .claude_bare("[claude.budget]\nmonthly_usd = 50.0");
    let fixture = |name: &str| {
        PluginSpec::chat(name, guest("chat_fixture"))
            .with("grants = [\"history\", \"notify\"]")
            .with(&format!("[plugins.{name}.notify]\nchats = [{CHAT}, 555]"))
    };
    let assistant = |name: &str, grant: &str| {
        PluginSpec::chat(name, guest("assistant"))
            .with("grants = [\"claude\"]")
            .with(&format!(
                "[plugins.{name}.claude]\nbackends = [\"persistent\"]\n{grant}"
            ))
    };
    bot.write(
        &setup,
        vec![
            fixture("live"),
            fixture("echo"),
            assistant("capped", "monthly_usd = 5.0"),
            assistant("uncapped", ""),
        ],
    );
    let mut command = setup.command(&["check"]);
    command.env(TOKEN_ENV, TOKEN);
    let (stdout, _) = text(&command.output().unwrap());
    assert!(
        stdout.contains("telegram: ok, chat plugin `live`, shadowed by `echo`, `capped`, `uncapped`"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: plugins.uncapped.claude: the shadow handler `uncapped` has only the global [claude.budget], \
             which the live handler needs too: set daily_usd or monthly_usd to cap what the pilot may spend"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("`capped` has"), "{stdout}");

    let host = up(&setup);
    telegram.send_text(CHAT, ANNA, "notify 555");
    // The live handler notifies; the shadow's notification is refused.
    assert_eq!(
        telegram.wait_for_messages(555, 1),
        ["a notification from the fixture"]
    );
    assert_eq!(telegram.wait_for_messages(CHAT, 1), ["notified 555 (message 1)"]);
    let db_path = setup.dir.path().join("data/mission.db");
    let shadow_reply_chars = wait_for("the shadow measured", SHADOW_LIMIT, || {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        db.query_row(
            "SELECT reply_chars FROM chat_calls WHERE plugin = 'echo'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())
    });
    let refused = "not notified: denied: a shadow handler sends no messages (message 1)";
    assert_eq!(shadow_reply_chars, refused.chars().count() as i64);
    // Measured, the shadow's call has ended: a send it made (notify waits
    // for the Bot API's answer) would be recorded by now.
    assert_eq!(
        telegram.messages(555).len(),
        1,
        "the shadow's notification was sent"
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_restart_hands_the_shadow_the_messages_it_kept_from_it_once() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    let bot = BotHost::on(&telegram)
        .handler("live")
        .telegram("shadow = [\"candidate\"]")
        .claude("");
    bot.write(
        &setup,
        vec![
            PluginSpec::chat("live", guest("chat_fixture")).with("grants = [\"history\"]"),
            PluginSpec::chat("candidate", guest("assistant"))
                .with("grants = [\"claude\"]")
                .with("[plugins.candidate.claude]\nbackends = [\"persistent\"]"),
        ],
    );
    let up = || RunningHost::spawn(up_command(&setup));
    let calls = || {
        let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
        let mut select = db
            .prepare("SELECT plugin, outcome FROM chat_calls ORDER BY id")
            .unwrap();
        select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<Vec<(String, String)>, _>>()
            .unwrap()
    };

    // The live reply is sent; the host is killed while the shadow still
    // waits for Claude.
    let mut host = up();
    host.wait_for_log("telegram bot polling");
    telegram.send_text(CHAT, ANNA, "slow one #sleep=3000");
    telegram.wait_for_messages(CHAT, 1);
    host.wait_for_log_line(&["started a persistent claude process", "candidate"]);
    telegram.send_text(CHAT, ANNA, "/status");
    let status = &telegram.wait_for_messages(CHAT, 2)[1];
    // Answered while the shadow's Claude process is still in its turn.
    assert!(
        status.contains("- 1 messages not handed to them yet")
            && status.contains("Claude: 1 persistent session process(es) running."),
        "{status}"
    );
    host.signal("-KILL");
    host.wait();
    assert_eq!(calls(), [("live".to_owned(), "ok".to_owned())]);

    // Started again, the host hands the shadow that message, and does not
    // ask the live handler again.
    let mut host = up();
    host.wait_for_log("handing the shadow handlers the messages a restart kept from them");
    wait_for("the shadow's call after the restart", SHADOW_LIMIT, || {
        let calls = calls();
        if calls.len() >= 2 {
            Ok(())
        } else {
            Err(calls)
        }
    });
    let expected = [
        ("live".to_owned(), "ok".to_owned()),
        ("candidate".to_owned(), "ok".to_owned()),
    ];
    assert_eq!(calls(), expected);
    // The live handler was not asked again. (The status may come twice: a
    // kill between sending a reply and marking it handled resends it.)
    let replies: Vec<String> = telegram
        .messages(CHAT)
        .into_iter()
        .filter(|m| !m.starts_with("Mission Control up"))
        .collect();
    assert_eq!(replies, ["slow one #sleep=3000 (message 1)"]);
    host.signal("-TERM");
    assert!(host.wait().0);

    // Once handed, it is not handed again.
    let mut host = up();
    host.wait_for_log("telegram bot polling");
    assert!(
        !host.seen.contains("handing the shadow handlers"),
        "{}",
        host.seen
    );
    host.signal("-TERM");
    assert!(host.wait().0);
    assert_eq!(calls(), expected);
}
