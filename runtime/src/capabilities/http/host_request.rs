//! Requests the host sends on its own behalf (the `[alerts] ping`, the
//! transcription endpoint), through the same stack as a plugin's: resolved
//! once, sent to the checked address with the host's `Host` header, under a
//! deadline, recorded (as plugin `(host)`; never their headers, which may
//! hold a key). The URL comes from the config, which names its host exactly,
//! so a self-hosted service on the local network may be reached.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use tokio::time::Instant;

use super::records::{self, HttpRequestRecord};
use super::{checked_addresses, resolve, send, Target};
use crate::db::Database;

/// The most of a response's body the host reads.
pub const MAX_RESPONSE_BODY: usize = 1 << 20;

/// A request the host sends: the config names its URL and headers.
pub struct HostRequest<'a> {
    /// `POST`, for both of today's uses.
    pub method: http::Method,
    /// Where it goes.
    pub url: &'a url::Url,
    /// Headers beyond the user agent (`Content-Type`, a key).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// What it sends.
    pub body: Bytes,
    /// How long it may take, answer included.
    pub timeout: Duration,
}

/// What came back.
pub struct HostResponse {
    /// The status code.
    pub status: u16,
    /// The body, up to `MAX_RESPONSE_BODY`.
    pub body: Bytes,
}

/// The plugin name the host's own requests are recorded under (no plugin
/// can be named so).
pub const RECORDED_AS: &str = "(host)";

/// Sends `request`; what came back, or why nothing did.
pub async fn send_from_host(db: &Database, request: HostRequest<'_>) -> Result<HostResponse, String> {
    let started = Instant::now();
    let HostRequest {
        method,
        url,
        headers,
        body,
        timeout,
    } = request;
    let length = body.len() as u64;
    let mut builder = http::Request::builder().method(method).uri(url.as_str()).header(
        http::header::USER_AGENT,
        concat!("mission-control/", env!("CARGO_PKG_VERSION")),
    );
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder
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
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY);
        let received = tokio::time::timeout_at(deadline, body.collect()).await;
        driver.abort();
        let body = match received {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(e)) => return Err(format!("reading the {status} response: {e}")),
            Err(_) => return Err(format!("the {status} response did not finish within {timeout:?}")),
        };
        Ok::<_, String>(HostResponse { status, body })
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
        status: outcome.as_ref().ok().map(|response| response.status),
        bytes_out: length,
        bytes_in: outcome.as_ref().map_or(0, |response| response.body.len() as u64),
        ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        denied: false,
        error: outcome.as_ref().err().cloned(),
    };
    if let Err(e) = records::record(db, record).await {
        tracing::warn!("failed to record the host's request: {e:#}");
    }
    outcome
}
