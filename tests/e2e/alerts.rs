//! Alerts on a real `mission up` against the fake Bot API: a failing
//! schedule is told once per streak, after `after_failures`, and once when
//! it works again; an alert queued while Telegram cannot be reached (here:
//! no token) is sent after a restart.

use std::process::Command;
use std::time::Duration;

use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, PluginSpec, RunningHost, Setup};

const TOKEN_ENV: &str = "MISSION_TEST_ALERTS_TOKEN";
const ANNA: i64 = 100;

/// A job that exits 3 every second (`exit 0` once `fixed`), alerts to
/// Anna's chat after `after` failures.
fn setup(fake: &FakeTelegram, after: u32) -> Setup {
    let setup = Setup::new();
    setup.config_with(
        &format!(
            "[telegram]\ntoken_env = \"{TOKEN_ENV}\"\napi_url = \"{}\"\nallowed_users = [{ANNA}]\n\
             handler = \"chat\"\npoll_timeout = \"1s\"\n[alerts]\nchat = {ANNA}\nafter_failures = {after}\n",
            fake.url
        ),
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

fn up(setup: &Setup, token: bool) -> RunningHost {
    let mut command: Command = setup.command(&["up"]);
    if token {
        command.env(TOKEN_ENV, "123:test-token");
    } else {
        command.env_remove(TOKEN_ENV);
    }
    RunningHost::spawn(command)
}

fn failed_runs(setup: &Setup) -> usize {
    let output = setup.mission(&["runs", "--json", "--limit", "200"]);
    let runs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    runs.iter().filter(|r| r["outcome"] == "failed").count()
}

#[test]
fn a_failing_schedule_is_told_once_per_streak_and_when_it_works_again() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 2);
    let host = up(&setup, true);
    let alert = fake.wait_for_messages(ANNA, 1).remove(0);
    assert!(
        alert.starts_with("⚠️ backup failed (plugin job), 2 runs in a row: failed"),
        "{alert}"
    );
    assert!(alert.contains("exit 3") && alert.contains("disk full"), "{alert}");
    assert!(alert.contains("mission runs --id"), "{alert}");
    // Several more failures: no more alerts.
    let seen = failed_runs(&setup);
    while failed_runs(&setup) < seen + 3 {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fake.messages(ANNA).len(), 1, "{:?}", fake.messages(ANNA));
    // Fixed: one recovery, saying how long.
    fail(&setup, false);
    let told = fake.wait_for_messages(ANNA, 2);
    assert!(
        told[1].starts_with("✅ backup works again (plugin job): broken for "),
        "{told:?}"
    );
    assert!(told[1].contains("failed runs."), "{told:?}");
    // Failing again is a new streak: one more alert.
    fail(&setup, true);
    let told = fake.wait_for_messages(ANNA, 3);
    assert!(told[2].starts_with("⚠️ backup failed"), "{told:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(fake.messages(ANNA).len(), 3, "{:?}", fake.messages(ANNA));
    drop(host);
}

#[test]
fn an_alert_queued_while_telegram_is_out_of_reach_is_sent_after_a_restart() {
    let fake = FakeTelegram::start();
    let setup = setup(&fake, 1);
    let host = up(&setup, false);
    while failed_runs(&setup) < 1 {
        std::thread::sleep(Duration::from_millis(100));
    }
    host.signal("-TERM");
    assert!(host.wait().0);
    assert!(fake.messages(ANNA).is_empty());
    // Still failing, but the streak was told already: only the queued alert.
    let host = up(&setup, true);
    let told = fake.wait_for_messages(ANNA, 1);
    assert!(
        told[0].starts_with("⚠️ backup failed (plugin job), 1 run in a row"),
        "{told:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        fake.messages(ANNA).len(),
        1,
        "sent once: {:?}",
        fake.messages(ANNA)
    );
    drop(host);
}
