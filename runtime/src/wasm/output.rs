//! A plugin's stdout, stderr and `log.write` lines: passed on to `tracing`
//! line by line, tagged with the plugin's name, up to a per-call byte limit
//! and a per-plugin rate; past either the rest is counted and dropped, never
//! buffered.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::config::PluginName;

/// How much of the output is kept for the run record.
const EXCERPT_BYTES: usize = 2048;
/// A line longer than this is logged in pieces.
const MAX_LINE_BYTES: usize = 4096;
/// What one plugin may log at once, across its calls.
const RATE_BURST_BYTES: f64 = 256.0 * 1024.0;
/// What one plugin may log each second on average, across its calls.
const RATE_BYTES_PER_SECOND: f64 = 4096.0;
/// What the log adds to each line beside its text (time, level, target,
/// the plugin's name), counted against the rate with it.
const LINE_OVERHEAD_BYTES: usize = 96;

/// Cuts `text` to at most `max` bytes (at a character boundary) and says
/// so at its end: what a plugin hands the host to store or log.
pub fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let whole = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!(" [cut: {whole} bytes in all]"));
}

/// How much each plugin may still log: a bucket per plugin, refilled at
/// [`RATE_BYTES_PER_SECOND`] up to [`RATE_BURST_BYTES`], shared by all its
/// calls, so a plugin called in a tight loop cannot flood the log either.
/// What the rate dropped is told on the same rate: counts that find no room
/// wait in the bucket for a later call's end.
#[derive(Default)]
pub struct LogRates {
    buckets: Mutex<HashMap<PluginName, Bucket>>,
}

/// One plugin's part of the log rate.
struct Bucket {
    /// Bytes it may log now.
    left: f64,
    /// When `left` was last refilled.
    at: Instant,
    /// Lines dropped and not yet told, by what they were.
    untold: BTreeMap<&'static str, u64>,
}

/// What a line the host adds about a plugin's log costs the rate (one per
/// kind of dropped line told, or the output limit reached).
const SUMMARY_LINE_BYTES: usize = 100;

impl LogRates {
    /// Takes a line of `bytes` (and the log's own part of it) from
    /// `plugin`'s bucket; false (and nothing taken) if it holds fewer.
    fn take(&self, plugin: &PluginName, bytes: usize) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        Self::take_from(Self::bucket(&mut buckets, plugin), bytes)
    }

    /// Adds `dropped` to what `plugin`'s lines dropped and has not been
    /// told of; all of it, to tell now, unless the bucket is in debt (it
    /// waits for a later call). Telling it may put the bucket in debt, so
    /// the summary of a flood is told at its end and paid for after.
    fn untold(
        &self,
        plugin: &PluginName,
        dropped: BTreeMap<&'static str, u64>,
    ) -> BTreeMap<&'static str, u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = Self::bucket(&mut buckets, plugin);
        for (what, count) in dropped {
            *bucket.untold.entry(what).or_default() += count;
        }
        if bucket.untold.is_empty() || bucket.left < 0.0 {
            return BTreeMap::new();
        }
        bucket.left -= (bucket.untold.len() * (SUMMARY_LINE_BYTES + LINE_OVERHEAD_BYTES)) as f64;
        std::mem::take(&mut bucket.untold)
    }

    /// `plugin`'s bucket, refilled for the time since it was last used.
    fn bucket<'a>(buckets: &'a mut HashMap<PluginName, Bucket>, plugin: &PluginName) -> &'a mut Bucket {
        let now = Instant::now();
        // The name is cloned once per plugin, not once per line.
        if !buckets.contains_key(plugin) {
            buckets.insert(
                plugin.clone(),
                Bucket {
                    left: RATE_BURST_BYTES,
                    at: now,
                    untold: BTreeMap::new(),
                },
            );
        }
        let bucket = buckets.get_mut(plugin).expect("inserted above");
        bucket.left = (bucket.left + now.duration_since(bucket.at).as_secs_f64() * RATE_BYTES_PER_SECOND)
            .min(RATE_BURST_BYTES);
        bucket.at = now;
        bucket
    }

    fn take_from(bucket: &mut Bucket, bytes: usize) -> bool {
        let bytes = (bytes + LINE_OVERHEAD_BYTES) as f64;
        if bucket.left < bytes {
            return false;
        }
        bucket.left -= bytes;
        true
    }
}

/// What one call printed, as kept for its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// The first bytes of stdout and stderr, interleaved as written.
    pub excerpt: String,
    /// How many bytes the plugin wrote in all.
    pub bytes: u64,
    /// Whether output past the limit was dropped.
    pub truncated: bool,
    /// Lines (of output or `log.write`) dropped because the plugin logged
    /// faster than its rate.
    pub rate_dropped: u64,
}

/// The capture shared by a call's stdout and stderr.
#[derive(Clone)]
pub struct OutputCapture {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    plugin: PluginName,
    limit: u64,
    rates: Arc<LogRates>,
    passed: u64,
    output: CapturedOutput,
    /// Unfinished lines of stdout and stderr.
    partial: [Vec<u8>; 2],
    /// Lines the plugin caused past its rate, by what they were.
    caused_dropped: BTreeMap<&'static str, u64>,
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
    /// A capture for one call of `plugin` passing on at most `limit` bytes,
    /// and no faster than its bucket in `rates` allows.
    pub fn new(plugin: PluginName, limit: u64, rates: Arc<LogRates>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                plugin,
                limit,
                rates,
                passed: 0,
                output: CapturedOutput::default(),
                partial: [Vec::new(), Vec::new()],
                caused_dropped: BTreeMap::new(),
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
        shared.caused_dropped.clear();
    }

    /// Logs any unfinished lines and returns what the call printed.
    pub fn finish(&self) -> CapturedOutput {
        let mut shared = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            shared.flush_line(stream);
        }
        let mut dropped = std::mem::take(&mut shared.caused_dropped);
        if shared.output.rate_dropped > 0 {
            dropped.insert("lines of its output and log", shared.output.rate_dropped);
        }
        for (what, count) in shared.rates.untold(&shared.plugin, dropped) {
            tracing::warn!(
                target: "plugin",
                plugin = %shared.plugin,
                "… and {count} more {what} (not logged: the plugin's log rate was reached)"
            );
        }
        shared.output.clone()
    }

    /// Logs one `log.write` line at `level`, counted against the call's
    /// limit and the plugin's rate like a line of output.
    pub fn log(&self, level: tracing::Level, message: &str) {
        let mut shared = self.lock();
        let room = shared.limit.saturating_sub(shared.passed);
        if message.len() as u64 > room {
            shared.passed = shared.limit;
            shared.reached_limit();
            return;
        }
        shared.passed += message.len() as u64;
        if !shared.within_rate(message.len()) {
            return;
        }
        emit(level, &shared.plugin, message);
    }

    /// Logs a line the plugin caused rather than wrote — a call it was
    /// denied, a write refused — at `level`, drawn from the plugin's log
    /// rate like its own lines. Past the rate such lines are only counted,
    /// by `what` (a plural: "denied notify calls"), and told in one line
    /// when the call ends, within the rate: "… and 138418 more denied
    /// notify calls".
    pub fn caused(&self, level: tracing::Level, what: &'static str, message: std::fmt::Arguments<'_>) {
        let mut guard = self.lock();
        let shared = &mut *guard;
        let message = message.to_string();
        if !shared.rates.take(&shared.plugin, message.len()) {
            *shared.caused_dropped.entry(what).or_default() += 1;
            return;
        }
        emit(level, &shared.plugin, &message);
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Logs `message` for `plugin` at `level` (one line whatever it holds:
/// the log's fields are [`untrusted::OneLineFields`](crate::untrusted::OneLineFields)).
fn emit(level: tracing::Level, plugin: &PluginName, message: &str) {
    match level {
        tracing::Level::TRACE => tracing::trace!(target: "plugin", plugin = %plugin, "{message}"),
        tracing::Level::DEBUG => tracing::debug!(target: "plugin", plugin = %plugin, "{message}"),
        tracing::Level::INFO => tracing::info!(target: "plugin", plugin = %plugin, "{message}"),
        tracing::Level::WARN => tracing::warn!(target: "plugin", plugin = %plugin, "{message}"),
        tracing::Level::ERROR => tracing::error!(target: "plugin", plugin = %plugin, "{message}"),
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
        if kept.len() < bytes.len() {
            self.flush_line(stream);
            self.reached_limit();
        }
    }

    /// Marks the output cut, saying so once per call (within the rate).
    fn reached_limit(&mut self) {
        if self.output.truncated {
            return;
        }
        self.output.truncated = true;
        if !self.rates.take(&self.plugin, SUMMARY_LINE_BYTES) {
            return;
        }
        tracing::warn!(
            target: "plugin",
            plugin = %self.plugin,
            limit = self.limit,
            "output limit reached: the rest of this call's stdout, stderr and log is dropped"
        );
    }

    /// Whether a line of `bytes` may be logged now; counts it if not.
    fn within_rate(&mut self, bytes: usize) -> bool {
        let within = self.rates.take(&self.plugin, bytes);
        if !within {
            self.output.rate_dropped += 1;
        }
        within
    }

    fn flush_line(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        if line.is_empty() || !self.within_rate(line.len()) {
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
        OutputCapture::new(PluginName::parse("p").unwrap(), limit, Arc::default())
    }

    #[test]
    fn log_lines_count_against_the_calls_limit() {
        let capture = capture(100);
        for _ in 0..10 {
            capture.log(tracing::Level::INFO, &"x".repeat(30));
        }
        let output = capture.finish();
        assert!(output.truncated);
        assert_eq!(capture.lock().passed, 100);
    }

    #[test]
    fn a_plugin_logging_past_its_rate_is_cut_across_calls() {
        let rates = Arc::new(LogRates::default());
        let plugin = PluginName::parse("chatty").unwrap();
        let mut dropped = 0;
        // Many calls, each within its own limit: the rate still holds.
        for _ in 0..10 {
            let capture = OutputCapture::new(plugin.clone(), 64 << 10, rates.clone());
            for _ in 0..8 {
                capture.log(tracing::Level::INFO, &"y".repeat(8000));
            }
            dropped += capture.finish().rate_dropped;
        }
        // 640,000 bytes asked for, about 256 KiB let through.
        assert!((45..=50).contains(&dropped), "{dropped} lines dropped");
        let other = OutputCapture::new(PluginName::parse("quiet").unwrap(), 64 << 10, rates);
        other.log(tracing::Level::INFO, "another plugin's bucket is its own");
        assert_eq!(other.finish().rate_dropped, 0);
    }

    #[test]
    fn what_the_rate_dropped_is_told_within_the_rate_and_never_lost() {
        let rates = LogRates::default();
        let plugin = PluginName::parse("denied").unwrap();
        while rates.take(&plugin, 0) {}
        // A thousand calls' ends in a tight loop, each with ten drops: the
        // bucket, empty, has room for a summary line now and then at most.
        let mut told = 0;
        let mut lines = 0;
        for _ in 0..1000 {
            let summary = rates.untold(&plugin, BTreeMap::from([("denied notify calls", 10)]));
            lines += summary.len();
            told += summary.values().sum::<u64>();
        }
        let buckets = rates.buckets.lock().unwrap();
        let waiting: u64 = buckets[&plugin].untold.values().sum();
        assert!(lines <= 2, "{lines} summary lines");
        assert_eq!(told + waiting, 10_000);
    }

    #[test]
    fn cut_says_how_long_the_text_was() {
        let mut text = "é".repeat(10);
        cut(&mut text, 5);
        assert_eq!(text, "éé [cut: 20 bytes in all]");
        let mut short = "fine".to_owned();
        cut(&mut short, 5);
        assert_eq!(short, "fine");
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
