//! The HTTP/1.1 server under the fake APIs: a free port on 127.0.0.1, a
//! thread with its own runtime, keep-alive connections answered one request
//! at a time, each response written in one piece (or, where it holds
//! [`PAUSE`], in pieces a while apart, as a slow stream arrives).

use std::future::Future;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Where a response pauses for [`PAUSE_FOR`] before the rest is written.
pub const PAUSE: &str = "\u{0}pause\u{0}";
/// How long a [`PAUSE`] lasts.
pub const PAUSE_FOR: std::time::Duration = std::time::Duration::from_millis(250);

/// One request as it arrived.
pub struct Request {
    /// `POST /v1/messages HTTP/1.1`, say.
    pub line: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body (by `content-length`, or chunked as a streamed upload is).
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path of the request line.
    pub fn path(&self) -> &str {
        self.line.split_whitespace().nth(1).unwrap_or_default()
    }
}

/// Serves on a free loopback port until the test process ends; `answer`
/// turns each request into the whole response (head and body). Returns the
/// base URL.
pub fn serve<F, Fut>(answer: F) -> String
where
    F: Fn(Request) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    let (sender, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap().port()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(connection(stream, answer.clone()));
            }
        });
    });
    format!("http://127.0.0.1:{}", port.recv().unwrap())
}

async fn connection<F, Fut>(stream: TcpStream, answer: F)
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = String>,
{
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        let body = match chunked {
            true => match read_chunked(&mut read).await {
                Some(body) => body,
                None => return,
            },
            false => {
                let mut body = vec![0; length];
                if read.read_exact(&mut body).await.is_err() {
                    return;
                }
                body
            }
        };
        let response = answer(Request { line, headers, body }).await;
        // One write: head and body in separate segments would meet the
        // client's delayed ACK (Nagle) and add 40 ms to every call.
        for (i, piece) in response.split(PAUSE).enumerate() {
            if i > 0 {
                tokio::time::sleep(PAUSE_FOR).await;
            }
            if write.write_all(piece.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// A `Transfer-Encoding: chunked` body: sizes in hex, each chunk after its
/// line, up to the empty chunk and its trailer.
async fn read_chunked<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        read.read_line(&mut size).await.ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut trailer = String::new();
            read.read_line(&mut trailer).await.ok()?;
            return Some(body);
        }
        let start = body.len();
        body.resize(start + size + 2, 0);
        read.read_exact(&mut body[start..]).await.ok()?;
        body.truncate(start + size);
    }
}
