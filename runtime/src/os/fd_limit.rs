//! The open-file limit: raised from its soft value to the hard one when
//! `mission up` starts ([`raise`]), the connections a listener holds
//! capped by what it got ([`connection_cap`], [`Connections`]: the oldest
//! idle one shed for a new one), and what a listener does when it runs out
//! anyway ([`AcceptBackoff`]). A macOS LaunchAgent starts with 256
//! descriptors and a Linux shell with 1,024, fewer than the listeners'
//! caps; `mission service install` asks for [`SERVICE_OPEN_FILES`]. Used
//! by the webhook listener and the tool-call socket.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The open-file limit `mission service install` writes into the
/// LaunchAgent and the systemd unit: every listener's cap with room to
/// spare, and below macOS's `OPEN_MAX`.
pub const SERVICE_OPEN_FILES: u64 = 8192;

/// Descriptors no listener's cap may take: the database and its
/// write-ahead log, plugins' files and programs' pipes, the bot's and the
/// plugins' HTTP connections, the page, the compile cache.
const HEADROOM: u64 = 128;

/// The soft limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit the host was started with.
    pub from: u64,
    /// The soft limit now.
    pub to: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (on macOS
/// no further than `kern.maxfilesperproc` and `OPEN_MAX`, which the kernel
/// refuses to exceed, as Rust's own test harness does), and logs what it
/// did; `None` (logged) if the limit cannot be read or set.
pub fn raise() -> Option<Raised> {
    match set_to_most_allowed() {
        Ok(raised) if raised.to > raised.from => {
            tracing::info!(from = raised.from, to = raised.to, "raised the open-file limit");
            Some(raised)
        }
        Ok(raised) => {
            tracing::debug!(limit = raised.to, "the open-file limit");
            Some(raised)
        }
        Err(e) => {
            tracing::warn!("failed to raise the open-file limit (RLIMIT_NOFILE): {e}");
            None
        }
    }
}

fn set_to_most_allowed() -> std::io::Result<Raised> {
    let mut limit = get()?;
    let from = limit.rlim_cur;
    let wanted = most_allowed(limit.rlim_max);
    if wanted > from {
        limit.rlim_cur = wanted;
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(Raised {
        from,
        to: get()?.rlim_cur,
    })
}

/// This process's soft open-file limit now; `None` if it cannot be read
/// (or is unlimited).
pub fn soft_limit() -> Option<u64> {
    get()
        .ok()
        .map(|l| l.rlim_cur)
        .filter(|&l| l != libc::RLIM_INFINITY)
}

/// How many connections a listener may hold: at most `max`, and at most
/// `1/share` of the descriptors the soft limit leaves beyond [`HEADROOM`]
/// (at least 8, so a host at a tiny limit still answers).
pub fn connection_cap(max: usize, share: u64) -> usize {
    let Some(limit) = soft_limit() else {
        return max;
    };
    let room = limit.saturating_sub(HEADROOM) / share.max(1);
    usize::try_from(room).unwrap_or(usize::MAX).clamp(8, max.max(8))
}

fn get() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// The highest soft limit this system lets a process set under `hard`.
#[cfg(not(target_vendor = "apple"))]
fn most_allowed(hard: libc::rlim_t) -> libc::rlim_t {
    hard
}

/// The highest soft limit this system lets a process set under `hard`:
/// macOS refuses more than `OPEN_MAX` (10240) and `kern.maxfilesperproc`.
#[cfg(target_vendor = "apple")]
fn most_allowed(hard: libc::rlim_t) -> libc::rlim_t {
    /// `OPEN_MAX` in `<sys/syslimits.h>`.
    const OPEN_MAX: libc::rlim_t = 10240;
    let mut mib = [libc::CTL_KERN, libc::KERN_MAXFILESPERPROC];
    let mut per_process: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    // SAFETY: sysctl writes at most `size` bytes into `per_process`.
    let read = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut per_process as *mut libc::c_int).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    let per_process = match read {
        0 if per_process > 0 => per_process as libc::rlim_t,
        _ => OPEN_MAX,
    };
    hard.min(OPEN_MAX).min(per_process)
}

/// The connections a listener holds, at most a cap. A connection is idle
/// until it starts a request ([`Connection::busy`]) and between requests;
/// a new connection at the cap sheds the oldest idle one, so idle or slow
/// connections never keep a real request waiting, and waits only while
/// every connection is answering one.
pub struct Connections {
    cap: usize,
    state: Mutex<Held>,
    freed: Notify,
}

#[derive(Default)]
struct Held {
    next: u64,
    /// By age: the oldest first.
    open: BTreeMap<u64, Arc<Slot>>,
}

struct Slot {
    requests: AtomicUsize,
    shed: Notify,
}

impl Connections {
    /// At most `cap` connections (at least one).
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            cap: cap.max(1),
            state: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Room for a connection just accepted: at once under the cap, else by
    /// shedding the oldest idle one, else once one ends or goes idle.
    pub async fn admit(self: &Arc<Self>) -> Arc<Connection> {
        loop {
            {
                let mut held = self.lock();
                let idle = (held.open.len() >= self.cap)
                    .then(|| {
                        held.open
                            .iter()
                            .find(|(_, slot)| slot.requests.load(Ordering::Acquire) == 0)
                            .map(|(&id, _)| id)
                    })
                    .flatten();
                if let Some(slot) = idle.and_then(|id| held.open.remove(&id)) {
                    // Kept for the connection's task if it is not waiting yet.
                    slot.shed.notify_one();
                }
                if held.open.len() < self.cap {
                    let id = held.next;
                    held.next += 1;
                    let slot = Arc::new(Slot {
                        requests: AtomicUsize::new(0),
                        shed: Notify::new(),
                    });
                    held.open.insert(id, slot.clone());
                    return Arc::new(Connection {
                        id,
                        slot,
                        owner: self.clone(),
                    });
                }
            }
            // Every connection is answering a request.
            self.freed.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One connection [`Connections::admit`]ted; it leaves the count when
/// dropped.
pub struct Connection {
    id: u64,
    slot: Arc<Slot>,
    owner: Arc<Connections>,
}

impl Connection {
    /// Resolves once the connection is shed for a newer one: close it.
    pub async fn shed(&self) {
        self.slot.shed.notified().await;
    }

    /// Marks a request in progress (not to be shed) until the guard drops.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.slot.requests.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Whether a request is in progress.
    pub fn is_busy(&self) -> bool {
        self.slot.requests.load(Ordering::Acquire) > 0
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.owner.lock().open.remove(&self.id);
        self.owner.freed.notify_one();
    }
}

/// A request in progress on a [`Connection`].
pub struct Busy(Arc<Connection>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.slot.requests.fetch_sub(1, Ordering::AcqRel);
        self.0.owner.freed.notify_one();
    }
}

/// A listener's pause after a failed `accept` (out of descriptors, most
/// often: retrying at once would spin and log without end): 10 ms,
/// doubling up to a second, and one warning per run of failures (again
/// each minute while it lasts), with their count once accepting works.
pub struct AcceptBackoff {
    listener: &'static str,
    wait: Duration,
    failures: u64,
    warned: Option<Instant>,
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);
    const WARN_EVERY: Duration = Duration::from_secs(60);

    /// The backoff of `listener` (its name in the log).
    pub fn new(listener: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            listener,
            wait: Self::FIRST,
            failures: 0,
            warned: None,
        }
    }

    /// After a failed accept: warns if it is the first of a run (or a
    /// minute has passed), then waits, longer each time.
    pub async fn failed(&mut self, error: &std::io::Error) {
        let wait = self.note_failure(error);
        tokio::time::sleep(wait).await;
    }

    /// Counts a failure, warns if due, and returns how long to wait.
    fn note_failure(&mut self, error: &std::io::Error) -> Duration {
        self.failures += 1;
        if self.warned.is_none_or(|at| at.elapsed() >= Self::WARN_EVERY) {
            self.warned = Some(Instant::now());
            tracing::warn!(
                listener = self.listener,
                failures = self.failures,
                "cannot accept connections: {error}; waiting up to {:?} between tries",
                Self::MOST
            );
        }
        let wait = self.wait;
        self.wait = (self.wait * 2).min(Self::MOST);
        wait
    }

    /// After an accepted connection: ends a run of failures.
    pub fn accepted(&mut self) {
        if self.failures > 0 {
            tracing::info!(
                listener = self.listener,
                failures = self.failures,
                "accepting connections again"
            );
        }
        self.wait = Self::FIRST;
        self.failures = 0;
        self.warned = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers_the_limit_and_caps_fit_under_it() {
        let before = get().unwrap();
        let raised = raise().expect("the limit is raised");
        assert_eq!(raised.from, before.rlim_cur);
        assert!(raised.to >= raised.from && raised.to <= before.rlim_max);
        let limit = soft_limit().unwrap();
        let cap = connection_cap(100_000, 2) as u64;
        assert!(
            cap >= 8 && cap <= limit.saturating_sub(HEADROOM).max(8),
            "{cap} of {limit}"
        );
        assert_eq!(connection_cap(3, 2), 8, "never below 8");
    }

    #[tokio::test]
    async fn a_new_connection_at_the_cap_sheds_the_oldest_idle_one_and_waits_while_all_are_busy() {
        let connections = Connections::new(3);
        let first = connections.admit().await;
        let second = connections.admit().await;
        let third = connections.admit().await;
        let answering = first.busy();
        // Full: the oldest idle one (the second) is shed for the fourth.
        let fourth = connections.admit().await;
        tokio::time::timeout(Duration::from_secs(5), second.shed())
            .await
            .expect("the second is shed");
        assert!(first.is_busy() && !third.is_busy());
        drop(second);
        // All busy: the next waits until one is idle again.
        let _third_answering = third.busy();
        let _fourth_answering = fourth.busy();
        let waiting = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(answering);
        let fifth = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("admitted once the first is idle")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), first.shed())
            .await
            .expect("the first, idle again, is shed");
        assert!(!fifth.is_busy());
    }

    #[test]
    fn the_backoff_doubles_to_a_second_and_starts_over_after_an_accept() {
        let mut backoff = AcceptBackoff::new("test");
        let error = std::io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<u128> = (0..10)
            .map(|_| backoff.note_failure(&error).as_millis())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert!(backoff.warned.is_some(), "warned once, at the first");
        backoff.accepted();
        assert_eq!(backoff.note_failure(&error).as_millis(), 10);
    }
}
