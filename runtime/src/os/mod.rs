//! What the host asks of the operating system, bounded against what it
//! finds there: the data directory's [`data_lock`], files read only if
//! regular and within a cap
//! ([`regular_file`]), and programs ended with everything they started
//! ([`process_tree`]), the machine's time [`zone`], the process's own
//! [`usage`], and who is who
//! ([`process_exists`], [`user_id`]). Below everything else: any module
//! may use it.

pub mod data_lock;
pub mod fd_limit;
pub mod process_tree;
pub mod regular_file;
pub mod usage;
pub mod zone;

/// Whether process `pid` exists (ours to signal or not).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; no memory is involved.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The user this process runs as.
pub fn user_id() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}
