//! What a watch is watching. Each of its directories is *armed* — watched
//! recursively by a `notify` watcher of its own — while it is there.
//! A directory that is gone (deleted, renamed away, not made yet) or cannot
//! be watched leaves the watch *broken*: its nearest existing ancestor is
//! watched instead (by another watcher of its own, so two directories never
//! share, or unwatch, each other's watches), so the directory's return
//! wakes the lane, and [`Arming::check`] (after each burst of events, and
//! on a timer that backs off while broken) arms it again. A directory
//! deleted and made again is a new directory: the old inotify watch died
//! with it, so an armed directory is armed again, with a new watcher, when
//! its own removal or rename is seen or its identity (device and inode)
//! changed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// How often an armed watch checks that its directories are still where
/// they were (a parent renamed away sends no event to the directory).
const ARMED_CHECK: Duration = Duration::from_secs(30);
/// The first check after a directory went missing; doubled each time, up
/// to [`ARMED_CHECK`].
const BROKEN_CHECK: Duration = Duration::from_secs(1);

/// A watch's directories and the watchers that wake it.
pub struct Arming {
    /// Where every watcher sends its events.
    events: mpsc::UnboundedSender<notify::Event>,
    roots: Vec<Root>,
    /// Until the next check on the timer.
    next_check: Duration,
}

struct Root {
    /// As configured.
    path: PathBuf,
    state: State,
}

enum State {
    /// Watched recursively at `watched` (the path resolved), which was the
    /// directory `id` then.
    Armed {
        watched: PathBuf,
        id: (u64, u64),
        /// Its own removal or rename was seen: arm it again.
        stale: bool,
        _watcher: notify::RecommendedWatcher,
    },
    /// Not watched, for `reason`; `ancestor`, its nearest existing
    /// ancestor, is watched for its return if it could be.
    Broken {
        reason: String,
        ancestor: Option<(PathBuf, notify::RecommendedWatcher)>,
        /// Where the directory will be, resolved through `ancestor`.
        target: PathBuf,
    },
}

impl Arming {
    /// Arms `paths`, each event of their watchers sent to `events`.
    pub fn new(paths: &[PathBuf], events: mpsc::UnboundedSender<notify::Event>) -> Arming {
        let mut arming = Arming {
            events,
            roots: paths
                .iter()
                .map(|path| Root {
                    path: path.clone(),
                    state: State::Broken {
                        reason: String::new(),
                        ancestor: None,
                        target: path.clone(),
                    },
                })
                .collect(),
            next_check: ARMED_CHECK,
        };
        arming.check();
        arming.next_check = match arming.broken() {
            Some(_) => BROKEN_CHECK,
            None => ARMED_CHECK,
        };
        arming
    }

    /// Whether `event` is about the watch (a file under an armed directory,
    /// or a broken one's way back), noting an armed directory's own removal
    /// or rename for the next check.
    pub fn saw(&mut self, event: &notify::Event) -> bool {
        if event.paths.is_empty() {
            return true;
        }
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        );
        let mut concerns = false;
        for root in &mut self.roots {
            for path in &event.paths {
                match &mut root.state {
                    State::Armed { watched, stale, .. } => {
                        if path.starts_with(&*watched) {
                            concerns = true;
                            *stale |= gone && path == watched;
                        }
                    }
                    State::Broken { target, .. } => concerns |= target.starts_with(path),
                }
            }
        }
        concerns
    }

    /// Arms what can be armed again; `true` if a directory was (re)armed,
    /// so what it holds is to be scanned.
    pub fn check(&mut self) -> bool {
        let mut armed = false;
        let was_broken = self.broken().is_some();
        for root in &mut self.roots {
            if let State::Armed { id, stale, .. } = &root.state {
                if !*stale && identity(&root.path) == Some(*id) {
                    continue;
                }
                // Gone, or replaced: its watch died with it (or watches the
                // old directory where it went), and is dropped below.
            }
            let before = std::mem::replace(
                &mut root.state,
                State::Broken {
                    reason: String::new(),
                    ancestor: None,
                    target: root.path.clone(),
                },
            );
            root.state = arm(&self.events, &root.path, before);
            armed |= matches!(root.state, State::Armed { .. });
        }
        self.next_check = match (was_broken, self.broken().is_some()) {
            (_, false) => ARMED_CHECK,
            (false, true) => BROKEN_CHECK,
            (true, true) => (self.next_check * 2).min(ARMED_CHECK),
        };
        armed
    }

    /// Why the watch is not watching all its directories, if it is not.
    pub fn broken(&self) -> Option<String> {
        let reasons: Vec<&str> = self
            .roots
            .iter()
            .filter_map(|root| match &root.state {
                State::Broken { reason, .. } => Some(reason.as_str()),
                State::Armed { .. } => None,
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// When to check again without an event.
    pub fn next_check(&self) -> Duration {
        self.next_check
    }
}

/// A watcher of its own on `path`, sending to `events` every event but
/// reads.
fn watching(
    events: &mpsc::UnboundedSender<notify::Event>,
    path: &Path,
    mode: RecursiveMode,
) -> notify::Result<notify::RecommendedWatcher> {
    let events = events.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (the kernel's queue overflowed) is a wake without a
        // path: everything is checked and scanned.
        let event = event.unwrap_or_else(|_| notify::Event::new(EventKind::Other));
        if !matches!(event.kind, EventKind::Access(_)) {
            let _ = events.send(event);
        }
    })?;
    watcher.watch(path, mode)?;
    Ok(watcher)
}

/// `path` armed if it is a directory that can be watched, else broken and
/// waiting on its nearest existing ancestor (kept from `before` if that is
/// still the one). The watcher of `before` is dropped otherwise.
fn arm(events: &mpsc::UnboundedSender<notify::Event>, path: &Path, before: State) -> State {
    let previous = match before {
        State::Broken { ancestor, .. } => ancestor,
        State::Armed { .. } => None,
    };
    let reason = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            let watched = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
            match watching(events, &watched, RecursiveMode::Recursive) {
                Ok(watcher) => {
                    return State::Armed {
                        watched,
                        id: (metadata.dev(), metadata.ino()),
                        stale: false,
                        _watcher: watcher,
                    };
                }
                Err(e) => format!("{} cannot be watched: {e}", path.display()),
            }
        }
        Ok(_) => format!("{} is not a directory", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{} is gone", path.display()),
        Err(e) => format!("{} cannot be read: {e}", path.display()),
    };
    let existing = path.ancestors().skip(1).find(|a| a.is_dir());
    let nearest = existing.and_then(|a| std::fs::canonicalize(a).ok());
    let target = match (existing, &nearest) {
        (Some(existing), Some(nearest)) => nearest.join(path.strip_prefix(existing).unwrap_or(path)),
        _ => path.to_owned(),
    };
    let ancestor = match (previous, nearest) {
        (Some(previous), Some(nearest)) if previous.0 == nearest => Some(previous),
        (_, nearest) => nearest.and_then(|ancestor| {
            let watcher = watching(events, &ancestor, RecursiveMode::NonRecursive).ok()?;
            Some((ancestor, watcher))
        }),
    };
    State::Broken {
        reason,
        ancestor,
        target,
    }
}

/// The directory at `path` (device, inode), if there is one.
fn identity(path: &Path) -> Option<(u64, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    metadata.is_dir().then(|| (metadata.dev(), metadata.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to 10 s) for an event of `events` that `arming` finds
    /// about the watch.
    async fn concerning(arming: &mut Arming, events: &mut mpsc::UnboundedReceiver<notify::Event>) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let event = events.recv().await.unwrap();
                if arming.saw(&event) {
                    return;
                }
            }
        })
        .await
        .expect("no event about the watch within 10 s");
    }

    #[tokio::test]
    async fn a_directory_deleted_and_made_again_is_armed_again() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("parent/exports");
        std::fs::create_dir_all(&watched).unwrap();
        let (sender, mut events) = mpsc::unbounded_channel();
        let mut arming = Arming::new(std::slice::from_ref(&watched), sender);
        assert_eq!(arming.broken(), None);

        std::fs::remove_dir_all(dir.path().join("parent")).unwrap();
        concerning(&mut arming, &mut events).await;
        assert!(!arming.check());
        let broken = arming.broken().unwrap();
        assert!(broken.ends_with("exports is gone"), "{broken}");
        assert_eq!(arming.next_check(), BROKEN_CHECK);

        // Its parent first, then itself: each wakes the watch.
        std::fs::create_dir(dir.path().join("parent")).unwrap();
        concerning(&mut arming, &mut events).await;
        assert!(!arming.check(), "the parent alone arms nothing");
        assert_eq!(arming.next_check(), BROKEN_CHECK * 2, "backing off");
        std::fs::create_dir(&watched).unwrap();
        concerning(&mut arming, &mut events).await;
        assert!(arming.check());
        assert_eq!(arming.broken(), None);
        assert_eq!(arming.next_check(), ARMED_CHECK);

        // A file in the new directory is seen.
        std::fs::write(watched.join("new.csv"), "x").unwrap();
        concerning(&mut arming, &mut events).await;
    }

    #[tokio::test]
    async fn two_directories_gone_from_one_parent_each_wake_the_watch_when_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (sender, mut events) = mpsc::unbounded_channel();
        let mut arming = Arming::new(&[a.clone(), b.clone()], sender);
        let broken = arming.broken().unwrap();
        assert!(
            broken.contains("a is gone; ") && broken.ends_with("b is gone"),
            "{broken}"
        );
        assert_eq!(arming.next_check(), BROKEN_CHECK);

        std::fs::create_dir(&a).unwrap();
        concerning(&mut arming, &mut events).await;
        assert!(arming.check());
        assert!(arming.broken().unwrap().ends_with("b is gone"));
        // Each has a watcher of its own: arming one drops none the other waits on.
        std::fs::create_dir(&b).unwrap();
        concerning(&mut arming, &mut events).await;
        assert!(arming.check());
        assert_eq!(arming.broken(), None);
    }
}
