//! Benchmark: webhook deliveries acknowledged per second, and the latency
//! of each acknowledgement (p50, p99), with 16 senders at once on
//! keep-alive connections, against a bare axum handler doing the same
//! durable insert in the same run: a row in a WAL-mode SQLite file, synced
//! (fsync of the log) before the 200. Both group the rows that arrive while
//! a sync runs into the next transaction and sync, so the ratio is what the
//! trigger adds (routing, limits, verification, the delivery record),
//! not a difference in syncing. Then, from the trigger's own records:
//! delivery received → its plugin's run started (p50, p99), with the run
//! lane busy behind the burst, and again for deliveries sent one at a time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mission::config::Config;
use mission::db::Database;
use mission::host::Host;
use mission::triggers::{self, Invoker};
use tokio::sync::{mpsc, oneshot};

const SENDERS: usize = 16;
const PER_SENDER: usize = 250;
const ALONE: usize = 100;
const BODY: &[u8] = br#"{"id":"evt_1","type":"order.created","total":"41.90"}"#;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `SENDERS` senders posting `PER_SENDER` deliveries each to `path` on
/// `address` (delivery ids marked `tag`), each over one keep-alive
/// connection; every latency, sorted, and the wall time.
async fn load(
    address: SocketAddr,
    path: &'static str,
    tag: &'static str,
    signature: Option<String>,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let signature = signature.clone();
        senders.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut client, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let mut latencies = Vec::with_capacity(PER_SENDER);
            for i in 0..PER_SENDER {
                let mut request = http::Request::post(path)
                    .header("host", address.to_string())
                    .header("x-delivery", format!("{tag}-{sender}-{i}"))
                    .header("content-type", "application/json");
                if let Some(signature) = &signature {
                    request = request.header("x-signature", signature);
                }
                let request = request.body(Full::new(Bytes::from_static(BODY))).unwrap();
                let sent = Instant::now();
                let response = client.send_request(request).await.unwrap();
                let status = response.status();
                response.into_body().collect().await.unwrap();
                assert_eq!(status, 200, "{path}");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for sender in senders {
        all.extend(sender.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    (all, wall)
}

/// The bare handler's store: one writer task grouping what arrives while
/// it syncs, as the trigger's does.
fn bare_writer(db: Database) -> mpsc::Sender<(Vec<u8>, oneshot::Sender<()>)> {
    let (sender, mut receiver) = mpsc::channel::<(Vec<u8>, oneshot::Sender<()>)>(4096);
    tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            let mut group = vec![first];
            while let Ok(next) = receiver.try_recv() {
                group.push(next);
            }
            let (bodies, done): (Vec<_>, Vec<_>) = group.into_iter().unzip();
            db.call(move |c| {
                let transaction = c.transaction()?;
                {
                    let mut insert = transaction.prepare_cached(
                        "INSERT INTO bare (received_at, body) VALUES (strftime('%s','now'), ?1)",
                    )?;
                    for body in &bodies {
                        insert.execute([body])?;
                    }
                }
                transaction.commit()
            })
            .await
            .unwrap();
            db.sync().await.unwrap();
            for done in done {
                let _ = done.send(());
            }
        }
    });
    sender
}

async fn bare_handler(address: SocketAddr, db: Database) {
    db.call(|c| {
        c.execute_batch("CREATE TABLE bare (id INTEGER PRIMARY KEY, received_at INTEGER, body BLOB)")
    })
    .await
    .unwrap();
    let writer = bare_writer(db);
    let app = axum::Router::new().route(
        "/hooks/bare",
        axum::routing::post(move |body: Bytes| {
            let writer = writer.clone();
            async move {
                let (done, stored) = oneshot::channel();
                writer.send((body.to_vec(), done)).await.unwrap();
                stored.await.unwrap();
                "stored"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Received → run started, per delivery, from the records.
async fn to_run_started(db: &Database) -> Vec<Duration> {
    let mut waits: Vec<Duration> = db
        .call(|c| {
            let mut statement = c.prepare(
                "SELECT r.started_at - d.received_at FROM webhook_deliveries d
                 JOIN runs r ON r.delivery = d.id AND r.attempt = 1",
            )?;
            let rows = statement.query_map([], |row| row.get::<_, i64>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|ms| Duration::from_millis(ms.max(0) as u64))
        .collect();
    waits.sort();
    waits
}

async fn wait_all_done(db: &Database, count: i64) {
    loop {
        let done: i64 = db
            .call(|c| {
                c.query_row(
                    "SELECT count(*) FROM webhook_deliveries WHERE state = 'done'",
                    [],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        if done >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/hook.wasm");
    assert!(wasm.exists(), "build the guest plugins first: ./dev plugins");
    let hooks = free_port();
    std::env::set_var("MISSION_BENCH_HOOK_SECRET", "bench-secret");
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.hook]\nworld = \"task\"\nwasm = {wasm:?}\n\
             [webhooks]\nlisten = \"{hooks}\"\nmax_backlog = 100000\n\
             [webhooks.orders]\nplugin = \"hook\"\ndelivery_id = \"X-Delivery\"\nrate = 100000\n\
             verify = {{ hmac_sha256 = \"X-Signature\", secret_env = \"MISSION_BENCH_HOOK_SECRET\" }}\n"
        ),
    )
    .unwrap();
    let host = Arc::new(Host::open(Config::load(&config_path).unwrap()).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let (stop, stopped) = tokio::sync::watch::channel(());
    for trigger in triggers::configured(&Invoker::new(host.clone())).all {
        let mut stopped = stopped.clone();
        tokio::spawn(trigger.run(Box::pin(async move {
            let _ = stopped.changed().await;
        })));
    }
    let bare = free_port();
    let bare_db = Database::open(&dir.path().join("bare.db")).unwrap();
    bare_handler(bare, bare_db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signature = hmac_hex(b"bench-secret", BODY);
    // Warm both up, then measure each twice, alternating.
    load(bare, "/hooks/bare", "warm", None).await;
    load(hooks, "/hooks/orders", "warm", Some(signature.clone())).await;
    let mut rows = Vec::new();
    for (round, tag) in [(0, "one"), (1, "two"), (2, "three"), (3, "four")] {
        let (bare_latencies, bare_wall) = load(bare, "/hooks/bare", tag, None).await;
        let (hook_latencies, hook_wall) = load(hooks, "/hooks/orders", tag, Some(signature.clone())).await;
        rows.push((round, bare_latencies, bare_wall, hook_latencies, hook_wall));
    }
    let total = (SENDERS * PER_SENDER) as f64;
    println!("webhook deliveries acknowledged, {SENDERS} senders x {PER_SENDER}, each stored and synced before its 200:");
    for (round, bare, bare_wall, hook, hook_wall) in &rows {
        let (bare_rate, hook_rate) = (total / bare_wall.as_secs_f64(), total / hook_wall.as_secs_f64());
        println!(
            "  round {}: bare axum + insert {:>6.0}/s p50 {:>6.2?} p99 {:>6.2?} | webhook trigger {:>6.0}/s p50 {:>6.2?} p99 {:>6.2?} | p99 ratio {:.2}x, rate ratio {:.2}x",
            round + 1,
            bare_rate,
            percentile(bare, 0.5),
            percentile(bare, 0.99),
            hook_rate,
            percentile(hook, 0.5),
            percentile(hook, 0.99),
            percentile(hook, 0.99).as_secs_f64() / percentile(bare, 0.99).as_secs_f64(),
            hook_rate / bare_rate,
        );
    }
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
    };
    let p99_ratios = rows.iter().map(|(_, bare, _, hook, _)| {
        percentile(hook, 0.99).as_secs_f64() / percentile(bare, 0.99).as_secs_f64()
    });
    let rates = rows
        .iter()
        .map(|(_, _, bare_wall, _, hook_wall)| bare_wall.as_secs_f64() / hook_wall.as_secs_f64());
    let hook_rates = rows
        .iter()
        .map(|(_, _, _, _, hook_wall)| total / hook_wall.as_secs_f64());
    println!(
        "  median of the rounds: webhook trigger {:.0}/s, {:.2}x the bare handler's rate, p99 {:.2}x the bare handler's",
        median(hook_rates.collect()),
        median(rates.collect()),
        median(p99_ratios.collect()),
    );
    // Every acknowledged delivery runs: 5 bursts of SENDERS x PER_SENDER.
    let burst_total = (5 * SENDERS * PER_SENDER) as i64;
    let draining = Instant::now();
    wait_all_done(host.db(), burst_total).await;
    let waits = to_run_started(host.db()).await;
    println!(
        "  received -> run started, behind the bursts ({} runs, one lane): p50 {:?}, p99 {:?}; the lane drained in {:.1?} after the last burst",
        waits.len(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.99),
        draining.elapsed()
    );
    // One at a time: what a single delivery waits for its run.
    host.db()
        .call(|c| c.execute("DELETE FROM webhook_deliveries", []).map(|_| ()))
        .await
        .unwrap();
    let stream = tokio::net::TcpStream::connect(hooks).await.unwrap();
    let (mut client, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for i in 0..ALONE {
        let request = http::Request::post("/hooks/orders")
            .header("host", hooks.to_string())
            .header("x-delivery", format!("alone-{i}"))
            .header("x-signature", &signature)
            .body(Full::new(Bytes::from_static(BODY)))
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        wait_all_done(host.db(), i as i64 + 1).await;
    }
    let waits = to_run_started(host.db()).await;
    println!(
        "  received -> run started, one delivery at a time ({} runs): p50 {} ms, p99 {} ms (the records keep whole milliseconds)",
        waits.len(),
        percentile(&waits, 0.5).as_millis(),
        percentile(&waits, 0.99).as_millis()
    );
    let _ = stop.send(());
}
