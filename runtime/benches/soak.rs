//! Benchmark: the host's memory under sustained load, over minutes. The
//! real `mission up` binary serves everything at once: 20 messages a second
//! in 5 chats through the fake Bot API (the echo handler with history, and
//! a shadow), a schedule every minute, the status page read every 2 s, and
//! the live plugin's `.wasm` rewritten every 15 s (a new hash each time, so
//! each is a real reload). Its resident memory and the heap glibc says it
//! has handed out (from the page) are printed over time, for the host as it
//! ships (malloc arenas capped) and, in the same run, with glibc's default
//! arenas (eight per core) as the baseline.
//!
//! `MISSION_SOAK_SECONDS` sets each run's length (default 240);
//! `MISSION_SOAK_ARENAS`, a comma-separated list of `MALLOC_ARENA_MAX`
//! values, adds runs with those.

#[path = "../../tests/e2e/fake_telegram.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod fake_telegram;
#[path = "../../tests/e2e/loopback.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod loopback;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;

const CHATS: i64 = 5;
const MESSAGE_EVERY: Duration = Duration::from_millis(50);
const PAGE_EVERY: Duration = Duration::from_secs(2);
const REWRITE_EVERY: Duration = Duration::from_secs(15);
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// What comes before this is warm-up: caches filling, the first reloads.
const WARM_UP: Duration = Duration::from_secs(60);

/// One memory reading of the host.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    rss: u64,
    heap: Option<u64>,
}

/// What one run measured.
struct Soak {
    label: String,
    samples: Vec<Sample>,
    sent: usize,
    answered: usize,
}

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/target/wasm32-wasip2/release")
}

/// `component` with a custom section appended: the same plugin, another
/// hash.
fn with_custom_section(component: &[u8], n: u32) -> Vec<u8> {
    let name = b"soak";
    let payload = n.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut bytes = component.to_vec();
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    bytes
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// `/api/status`'s heap figure, reading the whole page as a user's
/// browser would.
fn page_heap(page: SocketAddr) -> Option<u64> {
    let mut stream = TcpStream::connect(page).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        stream,
        "GET /api/status HTTP/1.1\r\nHost: {page}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let body = raw.split_once("\r\n\r\n")?.1;
    let status: serde_json::Value = serde_json::from_str(body).ok()?;
    status["memory"]["heap_in_use_bytes"].as_u64()
}

/// Starts the host in `dir` with `arenas` (none: as it ships); returns it
/// and its page's address, its log drained in the background.
fn start(dir: &Path, arenas: Option<&str>) -> (Child, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mission"));
    command
        .args(["up", "--config"])
        .arg(dir.join("mission.toml"))
        .env("MISSION_SOAK_BOT", "123:soak")
        .env_remove("MALLOC_ARENA_MAX")
        .stderr(Stdio::piped());
    if let Some(arenas) = arenas {
        command.env("MALLOC_ARENA_MAX", arenas);
    }
    let mut child = command.spawn().unwrap();
    let (found, page) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("status page on http://").nth(1) {
                let _ = found.send(rest.trim_end_matches('/').to_owned());
            }
        }
    });
    let page = page
        .recv_timeout(Duration::from_secs(60))
        .expect("the host did not start");
    (child, page.parse().unwrap())
}

fn soak(label: &str, arenas: Option<&str>, length: Duration) -> Soak {
    let dir = tempfile::tempdir().unwrap();
    let echo = std::fs::read(plugins_dir().join("echo_chat.wasm")).expect("run `./dev bench`");
    let live = dir.path().join("echo.wasm");
    std::fs::write(&live, &echo).unwrap();
    let fake = FakeTelegram::start();
    std::fs::write(
        dir.path().join("mission.toml"),
        format!(
            "data_dir = \"data\"\n\
             [web]\nlisten = \"127.0.0.1:0\"\n\
             [plugins.echo]\nworld = \"chat\"\nwasm = {live:?}\ngrants = [\"history\"]\n\
             [plugins.echo-shadow]\nworld = \"chat\"\nwasm = {:?}\ngrants = [\"history\"]\n\
             [plugins.briefing]\nworld = \"task\"\nwasm = {:?}\ngrants = [\"state\"]\n\
             [telegram]\ntoken_env = \"MISSION_SOAK_BOT\"\napi_url = \"{}\"\nallowed_users = [1]\n\
             handler = \"echo\"\nshadow = [\"echo-shadow\"]\npoll_timeout = \"2s\"\n",
            plugins_dir().join("echo_chat.wasm"),
            plugins_dir().join("briefing.wasm"),
            fake.url
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("schedules")).unwrap();
    std::fs::write(
        dir.path().join("schedules/minutely.toml"),
        "plugin = \"briefing\"\ncron = \"* * * * *\"\n",
    )
    .unwrap();
    let (mut host, page) = start(dir.path(), arenas);
    let pid = host.id();

    let started = Instant::now();
    let (mut sent, mut rewrites) = (0usize, 0u32);
    let (mut next_page, mut next_rewrite, mut next_sample) = (started, started + REWRITE_EVERY, started);
    let mut heap = None;
    let mut samples = Vec::new();
    while started.elapsed() < length {
        let now = Instant::now();
        fake.send_text(1 + (sent as i64 % CHATS), 1, &format!("soak message {sent}"));
        sent += 1;
        if now >= next_page {
            heap = page_heap(page).or(heap);
            next_page += PAGE_EVERY;
        }
        if now >= next_rewrite {
            rewrites += 1;
            // Written beside and renamed, as `mission build` does.
            let next = dir.path().join("echo.wasm.new");
            std::fs::write(&next, with_custom_section(&echo, rewrites)).unwrap();
            std::fs::rename(&next, &live).unwrap();
            next_rewrite += REWRITE_EVERY;
        }
        if now >= next_sample {
            if let Some(rss) = rss_of(pid) {
                samples.push(Sample {
                    at: started.elapsed(),
                    rss,
                    heap,
                });
            }
            next_sample += SAMPLE_EVERY;
        }
        std::thread::sleep(MESSAGE_EVERY.saturating_sub(now.elapsed()));
    }
    // Every message answered before the host stops.
    let answered = |fake: &FakeTelegram| (1..=CHATS).map(|chat| fake.messages(chat).len()).sum::<usize>();
    let drain = Instant::now() + Duration::from_secs(60);
    while answered(&fake) < sent && Instant::now() < drain {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signals the host we started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let _ = host.wait();
    Soak {
        label: label.to_owned(),
        samples,
        sent,
        answered: answered(&fake),
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// RSS growth after warm-up, in MB per minute (a least-squares slope).
fn growth_per_minute(samples: &[Sample]) -> f64 {
    let warm: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at >= WARM_UP)
        .map(|s| (s.at.as_secs_f64() / 60.0, s.rss as f64 / 1e6))
        .collect();
    if warm.len() < 2 {
        return f64::NAN;
    }
    let n = warm.len() as f64;
    let (mx, my) = (
        warm.iter().map(|p| p.0).sum::<f64>() / n,
        warm.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = warm.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let variance: f64 = warm.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    covariance / variance
}

fn main() {
    let length = Duration::from_secs(
        std::env::var("MISSION_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(240),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let glibc_default = (8 * cores).to_string();
    let mut runs: Vec<(String, Option<String>)> = vec![
        (
            format!("glibc default ({glibc_default} arenas)"),
            Some(glibc_default),
        ),
        ("as shipped (1 arena)".to_owned(), None),
    ];
    if let Ok(extra) = std::env::var("MISSION_SOAK_ARENAS") {
        for arenas in extra.split(',').filter(|a| !a.is_empty()) {
            runs.push((format!("{arenas} arenas"), Some(arenas.to_owned())));
        }
    }
    println!(
        "soak: {} s a run, {} messages/s in {CHATS} chats with a shadow, a schedule a minute, \
         the page every {} s, a reload every {} s",
        length.as_secs(),
        Duration::from_secs(1).as_millis() / MESSAGE_EVERY.as_millis(),
        PAGE_EVERY.as_secs(),
        REWRITE_EVERY.as_secs()
    );
    let soaks: Vec<Soak> = runs
        .iter()
        .map(|(label, arenas)| soak(label, arenas.as_deref(), length))
        .collect();
    for soak in &soaks {
        println!(
            "\n{}: {} messages sent, {} answered",
            soak.label, soak.sent, soak.answered
        );
        println!("{:>6} {:>10} {:>16}", "s", "RSS MB", "heap in use MB");
        for sample in &soak.samples {
            println!(
                "{:>6} {:>10} {:>16}",
                sample.at.as_secs(),
                mb(sample.rss),
                sample.heap.map_or("-".to_owned(), mb)
            );
        }
    }
    println!(
        "\n{:<28} {:>12} {:>10} {:>20}",
        "", "after warm-up", "at end", "growth MB/min"
    );
    for soak in &soaks {
        let warm = soak.samples.iter().find(|s| s.at >= WARM_UP);
        let last = soak.samples.last();
        println!(
            "{:<28} {:>12} {:>10} {:>20.2}",
            soak.label,
            warm.map_or("-".to_owned(), |s| mb(s.rss)),
            last.map_or("-".to_owned(), |s| mb(s.rss)),
            growth_per_minute(&soak.samples)
        );
    }
    if let [baseline, shipped, ..] = &soaks[..] {
        let end = |s: &Soak| s.samples.last().map_or(f64::NAN, |s| s.rss as f64);
        println!(
            "\nas shipped / glibc default at the end: {:.2}",
            end(shipped) / end(baseline)
        );
    }
}
