//! Requests the host sends on its own behalf (the `[alerts] ping`), through
//! the same stack as a plugin's: resolved once, sent to the checked address
//! with the host's `Host` header, under a deadline, recorded (as plugin
//! `(host)`). The URL comes from the config, which names its host exactly,
//! so a self-hosted monitor on the local network may be reached.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;

use super::records::{self, HttpRequestRecord};
use super::{checked_addresses, resolve, send, Target};
use crate::db::Database;

/// The plugin name the host's own requests are recorded under (no plugin
/// can be named so).
pub const RECORDED_AS: &str = "(host)";

/// Sends `method` `url` with `body`; the response status, or why none came.
pub async fn send_from_host(
    db: &Database,
    method: http::Method,
    url: &url::Url,
    body: Bytes,
    timeout: Duration,
) -> Result<u16, String> {
    let started = Instant::now();
    let length = body.len() as u64;
    let request = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(
            http::header::USER_AGENT,
            concat!("mission-control/", env!("CARGO_PKG_VERSION")),
        )
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(body).map_err(|never| match never {}).boxed_unsync())
        .map_err(|e| format!("`{url}` is not a request one can send: {e}"))?;
    let target = Target::of(&request);
    let deadline = started + timeout;
    let sent = async {
        let resolved = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, target.port)],
            Err(_) => resolve(&target.host, target.port)
                .await
                .map_err(|e| e.to_string())?,
        };
        let addresses = checked_addresses(&target.host, &resolved, true)?;
        let mut request = request;
        let host = http::HeaderValue::try_from(target.host_header()).map_err(|e| e.to_string())?;
        request.headers_mut().insert(http::header::HOST, host);
        let (response, driver) = send::send(request, &addresses, &target.host, deadline)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let received = tokio::time::timeout_at(deadline, response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map_or(0, |body| body.to_bytes().len() as u64);
        driver.abort();
        Ok::<_, String>((status, received))
    };
    let outcome = sent.await;
    let record = HttpRequestRecord {
        at: Utc::now(),
        plugin: RECORDED_AS.to_owned(),
        run: None,
        chat: None,
        method: target.method.clone(),
        origin: target.origin(),
        path: target.path.clone(),
        status: outcome.as_ref().ok().map(|(status, _)| *status),
        bytes_out: length,
        bytes_in: outcome.as_ref().map_or(0, |(_, received)| *received),
        ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        denied: false,
        error: outcome.as_ref().err().cloned(),
    };
    if let Err(e) = records::record(db, record).await {
        tracing::warn!("failed to record the host's request: {e:#}");
    }
    outcome.map(|(status, _)| status)
}
