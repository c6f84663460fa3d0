//! Benchmark: an allowed GET through the host from a plugin (the `fetch`
//! fixture: a fresh instance, `wasi:http` through the host's policy, a new
//! connection, the body read) against the same GET made by the host process
//! directly (hyper, a new connection each time, the body read), both to a
//! server on loopback, in one run. Prints medians, p99s and the difference.

#[path = "../../tests/e2e/loopback.rs"]
#[allow(dead_code, reason = "shared with the tests, which use more of it")]
mod loopback;
#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use measure::median_and_p99;
use mission::capabilities::http::records::Origin;
use mission::config::Config;
use mission::host::Host;
use mission::plugin::call::Invocation;

const REQUESTS: usize = 300;

/// `GET url` with hyper on a fresh connection, the body read whole.
async fn direct_get(url: &http::Uri) -> usize {
    let address = format!("{}:{}", url.host().unwrap(), url.port_u16().unwrap());
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(url.path())
        .header("host", url.authority().unwrap().as_str())
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    response.into_body().collect().await.unwrap().to_bytes().len()
}

#[tokio::main]
async fn main() {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/fetch.wasm");
    assert!(wasm.exists(), "{} is missing: run `./dev bench`", wasm.display());
    let server = loopback::serve(|_request| async {
        let body = "x".repeat(1024);
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    });
    let url = format!("{server}/item");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mission.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"data\"\n[plugins.fetch]\nworld = \"task\"\nwasm = {wasm:?}\ngrants = [\"http\"]\n\
             config = {{ url = \"{url}\", fail_on_error = \"yes\" }}\n[plugins.fetch.http]\nallowed = [\"{server}\"]\n"
        ),
    )
    .unwrap();
    let host = Arc::new(Host::open(Config::load(&config_path).unwrap()).await.unwrap());
    assert!(host.load_all().await.is_empty());
    let plugin = host.registry().get("fetch").unwrap();
    let invocation = Invocation {
        name: "fetch".into(),
        scheduled_at: 0,
        attempt: 1,
        config: plugin.config.values.clone(),
    };
    let uri: http::Uri = url.parse().unwrap();

    let mut direct = Vec::with_capacity(REQUESTS);
    let mut through_plugin = Vec::with_capacity(REQUESTS);
    // Interleaved, so both see the same machine.
    for _ in 0..REQUESTS {
        let started = Instant::now();
        assert_eq!(direct_get(&uri).await, 1024);
        direct.push(started.elapsed());

        let started = Instant::now();
        let report = plugin
            .run_task(
                host.services(),
                &invocation,
                Default::default(),
                Duration::from_secs(10),
                Origin::Unrecorded,
            )
            .await
            .unwrap();
        through_plugin.push(started.elapsed());
        let summary = report.result.unwrap();
        assert!(summary.starts_with("status=200|bytes=1024"), "{summary}");
    }
    let (direct_median, direct_p99) = median_and_p99(direct);
    let (plugin_median, plugin_p99) = median_and_p99(through_plugin);
    println!("http: GET of 1 KiB from a server on loopback, {REQUESTS} each, interleaved");
    println!("  the host directly (hyper, new connection): median {direct_median:.2?}, p99 {direct_p99:.2?}");
    println!(
        "  from a plugin (fresh instance, policy, record): median {plugin_median:.2?}, p99 {plugin_p99:.2?}"
    );
    println!(
        "  the plugin path adds: median {:.2?} [{:.1}x]",
        plugin_median.saturating_sub(direct_median),
        plugin_median.as_secs_f64() / direct_median.as_secs_f64()
    );
}
