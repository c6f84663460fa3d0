//! Benchmark: the host's overhead per Telegram message. A real host and bot
//! against the fake Bot API server on loopback, with the example chat
//! plugin (echo with history). Prints, for messages sent one at a time, the
//! time from the update being available to the reply arriving (median,
//! p99), beside the plugin call alone measured in the same run; the
//! messages per second when 10 chats send at once; and the same one at a
//! time again with a shadow handler (a second echo) beside the live one.

#[path = "measure/chat.rs"]
mod chat;
#[path = "../../tests/e2e/fake_telegram.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod fake_telegram;
#[path = "../../tests/e2e/loopback.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod loopback;
#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::sync::Arc;
use std::time::Instant;

use chat::one_at_a_time;
use measure::median_and_p99;
use mission::capabilities::notify::telegram::TelegramSender;
use mission::config::Config;
use mission::host::Host;
use mission::plugin::call::Message;
use mission::triggers::telegram::bot::TelegramBot;
use mission::triggers::Invoker;

const SEQUENTIAL: usize = 300;
const CHATS: i64 = 10;
const PER_CHAT: usize = 50;

/// A host for the echo plugin over `fake`, with `shadow` handlers (each a
/// copy of echo), and its bot's Telegram config.
async fn start_host(
    fake: &fake_telegram::FakeTelegram,
    wasm: &std::path::Path,
    shadows: &[&str],
    dir: &std::path::Path,
) -> (Arc<Host>, mission::config::TelegramConfig) {
    let mut plugins = format!("[plugins.echo]\nworld = \"chat\"\nwasm = {wasm:?}\ngrants = [\"history\"]\n");
    for shadow in shadows {
        plugins.push_str(&format!(
            "[plugins.{shadow}]\nworld = \"chat\"\nwasm = {wasm:?}\ngrants = [\"history\"]\n"
        ));
    }
    let config_path = dir.join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n{plugins}\
             [telegram]\ntoken_env = \"UNUSED\"\napi_url = \"{}\"\nallowed_users = [1]\nhandler = \"echo\"\nshadow = {shadows:?}\n",
            fake.url
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let telegram = config.telegram.clone().unwrap();
    let host = Arc::new(Host::open(config).await.unwrap());
    assert!(host.load_all().await.is_empty());
    (host, telegram)
}

#[tokio::main]
async fn main() {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/echo_chat.wasm");
    assert!(wasm.exists(), "{} is missing: run `./dev bench`", wasm.display());
    let fake = fake_telegram::FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let (host, telegram) = start_host(&fake, &wasm, &[], dir.path()).await;

    // The plugin call alone, as the bot makes it.
    let message = |text: &str| Message {
        chat_id: 999,
        sender_id: 1,
        sender_name: "bench".into(),
        text: text.into(),
        sent_at: 0,
        config: Vec::new(),
    };
    let mut alone = Vec::new();
    for i in 0..SEQUENTIAL {
        let started = Instant::now();
        host.chat("echo", &message(&format!("m{i}")), Default::default(), None, None)
            .await
            .unwrap()
            .result
            .unwrap();
        alone.push(started.elapsed());
    }

    let sender = Arc::new(TelegramSender::new(&telegram, "123:bench".into()).unwrap());

    // One Bot API round trip alone (sendMessage to the fake, answered):
    // a bot needs two per message (getUpdates delivering it, the reply).
    let mut round_trip = Vec::new();
    for i in 0..SEQUENTIAL {
        let started = Instant::now();
        sender.send(998, &format!("r{i}"), None).await.unwrap();
        round_trip.push(started.elapsed());
    }
    let bot = TelegramBot::new(Invoker::new(host.clone()), telegram, sender);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));

    let fake = Arc::new(fake);
    let end_to_end = one_at_a_time(&fake, 1, SEQUENTIAL).await;

    let started = Instant::now();
    for round in 0..PER_CHAT {
        for chat in 100..100 + CHATS {
            fake.send_text(chat, 1, &format!("r{round}"));
        }
    }
    let waiter = fake.clone();
    tokio::task::spawn_blocking(move || {
        for chat in 100..100 + CHATS {
            waiter.wait_for_messages(chat, PER_CHAT);
        }
    })
    .await
    .unwrap();
    let burst = started.elapsed();
    stop.send(()).unwrap();
    serving.await.unwrap();

    // Again, on a host of its own, with a shadow handler beside the live one.
    let shadow_dir = tempfile::tempdir().unwrap();
    let (shadow_host, shadow_telegram) = start_host(&fake, &wasm, &["echo-shadow"], shadow_dir.path()).await;
    let shadow_sender = Arc::new(TelegramSender::new(&shadow_telegram, "123:bench".into()).unwrap());
    let bot = TelegramBot::new(Invoker::new(shadow_host.clone()), shadow_telegram, shadow_sender);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));
    let with_shadow = one_at_a_time(&fake, 2, SEQUENTIAL).await;
    stop.send(()).unwrap();
    serving.await.unwrap();

    let (alone_median, alone_p99) = median_and_p99(alone);
    let (e2e_median, e2e_p99) = median_and_p99(end_to_end);
    let (trip_median, _) = median_and_p99(round_trip);
    println!("telegram: echo-chat with history, fake Bot API on loopback");
    println!(
        "  one at a time ({SEQUENTIAL}): update available -> reply received median {e2e_median:.2?}, p99 {e2e_p99:.2?}"
    );
    println!("  the plugin call alone (same run): median {alone_median:.2?}, p99 {alone_p99:.2?}");
    let overhead = e2e_median.saturating_sub(alone_median);
    println!("  host overhead (bot, queue, store, HTTP both ways): median {overhead:.2?}");
    println!(
        "  one Bot API round trip alone (same run): median {trip_median:.2?}; overhead beyond two: {:.2?}",
        overhead.saturating_sub(trip_median * 2)
    );
    println!(
        "  {CHATS} chats x {PER_CHAT} messages at once: {burst:.2?}, {:.0} messages/s",
        (CHATS as usize * PER_CHAT) as f64 / burst.as_secs_f64()
    );
    let (shadow_median, shadow_p99) = median_and_p99(with_shadow);
    println!(
        "  one at a time with a shadow handler: median {shadow_median:.2?}, p99 {shadow_p99:.2?} \
         ({:.2}x the median without, same run)",
        shadow_median.as_secs_f64() / e2e_median.as_secs_f64()
    );
}
