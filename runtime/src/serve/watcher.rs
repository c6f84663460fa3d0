//! Watches directories for changed files (notify) and reports each changed
//! path once it has been quiet for [`DEBOUNCE`], so a file a build tool
//! writes in several steps is reported once, when complete.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a path must see no event before it is reported.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// A set of watched directories.
pub struct FileWatcher {
    watcher: notify::RecommendedWatcher,
    watched: HashSet<PathBuf>,
}

impl FileWatcher {
    /// Starts watching nothing yet; changed paths arrive on the receiver in
    /// batches, absolute, each once it is quiet.
    pub fn start() -> anyhow::Result<(FileWatcher, mpsc::UnboundedReceiver<Vec<PathBuf>>)> {
        let (raw_sender, raw) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !matches!(event.kind, EventKind::Access(_)) => {
                for path in event.paths {
                    let _ = raw_sender.send(path);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("file watcher error: {e}"),
        })
        .context("failed to start the file watcher")?;
        let (sender, changed) = mpsc::unbounded_channel();
        tokio::spawn(debounce(raw, sender));
        Ok((
            FileWatcher {
                watcher,
                watched: HashSet::new(),
            },
            changed,
        ))
    }

    /// Watches the files directly in `dir` (idempotent).
    pub fn watch_dir(&mut self, dir: &Path) -> anyhow::Result<()> {
        let dir = std::path::absolute(dir)?;
        if self.watched.contains(&dir) {
            return Ok(());
        }
        self.watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("failed to watch {}", dir.display()))?;
        self.watched.insert(dir);
        Ok(())
    }
}

/// Forwards paths from `raw` to `out` once each has been quiet for
/// [`DEBOUNCE`].
async fn debounce(mut raw: mpsc::UnboundedReceiver<PathBuf>, out: mpsc::UnboundedSender<Vec<PathBuf>>) {
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let next = pending.values().min().map(|last| *last + DEBOUNCE);
        tokio::select! {
            path = raw.recv() => match path {
                Some(path) => {
                    pending.insert(path, Instant::now());
                }
                None => return,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                let now = Instant::now();
                let quiet: Vec<PathBuf> =
                    pending.iter().filter(|(_, last)| now >= **last + DEBOUNCE).map(|(p, _)| p.clone()).collect();
                for path in &quiet {
                    pending.remove(path);
                }
                if out.send(quiet).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_a_file_written_in_steps_once_when_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let (mut watcher, mut changed) = FileWatcher::start().unwrap();
        watcher.watch_dir(dir.path()).unwrap();
        let file = dir.path().join("plugin.wasm");
        for chunk in 0..5 {
            let mut bytes = std::fs::read(&file).unwrap_or_default();
            bytes.extend_from_slice(&[chunk; 1000]);
            std::fs::write(&file, bytes).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let batch = tokio::time::timeout(Duration::from_secs(5), changed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(batch, [std::path::absolute(&file).unwrap()]);
        let again = tokio::time::timeout(DEBOUNCE * 3, changed.recv()).await;
        assert!(again.is_err(), "reported twice: {again:?}");
    }

    #[tokio::test]
    async fn reports_a_file_renamed_into_place_from_the_same_or_another_directory() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let (mut watcher, mut changed) = FileWatcher::start().unwrap();
        watcher.watch_dir(dir.path()).unwrap();
        let file = dir.path().join("plugin.wasm");
        std::fs::write(&file, b"v1").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), changed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, [std::path::absolute(&file).unwrap()]);
        for from in [
            dir.path().join(".plugin.wasm.tmp"),
            elsewhere.path().join("plugin.wasm"),
        ] {
            std::fs::write(&from, b"v2").unwrap();
            std::fs::rename(&from, &file).unwrap();
            let mut seen = Vec::new();
            while !seen.contains(&std::path::absolute(&file).unwrap()) {
                let batch = tokio::time::timeout(Duration::from_secs(5), changed.recv()).await;
                seen.extend(
                    batch
                        .unwrap_or_else(|_| panic!("no report of {from:?} renamed; saw {seen:?}"))
                        .unwrap(),
                );
            }
        }
    }
}
