//! Benchmark: a backup of the year-long database (the retention bench's,
//! about 64 MB) while the chat is served. A real host and bot against the
//! fake Bot API on loopback, with the example chat plugin (echo with
//! history), on that database. Prints how long a backup takes and the
//! archive's size, and the chat's latency (update available to reply
//! arrived; median, p99) without a backup and while backups run one after
//! another, in the same run. Aim: p99 while backing up ≤ 1.5× without.

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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat::one_at_a_time;
use measure::median_and_p99;
use measure::year::{file_mb, pruned_year};
use mission::backup::{self, Reason};
use mission::capabilities::notify::telegram::TelegramSender;
use mission::config::Config;
use mission::host::Host;
use mission::triggers::telegram::bot::TelegramBot;
use mission::triggers::Invoker;

const MESSAGES: usize = 300;

#[tokio::main]
async fn main() {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/echo_chat.wasm");
    assert!(wasm.exists(), "{} is missing: run `./dev bench`", wasm.display());
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("data/mission.db");
    std::fs::create_dir_all(database.parent().unwrap()).unwrap();
    drop(pruned_year(&database).await);
    println!("the year-long database: {:.1} MB", file_mb(&database));

    let fake = Arc::new(fake_telegram::FakeTelegram::start());
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.echo]\nworld = \"chat\"\nwasm = {wasm:?}\ngrants = [\"history\"]\n\
             [telegram]\ntoken_env = \"UNUSED\"\napi_url = \"{}\"\nallowed_users = [1]\nhandler = \"echo\"\n",
            fake.url
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let telegram = config.telegram.clone().unwrap();
    let host = Arc::new(Host::open(config.clone()).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let sender = Arc::new(TelegramSender::new(&telegram, "123:bench".into()).unwrap());
    let bot = TelegramBot::new(Invoker::new(host.clone()), telegram, sender);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));

    let without = one_at_a_time(&fake, 1, MESSAGES).await;

    let backing_up = Arc::new(AtomicBool::new(true));
    let backups = {
        let (config, backing_up) = (config.clone(), backing_up.clone());
        let to = dir.path().join("backups");
        tokio::spawn(async move {
            let mut taken = Vec::new();
            while backing_up.load(Ordering::Relaxed) {
                let archive = backup::take(&config, &to, Reason::Asked).await.unwrap();
                std::fs::remove_file(&archive.path).unwrap();
                taken.push(archive);
            }
            taken
        })
    };
    let with = one_at_a_time(&fake, 2, MESSAGES).await;
    backing_up.store(false, Ordering::Relaxed);
    let taken = backups.await.unwrap();
    let _ = stop.send(());
    serving.await.unwrap();

    let took: Vec<Duration> = taken.iter().map(|t| t.took).collect();
    let (took_median, took_max) = (
        median_and_p99(took.clone()).0,
        took.iter().max().copied().unwrap(),
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "a backup: median {:.0} ms, slowest {:.0} ms ({} taken while {MESSAGES} messages were answered); archive {:.1} MB",
        ms(took_median),
        ms(took_max),
        taken.len(),
        taken[0].size as f64 / (1 << 20) as f64
    );
    let (without_median, without_p99) = median_and_p99(without);
    let (with_median, with_p99) = median_and_p99(with);
    println!(
        "chat latency without a backup: median {:.2} ms, p99 {:.2} ms",
        ms(without_median),
        ms(without_p99)
    );
    println!(
        "chat latency while backing up:  median {:.2} ms, p99 {:.2} ms",
        ms(with_median),
        ms(with_p99)
    );
    println!(
        "p99 while backing up / without: {:.2}x (aim: at most 1.5x)",
        with_p99.as_secs_f64() / without_p99.as_secs_f64()
    );
}
