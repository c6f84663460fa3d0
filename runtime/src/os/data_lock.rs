//! The data directory's lock (`DATA_DIR/host.lock`, an advisory `flock`):
//! every `mission up` holds it shared for its whole life, and `mission
//! restore` takes it exclusively — without waiting — while it replaces the
//! database, so neither runs over the other. The kernel releases it when
//! the process ends, however it ends.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "host.lock";

/// A held lock on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// Holds `data_dir`'s lock shared (as a running host), waiting while a
/// restore holds it.
pub fn shared(data_dir: &Path) -> io::Result<DataLock> {
    lock(data_dir, libc::LOCK_SH)
}

/// Holds `data_dir`'s lock alone (as a restore), or `None` if a host holds
/// it.
pub fn exclusive_now(data_dir: &Path) -> io::Result<Option<DataLock>> {
    match lock(data_dir, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

fn lock(data_dir: &Path, operation: libc::c_int) -> io::Result<DataLock> {
    std::fs::create_dir_all(data_dir)?;
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(data_dir.join(LOCK_FILE))?;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(DataLock { _file: file });
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_share_the_lock_and_a_restore_waits_for_none() {
        let dir = tempfile::tempdir().unwrap();
        let host = shared(dir.path()).unwrap();
        let another_host = shared(dir.path()).unwrap();
        assert!(exclusive_now(dir.path()).unwrap().is_none());
        drop((host, another_host));
        let restore = exclusive_now(dir.path()).unwrap();
        assert!(restore.is_some());
        assert!(exclusive_now(dir.path()).unwrap().is_none());
    }
}
