//! `kill -9` again and again while messages stream in: nothing is lost, the
//! plugin is never asked again for a message it answered, the history holds
//! each exchange once, and each chat's replies keep their order. Replies in
//! doubt (taken by Telegram just before a kill) may come twice, identical.

use std::collections::HashSet;
use std::time::Duration;

use crate::bot_host::{up_command, BotHost};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, wait_for, PluginSpec, RunningHost, Setup};

const USER: u64 = 100;
const CHATS: i64 = 5;
const PER_CHAT: usize = 60;
const KILLS: usize = 20;

/// `mission up` on `setup`, returning once it is up (its bot may not poll
/// yet).
fn up(setup: &Setup) -> RunningHost {
    RunningHost::spawn(up_command(setup))
}

#[test]
fn kill_9_during_a_message_stream_loses_nothing_and_asks_nothing_twice() {
    let fake = std::sync::Arc::new(FakeTelegram::start());
    let setup = BotHost::on(&fake)
        .users(&[USER])
        .poll_timeout("1s")
        .tables(&format!("[history]\nmax_exchanges = {PER_CHAT}\nttl = \"1h\""))
        .setup(vec![
            PluginSpec::chat("chat", guest("chat_fixture")).with("grants = [\"history\"]")
        ]);

    // Messages arrive in small bursts across all chats while the host is
    // killed and restarted.
    let feeder = {
        let fake = fake.clone();
        std::thread::spawn(move || {
            for i in 0..PER_CHAT {
                for chat in 1..=CHATS {
                    fake.send_text(chat, USER, &format!("c{chat}m{i}"));
                }
                std::thread::sleep(Duration::from_millis(if i % 5 == 0 { 120 } else { 15 }));
            }
        })
    };
    let mut rng = fastrand::Rng::with_seed(0x6d697373696f6e);
    let mut host = up(&setup);
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.u64(20..400)));
        host.signal("-KILL");
        host.wait();
        host = up(&setup);
    }
    feeder.join().unwrap();

    let expected = |chat: i64| -> Vec<String> {
        (0..PER_CHAT)
            .map(|i| format!("c{chat}m{i} (message {})", i + 1))
            .collect()
    };
    // Each chat's replies, told apart from those sent twice.
    let replies = |chat: i64| -> (Vec<String>, usize) {
        let received = fake.messages(chat);
        let mut seen = HashSet::new();
        let distinct: Vec<String> = received.iter().filter(|m| seen.insert(*m)).cloned().collect();
        let resent = received.len() - distinct.len();
        (distinct, resent)
    };
    let all = wait_for("every chat's replies", Duration::from_secs(60), || {
        let all: Vec<(Vec<String>, usize)> = (1..=CHATS).map(replies).collect();
        match all.iter().all(|(distinct, _)| distinct.len() >= PER_CHAT) {
            true => Ok(all),
            false => Err(all),
        }
    });
    let mut resent = 0;
    for (chat, (distinct, twice)) in (1..=CHATS).zip(all) {
        resent += twice;
        // Exactly the expected replies, in order: none lost, none from a
        // second call (that would count its own earlier answer), order kept.
        assert_eq!(distinct, expected(chat), "chat {chat}");
    }
    host.signal("-TERM");
    assert!(host.wait().0);

    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    for chat in 1..=CHATS {
        let entries: Vec<(String, String)> = db
            .prepare("SELECT role, text FROM history WHERE conversation = ?1 ORDER BY id")
            .unwrap()
            .query_map([chat.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let recorded: Vec<(String, String)> = (0..PER_CHAT)
            .flat_map(|i| {
                [
                    ("user".to_owned(), format!("c{chat}m{i}")),
                    ("assistant".to_owned(), expected(chat)[i].clone()),
                ]
            })
            .collect();
        assert_eq!(entries, recorded, "chat {chat}: history");
    }
    let unhandled: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM telegram_updates WHERE handled_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unhandled, 0);
    eprintln!(
        "chaos: {} messages, {KILLS} kills, {resent} replies in doubt sent twice",
        CHATS as usize * PER_CHAT
    );
}
