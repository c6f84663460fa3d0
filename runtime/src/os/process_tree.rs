//! Everything a program the host ran started, so that all of it ends with
//! the run: the `process` capability's programs are killed as a process
//! group, and on Linux also as a tree, which catches what left the group
//! (`setsid`, a double fork).
//!
//! On Linux the host makes itself a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`, [`become_subreaper`]): a process whose parent
//! dies is handed to the host rather than to init, so it stays in reach.
//! While a program runs, a [`Tree`] notes every process descending from it
//! (by `/proc`, every [`SCAN_EVERY`] at first); at the end it kills them all, and
//! also every process handed to the host since the run began that no other
//! running tree holds, and reaps them. On macOS there is no subreaper: only
//! the process group is killed, and a process that left it outlives the
//! run.

#[cfg(target_os = "linux")]
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// How often a running program's descendants are noted at first; the
/// interval doubles up to [`SCAN_AT_MOST_EVERY`], so a long-lived process
/// (a persistent `claude`) costs little. A process missed between scans
/// is still found as an orphan when its run ends.
pub const SCAN_EVERY: Duration = Duration::from_millis(100);
/// The longest interval between two scans.
pub const SCAN_AT_MOST_EVERY: Duration = Duration::from_secs(2);

/// Whether this process is its orphans' reaper: only then is a child of
/// the host that it did not start an orphan of some run. (A library user,
/// such as a test, that is not, keeps its own children to itself.)
#[cfg(target_os = "linux")]
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Makes this process the reaper of its orphaned descendants (Linux);
/// nothing elsewhere. Call once, before starting programs, in a process
/// whose children are all started through [`Tree`].
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets a flag of this process; no memory involved.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        SUBREAPER.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(target_os = "linux")]
pub use linux::Tree;

#[cfg(not(target_os = "linux"))]
pub use group_only::Tree;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, LazyLock, Mutex};

    use super::{SCAN_AT_MOST_EVERY, SCAN_EVERY, SUBREAPER};

    /// A process as `/proc/PID/stat` tells it: pid reuse is told apart by
    /// the start time.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct Proc {
        pid: libc::pid_t,
        /// Clock ticks after boot.
        started: u64,
    }

    struct Stat {
        proc: Proc,
        parent: libc::pid_t,
        group: libc::pid_t,
        zombie: bool,
    }

    /// The processes one tree holds.
    type Members = Arc<Mutex<HashSet<Proc>>>;

    /// Every tree running now, by its root: what each holds.
    static LIVE: LazyLock<Mutex<HashMap<libc::pid_t, Members>>> = LazyLock::new(Mutex::default);

    fn stat(pid: libc::pid_t) -> Option<Stat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid ...`: comm may hold anything, so read after
        // its last `)`.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some(Stat {
            proc: Proc {
                pid,
                started: fields.get(19)?.parse().ok()?,
            },
            parent: fields.get(1)?.parse().ok()?,
            group: fields.get(2)?.parse().ok()?,
            zombie: fields.first() == Some(&"Z"),
        })
    }

    fn all() -> Vec<Stat> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter_map(stat)
            .collect()
    }

    /// Adds to `members` every process under `root` or under a member.
    fn note(root: Proc, members: &Mutex<HashSet<Proc>>, procs: &[Stat]) {
        let mut members = members.lock().unwrap_or_else(|p| p.into_inner());
        let by_pid: HashMap<libc::pid_t, &Stat> = procs.iter().map(|s| (s.proc.pid, s)).collect();
        for stat in procs {
            // Walk up until a member, the root, or nothing we know.
            let mut chain = Vec::new();
            let mut at = stat;
            let belongs = loop {
                if at.proc == root || members.contains(&at.proc) {
                    break true;
                }
                chain.push(at.proc);
                match by_pid.get(&at.parent) {
                    Some(parent) if chain.len() < 64 => at = parent,
                    _ => break false,
                }
            };
            if belongs {
                members.extend(chain);
            }
        }
    }

    /// The processes a program started, noted while it runs; all killed by
    /// [`Tree::end`] or when dropped.
    pub struct Tree {
        root: Proc,
        members: Members,
        stop: Arc<AtomicBool>,
        ended: bool,
    }

    impl Tree {
        /// Starts noting what the child `pid` (a process group leader)
        /// starts.
        pub fn track(pid: libc::pid_t) -> Tree {
            let root = stat(pid).map_or(Proc { pid, started: 0 }, |s| s.proc);
            let members = Members::default();
            LIVE.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid, members.clone());
            let stop = Arc::new(AtomicBool::new(false));
            let (scanned, done) = (members.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut every = SCAN_EVERY;
                while !done.load(Ordering::Relaxed) {
                    note(root, &scanned, &all());
                    std::thread::sleep(every);
                    every = (every * 2).min(SCAN_AT_MOST_EVERY);
                }
            });
            Tree {
                root,
                members,
                stop,
                ended: false,
            }
        }

        /// Kills the program's group, everything it started, and whatever
        /// was handed to the host since it began that no other running
        /// program holds; reaps what is the host's to reap. Returns how many
        /// processes outside the group it killed.
        pub fn end(&mut self) -> usize {
            if self.ended {
                return 0;
            }
            self.ended = true;
            self.stop.store(true, Ordering::Relaxed);
            // SAFETY: signals the group this tree's root leads.
            unsafe { libc::kill(-self.root.pid, libc::SIGKILL) };
            let procs = all();
            note(self.root, &self.members, &procs);
            let host = std::process::id() as libc::pid_t;
            let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            live.remove(&self.root.pid);
            let held_elsewhere: HashSet<Proc> = live
                .iter()
                .flat_map(|(root, members)| {
                    let members = members.lock().unwrap_or_else(|p| p.into_inner());
                    let mut held: Vec<Proc> = members.iter().copied().collect();
                    held.extend(procs.iter().filter(|s| s.proc.pid == *root).map(|s| s.proc));
                    held
                })
                .collect();
            drop(live);
            let members = self.members.lock().unwrap_or_else(|p| p.into_inner());
            let orphans_are_ours = SUBREAPER.load(Ordering::Relaxed);
            let ours: Vec<&Stat> = procs
                .iter()
                .filter(|stat| {
                    members.contains(&stat.proc)
                        || (orphans_are_ours
                            && stat.parent == host
                            && stat.proc.started >= self.root.started
                            && stat.proc != self.root
                            && !held_elsewhere.contains(&stat.proc))
                })
                .collect();
            let mut escaped = 0;
            for stat in ours.iter().filter(|s| !s.zombie) {
                // SAFETY: signals one process; no memory involved.
                unsafe { libc::kill(stat.proc.pid, libc::SIGKILL) };
                escaped += usize::from(stat.group != self.root.pid);
            }
            reap(ours.iter().map(|s| s.proc));
            escaped
        }
    }

    /// Reaps each of `killed` that is (or becomes, as its parent dies) the
    /// host's child, so no zombie is left; gives up on the rest after a
    /// moment.
    fn reap(killed: impl Iterator<Item = Proc>) {
        let mut left: Vec<Proc> = killed.collect();
        for _ in 0..50 {
            left.retain(|proc| {
                let mut status = 0;
                // SAFETY: waits for one process by pid; for another's child
                // it fails at once with ECHILD.
                let done = unsafe { libc::waitpid(proc.pid, &mut status, libc::WNOHANG) };
                done == 0 || (done < 0 && stat(proc.pid).is_some_and(|s| s.proc == *proc))
            });
            if left.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            self.end();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod group_only {
    /// A program's process group, killed by [`Tree::end`] or when dropped.
    pub struct Tree {
        root: libc::pid_t,
        ended: bool,
    }

    impl Tree {
        /// Tracks the child `pid`, a process group leader.
        pub fn track(pid: libc::pid_t) -> Tree {
            Tree {
                root: pid,
                ended: false,
            }
        }

        /// Kills the program's group; returns 0 (nothing outside the group
        /// can be found here).
        pub fn end(&mut self) -> usize {
            if !self.ended {
                self.ended = true;
                // SAFETY: signals the group this tree's root leads.
                unsafe { libc::kill(-self.root, libc::SIGKILL) };
            }
            0
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            self.end();
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::*;

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
            .is_some_and(|state| state != 'Z' && state != 'X')
    }

    #[test]
    fn a_descendant_that_left_the_group_is_killed_with_the_tree() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "setsid sleep 30 >/dev/null & echo $!; sleep 0.3"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut tree = Tree::track(child.id() as libc::pid_t);
        child.wait().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let escaped: i32 = out.trim().parse().unwrap();
        assert!(
            alive(escaped),
            "the group's end left it running, as it should here"
        );
        assert_eq!(tree.end(), 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while alive(escaped) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(escaped), "{escaped} outlived its tree");
    }
}
