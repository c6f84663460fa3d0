//! What this process uses now: its resident memory and its open files,
//! read from the kernel (Linux's `/proc`, macOS's `proc_pidinfo` and
//! `/dev/fd`); and background work told to yield the processor to the rest.

/// The bytes of memory this process has resident now, if the system says.
pub fn resident_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // `size resident shared text lib data dt`, in pages.
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        // SAFETY: sysconf reads a constant and touches no memory of ours.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()?)
    }
    #[cfg(target_os = "macos")]
    {
        // SAFETY: proc_taskinfo is plain integers, for which zero is valid.
        let mut info: libc::proc_taskinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
        // SAFETY: `info` is a proc_taskinfo of `size` bytes, which is what
        // PROC_PIDTASKINFO writes, and no more.
        let written = unsafe {
            libc::proc_pidinfo(
                libc::getpid(),
                libc::PROC_PIDTASKINFO,
                0,
                (&mut info as *mut libc::proc_taskinfo).cast(),
                size,
            )
        };
        (written == size).then_some(info.pti_resident_size)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        None
    }
}

/// How many files (and sockets, pipes) this process has open now.
pub fn open_files() -> Option<u64> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    // The listing's own descriptor is among those counted.
    let count = std::fs::read_dir(dir).ok()?.count() as u64;
    Some(count.saturating_sub(1))
}

/// Lowers the calling thread's priority to the background's (nice 10 on
/// Linux, `PRIO_DARWIN_BG` on macOS), for work that must not slow what
/// people wait for; it cannot be raised again, so only on a thread of its
/// own. Whether it was lowered.
pub fn lower_this_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority on this thread; no memory.
        unsafe {
            let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, thread, 10) == 0
        }
    }
    #[cfg(target_os = "macos")]
    {
        // SAFETY: setpriority on this thread; no memory.
        unsafe { libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG) == 0 }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opened_files_are_counted_and_memory_is_resident() {
        // Other tests open and close files meanwhile: only a floor holds.
        let files: Vec<_> = (0..50).map(|_| tempfile::tempfile().unwrap()).collect();
        let open = open_files().unwrap();
        assert!(open >= 50 + 3, "{open} open");
        drop(files);
        let resident = resident_bytes().unwrap();
        assert!(resident > 1 << 20, "{resident} bytes resident");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_lowered_thread_is_at_background_priority_and_the_others_are_not() {
        let lowered = std::thread::spawn(|| {
            assert!(lower_this_thread());
            // SAFETY: reads this thread's nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 10);
        // SAFETY: reads this thread's nice value.
        let here =
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) };
        assert_eq!(here, 0);
    }
}
