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
/// failed, e.g. `HTTP-request-denied` for an origin the grant does not list.
pub fn send(request: Request<Vec<u8>>) -> Result<Response, String> {
    let what = format!("{} {}", request.method(), request.uri());
    wstd::runtime::block_on(async move {
        let client = wstd::http::Client::new();
        let response = client
            .send(request.map(wstd::http::Body::from))
            .await
            .map_err(|e| format!("{what}: {e:#}"))?;
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
            .map_err(|e| format!("{what}: reading the body: {e:#}"))?
            .to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    })
}
