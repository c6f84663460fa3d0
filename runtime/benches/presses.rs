//! Benchmark: a press on a plugin's button, to its run starting. A real
//! host, bot and presses trigger against the fake Bot API on loopback, with
//! the `asker` fixture posting its message (three buttons) and run by each
//! press. Prints, for presses one at a time, the time from the press being
//! available to the host marking the message (which it does as the run
//! starts), beside one Bot API round trip measured in the same run: a press
//! takes three of them (the update delivered, the press answered, the mark
//! sent), and what is left is the host's own (store, sync, claim).

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

use measure::median_and_p99;
use mission::capabilities::notify::telegram::TelegramSender;
use mission::config::Config;
use mission::host::runs::StartedBy;
use mission::host::Host;
use mission::triggers::telegram::bot::TelegramBot;
use mission::triggers::{presses, Invoker};

const PRESSES: usize = 100;
const TOKEN_ENV: &str = "MISSION_BENCH_PRESS_TOKEN";

#[tokio::main]
async fn main() {
    let guests =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release");
    let (echo, asker) = (guests.join("echo_chat.wasm"), guests.join("asker.wasm"));
    assert!(
        asker.exists(),
        "{} is missing: run `./dev bench`",
        asker.display()
    );
    let fake = Arc::new(fake_telegram::FakeTelegram::start());
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n\
             [plugins.echo]\nworld = \"chat\"\nwasm = {echo:?}\n\
             [plugins.asker]\nworld = \"task\"\nwasm = {asker:?}\ngrants = [\"notify\"]\nconfig = {{ chat = \"1\" }}\n\
             [plugins.asker.notify]\nchats = [1]\n\
             [telegram]\ntoken_env = \"{TOKEN_ENV}\"\napi_url = \"{}\"\nallowed_users = [1]\nhandler = \"echo\"\n",
            fake.url
        ),
    )
    .unwrap();
    std::env::set_var(TOKEN_ENV, "123:bench");
    let config = Config::load(&config_path).unwrap();
    let telegram = config.telegram.clone().unwrap();
    let host = Arc::new(Host::open(config).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let sender = Arc::new(TelegramSender::new(&telegram, "123:bench".into()).unwrap());

    // One Bot API round trip alone.
    let mut round_trip = Vec::new();
    for i in 0..PRESSES {
        let started = Instant::now();
        sender.send(998, &format!("r{i}"), None).await.unwrap();
        round_trip.push(started.elapsed());
    }

    let invoker = Invoker::new(host.clone());
    let bot = TelegramBot::new(invoker.clone(), telegram, sender);
    let trigger = presses::trigger(&invoker).unwrap();
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_presses, presses_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot.run(async {
        let _ = bot_stopped.await;
    }));
    let pressing = tokio::spawn(trigger.run(Box::pin(async {
        let _ = presses_stopped.await;
    })));

    let mut to_mark = Vec::new();
    for _ in 0..PRESSES {
        let record = host.run_task("asker", StartedBy::Manual).await.unwrap();
        let posted: serde_json::Value = serde_json::from_str(record.summary.as_deref().unwrap()).unwrap();
        let message = posted["posted"].as_i64().unwrap();
        let waiter = fake.clone();
        let data = tokio::task::spawn_blocking(move || {
            waiter
                .wait_for(|c| c.method == "sendMessage" && c.message_id == Some(message))
                .button("Mark paid")
        })
        .await
        .unwrap();
        let pressed = Instant::now();
        fake.press(1, 1, message, &data);
        let waiter = fake.clone();
        let marked = tokio::task::spawn_blocking(move || {
            waiter
                .wait_for(|c| c.method == "editMessageText" && c.message_id == Some(message))
                .at
        })
        .await
        .unwrap();
        to_mark.push(marked - pressed);
    }
    stop_bot.send(()).unwrap();
    stop_presses.send(()).unwrap();
    serving.await.unwrap();
    pressing.await.unwrap();

    let runs = host
        .db()
        .call(|c| {
            c.query_row(
                "SELECT count(*) FROM runs WHERE trigger = 'press' AND outcome = 'succeeded'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(runs as usize, PRESSES, "each press ran once");
    let (mark_median, mark_p99) = median_and_p99(to_mark);
    let (trip_median, _) = median_and_p99(round_trip);
    println!("presses: a press on a plugin's button to its run starting, fake Bot API on loopback ({PRESSES} presses)");
    println!(
        "  press available -> message marked as the run starts: median {mark_median:.2?}, p99 {mark_p99:.2?}"
    );
    println!(
        "  one Bot API round trip alone (same run): median {trip_median:.2?}; beyond three of them: median {:.2?}",
        mark_median.saturating_sub(trip_median * 3)
    );
}
