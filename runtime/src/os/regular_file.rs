//! Reading the files a user points the host at (`mission.toml`, schedule
//! files, plugins' `.wasm`) without trusting what they are: only a regular
//! file is read, and only up to a size cap. A FIFO, a device or a socket is
//! refused without blocking (opened with `O_NONBLOCK`, checked with `fstat`
//! on the open file, so a swap between the check and the read cannot
//! matter), and a file bigger than its cap is refused before it is read.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest `mission.toml` read.
pub const MAX_CONFIG: u64 = 1 << 20;
/// The largest schedule file read.
pub const MAX_SCHEDULE: u64 = 1 << 20;
/// The largest `.wasm` read (a Python component is about 40 MiB).
pub const MAX_COMPONENT: u64 = 256 << 20;

/// Reads the regular file `path` whole, if it is at most `max` bytes.
pub fn read(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file but {}", describe(kind)),
        ));
    }
    if metadata.len() > max {
        return Err(too_big(metadata.len(), max));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // A file that grows while it is read is cut at the cap plus one byte,
    // which is then refused.
    File::take(file, max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// Reads the regular file `path` as UTF-8 text, if it is at most `max`
/// bytes.
pub fn read_to_string(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_big(len: u64, max: u64) -> io::Error {
    let mib = |n: u64| format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64);
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is more than the {} this file may be", mib(len), mib(max)),
    )
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "cron = \"* * * * *\"").unwrap();
        assert_eq!(read_to_string(&file, 100).unwrap(), "cron = \"* * * * *\"");
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        // Nobody writes to it: a blocking open would never return.
        let error = read(&fifo, 100).unwrap_err();
        assert!(
            error.to_string().contains("not a regular file but a FIFO"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_device_behind_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read(&link, MAX_COMPONENT).unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");
    }

    #[test]
    fn refuses_a_file_past_its_cap_before_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sparse.wasm");
        // 3 GB of holes: reading it would take 3 GB of memory.
        File::create(&file).unwrap().set_len(3 << 30).unwrap();
        let error = read(&file, MAX_COMPONENT).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("3072.0 MiB is more than the 256.0 MiB"),
            "{error}"
        );
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let error = read(dir.path(), 100).unwrap_err();
        assert!(error.to_string().contains("a directory"), "{error}");
    }
}
