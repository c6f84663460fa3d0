//! The one HTTP/1.1 client of the tests: raw bytes over a fresh
//! `TcpStream`, so a test can send what a real client would not (a foreign
//! `Host`, a declared `Content-Length` with no body). Clients that hold a
//! connection open or send part of a head write their own bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// An answer: status, head (lower case) and body.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// One request over a fresh connection (`Connection: close`, answers read
/// for up to 20 s); `None` if nothing answers. `Host` is `address` and
/// `Content-Length` is the body's (on any request but a bodiless GET)
/// unless `headers` names them. An error writing the body is ignored: the
/// answer (a refusal, say) tells.
pub fn send(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Answer> {
    let named = |wanted: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(wanted));
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !named("host") {
        head.push_str(&format!("Host: {address}\r\n"));
    }
    head.push_str("Connection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !named("content-length") && (method != "GET" || !body.is_empty()) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some(Answer {
        status: head.split_whitespace().nth(1)?.parse().ok()?,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

/// [`send`], where an answer must come.
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    send(address, method, path, headers, body)
        .unwrap_or_else(|| panic!("no answer to {method} {path} from {address}"))
}

/// The body of `GET PATH` on `address`.
pub fn get(address: SocketAddr, path: &str) -> String {
    request(address, "GET", path, &[], b"").body
}
