//! Sending one request that the policy allowed: to the address that was
//! resolved and checked (never resolved again, so a name cannot change its
//! answer in between), over TLS for `https`, with hyper's HTTP/1.1 client,
//! under one deadline for connecting and the response head.

use std::net::SocketAddr;
use std::sync::Arc;

use http::uri::Scheme;
use http_body_util::BodyExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

/// The largest response head (status line and headers) taken.
const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// The response head, its body still streaming, and the task driving the
/// connection.
pub(super) type Sent = (http::Response<hyper::body::Incoming>, tokio::task::JoinHandle<()>);

/// Sends `request` to the first of `addresses` that answers, for `host` (the
/// TLS name), the response head due by `deadline`.
pub(super) async fn send(
    mut request: http::Request<WasiBody>,
    addresses: &[SocketAddr],
    host: &str,
    deadline: Instant,
) -> Result<Sent, Error> {
    let https = request.uri().scheme() == Some(&Scheme::HTTPS);
    let connect = async {
        let stream = connect_any(addresses).await?;
        let _ = stream.set_nodelay(true);
        if !https {
            return Ok::<_, Error>(Box::new(stream) as Box<dyn Stream>);
        }
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let stream = tls_connector().connect(name, stream).await.map_err(Error::Tls)?;
        Ok(Box::new(stream) as Box<dyn Stream>)
    };
    let stream = tokio::time::timeout_at(deadline, connect)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_RESPONSE_HEAD)
        .handshake(TokioIo::new(stream))
        .await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("HTTP connection ended: {e}");
        }
    });
    // The request line carries the path only; the host is in `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let request =
        request.map(|body| body.map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) }));
    let response = tokio::time::timeout_at(deadline, sender.send_request(request.map(BodyExt::boxed_unsync)))
        .await
        .map_err(|_| Error::HttpResponseTimeout)??;
    Ok((response, driver))
}

/// The first of `addresses` that takes a connection.
async fn connect_any(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, Error::Connect))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// A TLS client trusting the web's roots (compiled in: nothing read from the
/// machine), shared by every request.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<tokio_rustls::rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}
