//! Benchmark: Claude's answer shown while it is written. A real host and
//! bot against the fake Bot API on loopback, the shipped assistant (which
//! asks with `claude.ask-streamed`) on the `persistent` backend, and the
//! fake `claude` writing 1,000 characters as 20-character deltas at a fixed
//! pace. For the same reply sent whole (`streaming = false`), streamed as a
//! draft in a private chat and as an edited placeholder in a group, all in
//! one run, it prints the time from Claude's first text (the fake notes
//! when it writes it) to the first text visible in the chat (median, p99),
//! and the Bot API calls made per 1,000 characters.

#[path = "../../tests/e2e/fake_telegram.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod fake_telegram;
#[path = "../../tests/e2e/loopback.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod loopback;
#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fake_telegram::FakeTelegram;
use measure::{fake_claude, median_and_p99};
use mission::capabilities::notify::telegram::TelegramSender;
use mission::config::Config;
use mission::host::Host;
use mission::triggers::telegram::bot::TelegramBot;
use mission::triggers::Invoker;

const MESSAGES: usize = 20;
const CHARACTERS: usize = 1000;
const PACE_MS: u64 = 25;
const PRIVATE_CHAT: i64 = 7;
const GROUP_CHAT: i64 = -7;

/// One way of showing the answer.
struct Mode {
    name: &'static str,
    streaming: bool,
    chat: i64,
}

/// What one mode measured.
struct Measured {
    first_visible: Vec<Duration>,
    calls_per_thousand: f64,
}

/// Runs `MESSAGES` paced answers through a host of its own for `mode`.
async fn measure(mode: &Mode, fake: &Arc<FakeTelegram>, claude: &Path, wasm: &Path) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[claude]\ncommand = {claude:?}\nworkdir = \"work\"\nenv = []\n\
             [plugins.assistant]\nworld = \"chat\"\nwasm = {wasm:?}\ngrants = [\"claude\"]\n\
             [plugins.assistant.claude]\nbackends = [\"persistent\"]\n\
             [telegram]\ntoken_env = \"UNUSED\"\napi_url = \"{}\"\nallowed_users = [1]\nhandler = \"assistant\"\n\
             streaming = {}\n",
            fake.url, mode.streaming
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let telegram = config.telegram.clone().unwrap();
    let host = Arc::new(Host::open(config).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let sender = Arc::new(TelegramSender::new(&telegram, "123:bench".into()).unwrap());
    let bot = TelegramBot::new(Invoker::new(host.clone()), telegram, sender);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bot.run(async {
        let _ = stopped.await;
    }));

    // The fake's clock is the wall clock; the calls' is `Instant`.
    let (anchor, anchor_wall) = (Instant::now(), SystemTime::now());
    let chat = mode.chat;
    let calls_before = fake.calls().len();
    let prompt = format!("#long={CHARACTERS} #pace={PACE_MS}");
    // The reply, told from a group's placeholder (posted with the first
    // delta or so) by its length.
    let is_reply = move |c: &fake_telegram::Call| {
        c.method == "sendMessage"
            && c.chat_id == chat
            && c.text
                .as_ref()
                .is_some_and(|t| t.chars().count() > CHARACTERS / 2)
    };
    let mut shown = 0;
    for _ in 0..MESSAGES {
        let sent = Instant::now();
        fake.send_text(chat, 1, &prompt);
        let waiter = fake.clone();
        let reply = tokio::task::spawn_blocking(move || waiter.wait_for(|c| is_reply(c) && c.at >= sent))
            .await
            .unwrap();
        shown += reply.text.unwrap().chars().count();
    }
    stop.send(()).unwrap();
    serving.await.unwrap();

    let trace = std::fs::read_to_string(dir.path().join("work/.fake-claude/first-text.jsonl")).unwrap();
    let first_texts: Vec<Instant> = trace
        .lines()
        .map(|line| {
            let at: serde_json::Value = serde_json::from_str(line).unwrap();
            let at = UNIX_EPOCH + Duration::from_micros(at["at_us"].as_u64().unwrap());
            anchor + at.duration_since(anchor_wall).unwrap()
        })
        .collect();
    assert_eq!(first_texts.len(), MESSAGES, "one first text per answer");
    let calls: Vec<_> = fake.calls()[calls_before..]
        .iter()
        .filter(|c| c.chat_id == chat)
        .cloned()
        .collect();
    let visible = |method: &str| matches!(method, "sendMessage" | "sendMessageDraft" | "editMessageText");
    let first_visible = first_texts
        .iter()
        .map(|first| {
            let seen = calls
                .iter()
                .filter(|c| visible(&c.method) && c.at >= *first)
                .map(|c| c.at)
                .min()
                .expect("no text was shown after Claude's first");
            seen - *first
        })
        .collect();
    let api_calls = calls.iter().filter(|c| c.method != "sendChatAction").count();
    Measured {
        first_visible,
        calls_per_thousand: api_calls as f64 * 1000.0 / shown as f64,
    }
}

#[tokio::main]
async fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let claude = fake_claude(&root);
    let wasm = root.join("plugins/target/wasm32-wasip2/release/assistant.wasm");
    assert!(wasm.exists(), "{} is missing: run `./dev bench`", wasm.display());
    let fake = Arc::new(FakeTelegram::start());
    let modes = [
        Mode {
            name: "whole (streaming = false)",
            streaming: false,
            chat: PRIVATE_CHAT,
        },
        Mode {
            name: "streamed, private chat (drafts)",
            streaming: true,
            chat: PRIVATE_CHAT + 1,
        },
        Mode {
            name: "streamed, group (edited placeholder)",
            streaming: true,
            chat: GROUP_CHAT,
        },
    ];
    let writing = Duration::from_millis(PACE_MS) * CHARACTERS.div_ceil(20) as u32;
    println!(
        "streaming: the assistant on the persistent backend, {MESSAGES} answers of {CHARACTERS} characters \
         written over {writing:.2?} each, fake Bot API on loopback"
    );
    let mut baseline = None;
    for mode in &modes {
        let measured = measure(mode, &fake, &claude, &wasm).await;
        let (median, p99) = median_and_p99(measured.first_visible);
        let ratio = baseline.map_or(String::new(), |(whole, calls): (Duration, f64)| {
            format!(
                " ({:.3}x the whole reply's wait, {:.1}x its calls)",
                median.as_secs_f64() / whole.as_secs_f64(),
                measured.calls_per_thousand / calls
            )
        });
        println!(
            "  {:<38} Claude's first text -> first text in the chat: median {median:.2?}, p99 {p99:.2?}; \
             {:.1} Bot API calls per 1,000 characters{ratio}",
            mode.name, measured.calls_per_thousand
        );
        baseline.get_or_insert((median, measured.calls_per_thousand));
    }
}
