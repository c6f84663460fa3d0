//! Messages sent to a bot one at a time through the fake Bot API, each
//! timed from the update being available to the reply arriving (the
//! Telegram and backup benches; declared by each beside `fake_telegram`).

use std::sync::Arc;
use std::time::Duration;

use crate::fake_telegram::FakeTelegram;

/// Sends `count` messages to `chat` one at a time; each one's time from
/// the update being available to the reply arriving.
pub async fn one_at_a_time(fake: &Arc<FakeTelegram>, chat: i64, count: usize) -> Vec<Duration> {
    let mut end_to_end = Vec::new();
    for i in 0..count {
        let sent = std::time::Instant::now();
        fake.send_text(chat, 1, &format!("m{i}"));
        let waiter = fake.clone();
        let at = tokio::task::spawn_blocking(move || {
            waiter.wait_for_messages(chat, i + 1);
            waiter
                .calls()
                .iter()
                .filter(|c| c.method == "sendMessage" && c.chat_id == chat)
                .nth(i)
                .unwrap()
                .at
        })
        .await
        .unwrap();
        end_to_end.push(at - sent);
    }
    end_to_end
}
