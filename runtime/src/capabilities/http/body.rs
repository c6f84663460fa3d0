//! The request body between the plugin and hyper. The plugin writes it
//! through a stream that fails ("closed") as soon as its reader is gone, and
//! hyper drops a body it no longer needs (a `Content-Length: 0` request, a
//! response that came first), as does a refusal: so the plugin's body is
//! always read to its end by a task of ours, which passes frames on while
//! someone wants them and discards them after.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use wasmtime_wasi_http::{Error, WasiBody};

/// A body for hyper that carries `body`'s frames, counting its data bytes
/// into `sent`.
pub(super) fn forward(mut body: WasiBody, sent: Arc<AtomicU64>) -> WasiBody {
    let (frames, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut wanted = true;
        while let Some(frame) = body.frame().await {
            if let Ok(Some(data)) = frame.as_ref().map(Frame::data_ref) {
                sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            if wanted && frames.send(frame).await.is_err() {
                wanted = false;
            }
        }
    });
    Forwarded { receiver }.boxed_unsync()
}

/// Reads `body` to its end and throws it away, so the plugin's writes
/// succeed and it gets the answer, not a broken stream.
pub(super) fn drain(mut body: WasiBody) {
    tokio::spawn(async move { while body.frame().await.is_some() {} });
}

struct Forwarded {
    receiver: mpsc::Receiver<Result<Frame<Bytes>, Error>>,
}

impl http_body::Body for Forwarded {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.receiver.poll_recv(cx)
    }
}
