//! `[alerts] ping`: the host's heartbeat, for a monitor outside that can
//! tell when it stops (Healthchecks.io, or a self-hosted instance) — since
//! a host cannot report its own death. `URL/start` when the host comes
//! up; then every `every`, the URL itself while no schedule is failing
//! past its alert threshold, or `URL/fail` with a short body naming the
//! failing ones. Sent through the host's outbound HTTP stack, and recorded
//! as its requests are.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::capabilities::http::host_request::{send_from_host, HostRequest};
use crate::config::alerts::PingConfig;
use crate::host::Host;
use crate::triggers::schedule::alerts::failing;

/// How long one ping may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How often a host without a ping looks again (the config may gain one).
const IDLE: Duration = Duration::from_secs(30);

/// Pings by the config of the moment until `shutdown`.
pub async fn keep_pinging(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut started = false;
    loop {
        let ping = host.config().alerts.as_ref().and_then(|a| a.ping.clone());
        let wait = match ping {
            Some(ping) => {
                let (suffix, body) = match started {
                    false => ("/start", String::new()),
                    true => health(&host).await,
                };
                started = true;
                send(&host, &ping, suffix, body).await;
                ping.every
            }
            None => IDLE,
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The ping for the host's state: `""` (healthy) or `"/fail"` with what fails.
async fn health(host: &Host) -> (&'static str, String) {
    let told = failing(host.db())
        .await
        .map(|all| all.into_iter().filter(|f| f.told).collect::<Vec<_>>());
    match told {
        Ok(failing) if failing.is_empty() => ("", String::new()),
        Ok(failing) => {
            let names: Vec<String> = failing
                .iter()
                .map(|f| format!("{} ({} failed runs in a row)", f.schedule, f.failures))
                .collect();
            ("/fail", format!("failing: {}", names.join(", ")))
        }
        Err(e) => ("/fail", format!("the host cannot read its records: {e:#}")),
    }
}

async fn send(host: &Host, ping: &PingConfig, suffix: &str, body: String) {
    let mut url = ping.url.clone();
    if !suffix.is_empty() {
        let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    let request = HostRequest {
        method: http::Method::POST,
        url: &url,
        headers: vec![(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body: Bytes::from(body),
        timeout: TIMEOUT,
    };
    match send_from_host(host.db(), request).await.map(|r| r.status) {
        Ok(status) if (200..300).contains(&status) => tracing::debug!(%url, status, "pinged"),
        Ok(status) => tracing::warn!(%url, status, "the ping was not taken"),
        Err(e) => tracing::warn!(%url, "the ping failed: {e}"),
    }
}
