//! `wasi:http/outgoing-handler`: outbound HTTP, deny by default. The host
//! decides each request a plugin sends ([`OutboundHttp`], wasmtime's
//! `WasiHttpHooks`): granted, to an allowed origin, within the call's request
//! count; then resolved, and refused if the name leads to a loopback,
//! private, link-local or unspecified address the allowlist does not name
//! exactly. The host adds the configured secret header for that exact
//! origin (the plugin never sees it), sets `Host` itself (never with a
//! user's name or password), sends to the checked address ([`send`]), caps
//! the response body while it streams, and records the request
//! ([`records`]). Redirects are not followed: the plugin sees the 3xx, and a
//! request it makes to the new location is checked like any other (and gets
//! no secret unless that host has one).

mod body;
pub mod host_request;
pub mod records;
mod send;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::BodyExt;
use tokio::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::http::HttpGrant;
use crate::config::PluginName;
use crate::db::Database;
use crate::wasm::output::OutputCapture;
use records::{HttpRequestRecord, Origin};

/// How long resolving a name may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The outbound HTTP of one call of one plugin.
pub struct OutboundHttp {
    plugin: PluginName,
    grant: Option<Arc<HttpGrant>>,
    db: Database,
    origin: Origin,
    /// The call's own deadline: no request outlives it.
    deadline: Instant,
    /// Requests sent in this call so far.
    sent: u32,
    /// Where the lines its requests cause are logged, within its log rate.
    output: OutputCapture,
}

impl OutboundHttp {
    /// Outbound HTTP for `plugin` under `grant` (none: every request is
    /// denied), recorded in `db`, what it causes logged through `output`.
    /// [`arm`](Self::arm) it for each call.
    pub fn new(
        plugin: PluginName,
        grant: Option<Arc<HttpGrant>>,
        db: Database,
        output: OutputCapture,
    ) -> OutboundHttp {
        OutboundHttp {
            plugin,
            grant,
            db,
            origin: Origin::Unrecorded,
            deadline: Instant::now(),
            sent: 0,
            output,
        }
    }

    /// Starts a call that ends at `deadline`, made for `origin`: the request
    /// count starts again.
    pub fn arm(&mut self, deadline: Instant, origin: Origin) {
        self.deadline = deadline;
        self.origin = origin;
        self.sent = 0;
    }

    /// The grant and whether its pattern names the host exactly, or why the
    /// request is refused.
    fn admit(&self, target: &Target) -> Result<(Arc<HttpGrant>, bool), String> {
        let Some(grant) = &self.grant else {
            return Err(format!("plugin `{}` has no `http` grant", self.plugin));
        };
        let Some(pattern) = grant.allowing(&target.scheme, &target.host, target.port) else {
            return Err(format!(
                "{} is not in plugins.{}.http.allowed",
                target.origin(),
                self.plugin
            ));
        };
        if self.sent >= grant.max_requests {
            return Err(format!(
                "plugin `{}` has sent its {} requests for this call (plugins.{}.http.max_requests)",
                self.plugin, grant.max_requests, self.plugin
            ));
        }
        Ok((grant.clone(), pattern.names_exactly(&target.host)))
    }

    fn record_base(&self, target: &Target) -> HttpRequestRecord {
        let (run, chat) = match self.origin {
            Origin::Run(id) => (Some(id), None),
            Origin::Chat(id) => (None, Some(id)),
            Origin::Unrecorded => (None, None),
        };
        HttpRequestRecord {
            at: Utc::now(),
            plugin: self.plugin.to_string(),
            run,
            chat,
            method: target.method.clone(),
            origin: target.origin(),
            path: target.path.clone(),
            status: None,
            bytes_out: 0,
            bytes_in: 0,
            ms: 0,
            denied: false,
            error: None,
        }
    }
}

type Sending = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sending {
        let target = Target::of(&request);
        let mut record = self.record_base(&target);
        let recorder = Recorder {
            db: self.db.clone(),
            started: Instant::now(),
        };
        let (grant, exact) = match self.admit(&target) {
            Ok(admitted) => admitted,
            Err(reason) => {
                self.output.caused(
                    tracing::Level::WARN,
                    "denied HTTP requests",
                    format_args!("HTTP request to {} denied: {reason}", target.origin()),
                );
                record.denied = true;
                record.error = Some(reason);
                recorder.finish(record);
                body::drain(request.into_body());
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
        };
        self.sent += 1;
        let deadline = self.deadline.min(Instant::now() + grant.timeout);
        let output = self.output.clone();
        Box::new(async move {
            let sent = Arc::new(AtomicU64::new(0));
            match dispatch(request, &target, &grant, exact, deadline, sent.clone()).await {
                Ok((response, driver)) => {
                    record.status = Some(response.status().as_u16());
                    let limit = grant.max_response;
                    let response = response.map(|incoming| {
                        CappedBody {
                            incoming,
                            limit,
                            received: 0,
                            sent,
                            record: Some(record),
                            recorder: Some(recorder),
                            driver,
                        }
                        .boxed_unsync()
                    });
                    Ok((
                        response,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                }
                Err(Refusal::Denied(reason)) => {
                    output.caused(
                        tracing::Level::WARN,
                        "denied HTTP requests",
                        format_args!("HTTP request to {} denied: {reason}", target.origin()),
                    );
                    record.denied = true;
                    record.error = Some(reason);
                    recorder.finish(record);
                    Err(Error::HttpRequestDenied)
                }
                Err(Refusal::Failed(error)) => {
                    output.caused(
                        tracing::Level::INFO,
                        "failed HTTP requests",
                        format_args!("HTTP request to {} failed: {error}", target.origin()),
                    );
                    record.error = Some(error.to_string());
                    record.bytes_out = sent.load(Ordering::Relaxed);
                    recorder.finish(record);
                    Err(error)
                }
            }
        })
    }
}

/// Why an admitted request was not sent, or failed.
enum Refusal {
    /// The host refused it after resolving (a private address).
    Denied(String),
    /// It was sent, or tried, and failed.
    Failed(Error),
}

/// Resolves, checks the address, adds the secret, and sends.
async fn dispatch(
    request: http::Request<WasiBody>,
    target: &Target,
    grant: &HttpGrant,
    exact: bool,
    deadline: Instant,
    sent: Arc<AtomicU64>,
) -> Result<send::Sent, Refusal> {
    let resolved = match target.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, target.port)],
        Err(_) => resolve(&target.host, target.port)
            .await
            .map_err(Refusal::Failed)?,
    };
    let addresses = match checked_addresses(&target.host, &resolved, exact) {
        Ok(addresses) => addresses,
        Err(reason) => {
            body::drain(request.into_body());
            return Err(Refusal::Denied(reason));
        }
    };
    let mut request = request.map(|body| body::forward(body, sent));
    let host = http::HeaderValue::try_from(target.host_header())
        .map_err(|_| Refusal::Failed(Error::HttpRequestUriInvalid))?;
    request.headers_mut().insert(http::header::HOST, host);
    if let Some(secret) = grant.secret_for(&target.scheme, &target.host, target.port) {
        let value = std::env::var(&secret.env).map_err(|_| {
            tracing::error!(host = %target.host, env = %secret.env, "the secret's environment variable is not set");
            Refusal::Failed(Error::ConfigurationError)
        })?;
        let mut value = http::HeaderValue::try_from(format!("{}{value}", secret.prefix))
            .map_err(|_| Refusal::Failed(Error::ConfigurationError))?;
        value.set_sensitive(true);
        let name = http::HeaderName::try_from(secret.header.as_str())
            .map_err(|_| Refusal::Failed(Error::ConfigurationError))?;
        request.headers_mut().insert(name, value);
    }
    send::send(request, &addresses, &target.host, deadline)
        .await
        .map_err(Refusal::Failed)
}

/// The addresses `host` resolves to, by the system's resolver.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|_| Error::DnsError {
            rcode: None,
            info_code: None,
        })?;
    Ok(lookup.collect())
}

/// The addresses to try, in order, among `resolved` for `host`: refused if
/// any of them is loopback, private, link-local or unspecified, unless the
/// allowlist names `host` exactly (`exact`).
fn checked_addresses(host: &str, resolved: &[SocketAddr], exact: bool) -> Result<Vec<SocketAddr>, String> {
    if resolved.is_empty() {
        return Err(format!("`{host}` resolved to no address"));
    }
    if !exact {
        if let Some(inner) = resolved.iter().find(|a| !is_public(a.ip())) {
            return Err(format!(
                "`{host}` resolves to {}, a local or private address; only an allowed origin naming this exact host may reach one",
                inner.ip()
            ));
        }
    }
    Ok(resolved.to_vec())
}

/// Whether `ip` is an address on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// What a request is addressed to, as the records and logs show it.
struct Target {
    method: String,
    scheme: String,
    host: String,
    port: u16,
    /// The path without the query.
    path: String,
}

impl Target {
    fn of(request: &http::Request<WasiBody>) -> Target {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https").to_owned();
        let default_port = if scheme == "http" { 80 } else { 443 };
        Target {
            method: request.method().to_string(),
            host: uri.host().unwrap_or_default().trim_matches(['[', ']']).to_owned(),
            port: uri.port_u16().unwrap_or(default_port),
            path: uri.path().to_owned(),
            scheme,
        }
    }

    /// `scheme://host:port`, an IPv6 address in brackets.
    fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.bracketed_host(), self.port)
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The `Host` header: the host, and the port unless the scheme's own
    /// (no user name or password, whatever the plugin's address held).
    fn host_header(&self) -> String {
        let default_port = if self.scheme == "http" { 80 } else { 443 };
        match self.port {
            port if port == default_port => self.bracketed_host(),
            port => format!("{}:{port}", self.bracketed_host()),
        }
    }
}

/// Writes a request's record once it is over, off the plugin's path.
struct Recorder {
    db: Database,
    started: Instant,
}

impl Recorder {
    fn finish(self, mut record: HttpRequestRecord) {
        record.ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = records::record(&self.db, record).await {
                tracing::error!("failed to record an HTTP request: {e:#}");
            }
        });
    }
}

/// A response body cut off at the grant's size (an error, never a bigger
/// buffer), counted, and recorded when it ends or is dropped.
struct CappedBody {
    incoming: hyper::body::Incoming,
    limit: u64,
    received: u64,
    sent: Arc<AtomicU64>,
    record: Option<HttpRequestRecord>,
    recorder: Option<Recorder>,
    driver: tokio::task::JoinHandle<()>,
}

impl CappedBody {
    fn finish(&mut self, error: Option<String>) {
        if let (Some(mut record), Some(recorder)) = (self.record.take(), self.recorder.take()) {
            record.bytes_in = self.received;
            record.bytes_out = self.sent.load(Ordering::Relaxed);
            record.error = error;
            recorder.finish(record);
        }
    }
}

impl http_body::Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.received += frame.data_ref().map_or(0, |d| d.len() as u64);
                if this.received > this.limit {
                    let limit = this.limit;
                    this.finish(Some(format!("the response body is over {limit} bytes")));
                    this.driver.abort();
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(Some(e.to_string()));
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for CappedBody {
    fn drop(&mut self) {
        self.finish(None);
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, scheme: &str, port: u16) -> Target {
        Target {
            method: "GET".into(),
            scheme: scheme.into(),
            host: host.into(),
            port,
            path: "/".into(),
        }
    }

    #[test]
    fn an_ipv6_origin_and_host_are_written_in_brackets() {
        let v6 = target("::1", "http", 18081);
        assert_eq!(v6.origin(), "http://[::1]:18081");
        assert_eq!(v6.host_header(), "[::1]:18081");
        assert_eq!(
            target("api.example.com", "https", 443).host_header(),
            "api.example.com"
        );
        assert_eq!(target("localhost", "http", 8080).host_header(), "localhost:8080");
    }

    fn addresses(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 443))
            .collect()
    }

    #[test]
    fn a_name_leading_to_a_local_or_private_address_is_refused_unless_named_exactly() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.7",
            "172.16.5.5",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let error = checked_addresses("api.example.com", &addresses(&[ip]), false).unwrap_err();
            assert!(error.contains("local or private address"), "{ip}: {error}");
            assert!(
                checked_addresses("api.example.com", &addresses(&[ip]), true).is_ok(),
                "{ip}"
            );
        }
        // One private answer among public ones is enough to refuse.
        let mixed = addresses(&["93.184.216.34", "10.0.0.1"]);
        assert!(checked_addresses("api.example.com", &mixed, false).is_err());
        let public = addresses(&["93.184.216.34", "2606:2800::1"]);
        assert_eq!(
            checked_addresses("api.example.com", &public, false).unwrap(),
            public
        );
    }
}
