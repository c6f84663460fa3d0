//! A plugin's stdout and stderr: passed on to `tracing` line by line, tagged
//! with the plugin's name, up to a per-call byte limit; past it the rest is
//! counted and dropped, never buffered.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::config::PluginName;

/// How much of the output is kept for the run record.
const EXCERPT_BYTES: usize = 2048;
/// A line longer than this is logged in pieces.
const MAX_LINE_BYTES: usize = 4096;

/// What one call printed, as kept for its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// The first bytes of stdout and stderr, interleaved as written.
    pub excerpt: String,
    /// How many bytes the plugin wrote in all.
    pub bytes: u64,
    /// Whether output past the limit was dropped.
    pub truncated: bool,
}

/// The capture shared by a call's stdout and stderr.
#[derive(Clone)]
pub struct OutputCapture {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    plugin: PluginName,
    limit: u64,
    passed: u64,
    output: CapturedOutput,
    /// Unfinished lines of stdout and stderr.
    partial: [Vec<u8>; 2],
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl OutputCapture {
    /// A capture for one call of `plugin` passing on at most `limit` bytes.
    pub fn new(plugin: PluginName, limit: u64) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                plugin,
                limit,
                passed: 0,
                output: CapturedOutput::default(),
                partial: [Vec::new(), Vec::new()],
            })),
        }
    }

    /// The writer the plugin's stdout goes to.
    pub fn stdout(&self) -> OutputPipe {
        OutputPipe {
            capture: self.clone(),
            stream: Stream::Stdout,
        }
    }

    /// The writer the plugin's stderr goes to.
    pub fn stderr(&self) -> OutputPipe {
        OutputPipe {
            capture: self.clone(),
            stream: Stream::Stderr,
        }
    }

    /// Starts counting afresh for the next call of a kept instance.
    pub fn restart(&self) {
        let mut shared = self.lock();
        shared.passed = 0;
        shared.output = CapturedOutput::default();
        shared.partial = [Vec::new(), Vec::new()];
    }

    /// Logs any unfinished lines and returns what the call printed.
    pub fn finish(&self) -> CapturedOutput {
        let mut shared = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            shared.flush_line(stream);
        }
        shared.output.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Shared {
    fn write(&mut self, stream: Stream, bytes: &[u8]) {
        self.output.bytes += bytes.len() as u64;
        let room = self.limit.saturating_sub(self.passed);
        let kept = &bytes[..bytes.len().min(room as usize)];
        self.passed += kept.len() as u64;
        let excerpt_room = EXCERPT_BYTES.saturating_sub(self.output.excerpt.len());
        self.output
            .excerpt
            .push_str(&String::from_utf8_lossy(&kept[..kept.len().min(excerpt_room)]));
        for chunk in kept.split_inclusive(|&b| b == b'\n') {
            self.partial[stream as usize].extend_from_slice(chunk);
            if chunk.ends_with(b"\n") || self.partial[stream as usize].len() >= MAX_LINE_BYTES {
                self.flush_line(stream);
            }
        }
        if kept.len() < bytes.len() && !self.output.truncated {
            self.output.truncated = true;
            self.flush_line(stream);
            tracing::warn!(
                target: "plugin",
                plugin = %self.plugin,
                limit = self.limit,
                "output limit reached: the rest of this call's stdout and stderr is dropped"
            );
        }
    }

    fn flush_line(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        if line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        tracing::info!(
            target: "plugin",
            plugin = %self.plugin,
            stream = stream.name(),
            "{}",
            text.trim_end_matches(['\n', '\r'])
        );
    }
}

/// One of a call's output streams, as WASI sees it.
#[derive(Clone)]
pub struct OutputPipe {
    capture: OutputCapture,
    stream: Stream,
}

impl IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for OutputPipe {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for OutputPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.lock().write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Writes never block: what is past the limit is dropped.
        Ok(64 * 1024)
    }
}

impl AsyncWrite for OutputPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.capture.lock().write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(limit: u64) -> OutputCapture {
        OutputCapture::new(PluginName::parse("p").unwrap(), limit)
    }

    #[test]
    fn keeps_everything_under_the_limit() {
        let capture = capture(1000);
        let mut out = capture.stdout();
        OutputStream::write(&mut out, Bytes::from_static(b"hello\nwor")).unwrap();
        OutputStream::write(&mut out, Bytes::from_static(b"ld\n")).unwrap();
        let output = capture.finish();
        assert_eq!(output.excerpt, "hello\nworld\n");
        assert_eq!(output.bytes, 12);
        assert!(!output.truncated);
    }

    #[test]
    fn drops_and_counts_what_is_past_the_limit() {
        let capture = capture(10);
        let mut out = capture.stdout();
        for _ in 0..1000 {
            OutputStream::write(&mut out, Bytes::from_static(b"0123456789abcdef\n")).unwrap();
        }
        let output = capture.finish();
        assert_eq!(output.excerpt, "0123456789");
        assert_eq!(output.bytes, 17_000);
        assert!(output.truncated);
        assert!(capture.lock().partial.iter().all(Vec::is_empty));
    }

    #[test]
    fn the_limit_counts_stdout_and_stderr_together() {
        let capture = capture(8);
        OutputStream::write(&mut capture.stdout(), Bytes::from_static(b"out1\n")).unwrap();
        OutputStream::write(&mut capture.stderr(), Bytes::from_static(b"err1\n")).unwrap();
        let output = capture.finish();
        assert_eq!(output.excerpt, "out1\nerr");
        assert!(output.truncated);
    }
}
