//! Outbound HTTP from a plugin, blocking: [`get`], or [`send`] any request
//! built with [`Request`]. The host allows only the origins in the plugin's
//! `[plugins.NAME.http]` grant; anything else fails with
//! `HTTP-request-denied`, and a secret header the host adds for a host is
//! never seen here. Built on `wstd`, whose async client is there for more.

pub use wstd::http::{Method, Request};

/// A response, read whole (the host caps its size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|_| "the response body is not UTF-8".to_owned())
    }

    /// The value of header `name` (any case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, String> {
    let request = Request::get(url)
        .body(Vec::new())
        .map_err(|e| format!("GET {url}: {e}"))?;
    send(request)
}

/// Sends `request` and reads the whole response. The error says what
/// failed in words, e.g. "GET https://shop.example.com/orders: cannot
/// resolve shop.example.com", or "the host refused the request" (an origin
/// outside the grant, a request past `max_requests`: its reason is in
/// `mission http` and the host's log, never told to the plugin).
pub fn send(request: Request<Vec<u8>>) -> Result<Response, String> {
    let what = format!("{} {}", request.method(), request.uri());
    let host = request.uri().host().unwrap_or_default().to_owned();
    wstd::runtime::block_on(async move {
        let client = wstd::http::Client::new();
        let response = client
            .send(request.map(wstd::http::Body::from))
            .await
            .map_err(|e| format!("{what}: {}", in_words(&e, &host)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = response.into_body();
        let body = body
            .contents()
            .await
            .map_err(|e| format!("{what}: reading the body: {}", in_words(&e, &host)))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    })
}

/// What a failed request's error means, in words, for a request to `host`.
fn in_words(error: &wstd::http::Error, host: &str) -> String {
    use wstd::http::ErrorCode as E;
    let Some(code) = error.downcast_ref::<E>() else {
        return format!("{error:#}");
    };
    match code {
        E::DnsTimeout | E::DnsError(_) => format!("cannot resolve {host}"),
        E::DestinationNotFound => format!("{host} was not found"),
        E::DestinationUnavailable => format!("{host} is unavailable"),
        E::DestinationIpProhibited => format!("{host}'s address is not one the host connects to"),
        E::DestinationIpUnroutable => format!("{host}'s address cannot be reached"),
        E::ConnectionRefused => format!("{host} refused the connection"),
        E::ConnectionTerminated => format!("{host} closed the connection"),
        E::ConnectionTimeout => format!("connecting to {host} took too long"),
        E::ConnectionReadTimeout | E::HttpResponseTimeout => format!("{host} took too long to answer"),
        E::ConnectionWriteTimeout => format!("sending to {host} took too long"),
        E::TlsProtocolError | E::TlsAlertReceived(_) => format!("the TLS handshake with {host} failed"),
        E::TlsCertificateError => format!("{host}'s TLS certificate is not valid"),
        E::HttpRequestDenied => "the host refused the request (why: mission http, and the host's log)".into(),
        E::HttpRequestBodySize(_) => "the request's body is too large".into(),
        E::HttpRequestUriInvalid => "the URL is not valid".into(),
        E::HttpResponseBodySize(Some(limit)) => {
            format!("{host}'s answer is over the grant's max_response ({limit} bytes)")
        }
        E::HttpResponseBodySize(None) => format!("{host}'s answer is over the grant's max_response"),
        E::HttpResponseIncomplete => format!("{host}'s answer ended early"),
        E::HttpProtocolError => format!("{host} did not speak HTTP as expected"),
        E::ConfigurationError => "the host's HTTP settings refused the request".into(),
        E::InternalError(Some(reason)) => reason.clone(),
        other => format!("the request failed ({other:?})"),
    }
}
