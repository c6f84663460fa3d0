//! Files a chat plugin sends back with its reply (`attachments.attach` and
//! `attach-written`): copied, as they are when attached, into the call's
//! folder under `DATA_DIR/outbox/` (the folder's name kept from before this
//! module was named for what it holds), and listed with the reply the
//! bot stores before it sends, so a reply given before a crash goes out with
//! its files after it. The bot removes the folder once they are sent.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::units::ByteSize;
use crate::os::regular_file;
use crate::wasm::bindings::CapabilityError;

/// The most files one reply carries.
pub const MAX_FILES: usize = 10;
/// The largest photo the Bot API takes; a bigger image goes as a document.
pub const MAX_PHOTO: u64 = 10 << 20;
/// The largest file a bot may upload.
pub const MAX_DOCUMENT: u64 = 50 << 20;

/// One file to send with a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingFile {
    /// The name the chat shows.
    pub name: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where the host keeps it until it is sent.
    pub path: PathBuf,
}

impl OutgoingFile {
    /// Whether Telegram shows it as a photo (else it goes as a document).
    pub fn is_photo(&self) -> bool {
        matches!(self.mime_type.as_str(), "image/jpeg" | "image/png" | "image/webp") && self.size <= MAX_PHOTO
    }
}

/// Where one call's files go, and the ones attached so far. Clones share
/// the list: the bot keeps one to read what the call attached.
#[derive(Debug, Clone)]
pub struct ReplyFiles {
    dir: PathBuf,
    files: Arc<Mutex<Vec<OutgoingFile>>>,
}

impl ReplyFiles {
    /// An empty outbox keeping its files in `dir` (created when the first
    /// file comes).
    pub fn new(dir: PathBuf) -> ReplyFiles {
        ReplyFiles {
            dir,
            files: Arc::default(),
        }
    }

    /// The files attached so far, in order.
    pub fn files(&self) -> Vec<OutgoingFile> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps `contents` as the file `name` of type `mime_type`, if it is at
    /// most `cap` bytes and the reply has room for it.
    pub(crate) fn add(
        &self,
        name: &str,
        mime_type: &str,
        contents: &[u8],
        cap: u64,
    ) -> Result<(), CapabilityError> {
        let name = file_name(name)?;
        let size = contents.len() as u64;
        let limit = cap.min(MAX_DOCUMENT);
        if size > limit {
            return Err(CapabilityError::OverBudget(format!(
                "`{name}` has {size} bytes; a reply's file may have at most {}",
                ByteSize(limit)
            )));
        }
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if files.len() >= MAX_FILES {
            return Err(CapabilityError::OverBudget(format!(
                "a reply carries at most {MAX_FILES} files"
            )));
        }
        let path = self.dir.join(format!("{}-{name}", files.len() + 1));
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&path, contents));
        if let Err(e) = written {
            tracing::error!("keeping a reply's file at {} failed: {e}", path.display());
            return Err(CapabilityError::Failed(format!("keeping `{name}` failed")));
        }
        files.push(OutgoingFile {
            name,
            mime_type: mime_type.to_owned(),
            size,
            path,
        });
        Ok(())
    }
}

/// Removes the kept copies of `files` (sent, or never to be sent), and
/// their folder once it is empty.
pub fn discard(files: &[OutgoingFile]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(&file.path) {
            tracing::warn!("removing {} failed: {e}", file.path.display());
        }
    }
    if let Some(dir) = files.first().and_then(|f| f.path.parent()) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Reads the file at `relative` inside `workdir` (Claude's working
/// directory), at most `cap` bytes: a path that leaves it (absolute, `..`,
/// or a symbolic link out), or that is not a regular file, is `denied`.
pub fn read_written(workdir: &Path, relative: &str, cap: u64) -> Result<Vec<u8>, CapabilityError> {
    let denied = |why: &str| CapabilityError::Denied(format!("`{relative}`: {why}"));
    let path = Path::new(relative);
    if relative.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(denied(
            "give a path inside Claude's working directory, without `..`",
        ));
    }
    let root = workdir
        .canonicalize()
        .map_err(|_| denied("Claude's working directory does not exist yet"))?;
    let real = root
        .join(path)
        .canonicalize()
        .map_err(|_| CapabilityError::Failed(format!("`{relative}`: no such file")))?;
    if !real.starts_with(&root) {
        return Err(denied("it leads outside Claude's working directory"));
    }
    let limit = cap.min(MAX_DOCUMENT);
    let size = std::fs::metadata(&real).map(|m| (m.is_file(), m.len()));
    match size {
        Ok((false, _)) => return Err(denied("not a regular file")),
        Ok((true, len)) if len > limit => {
            return Err(CapabilityError::OverBudget(format!(
                "`{relative}` has {len} bytes; a reply's file may have at most {}",
                ByteSize(limit)
            )))
        }
        _ => {}
    }
    // Read without trusting the look above: a swap to a FIFO is refused.
    regular_file::read(&real, limit).map_err(|e| CapabilityError::Failed(format!("`{relative}`: {e}")))
}

/// The MIME type a file called `name` most likely has.
pub fn mime_type_of(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("pdf") => "application/pdf",
        Some("csv") => "text/csv",
        Some("txt" | "log") => "text/plain",
        Some("md") => "text/markdown",
        Some("json") => "application/json",
        Some("html" | "htm") => "text/html",
        Some("zip") => "application/zip",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// The longest file name kept, in bytes (file systems count bytes: 255
/// at most on Linux and macOS, and the host adds a prefix).
const MAX_NAME_BYTES: usize = 128;

/// `name` as a file name the host can keep: its last path segment,
/// without control characters, at most [`MAX_NAME_BYTES`] — a longer one
/// shortened before its extension, at a character's boundary.
fn file_name(name: &str) -> Result<String, CapabilityError> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        return Err(CapabilityError::Failed(format!("`{name}` is not a file name")));
    }
    if clean.len() <= MAX_NAME_BYTES {
        return Ok(clean);
    }
    let extension = match clean.rfind('.') {
        Some(dot) if clean.len() - dot <= 16 => &clean[dot..],
        _ => "",
    };
    let mut stem_end = MAX_NAME_BYTES - extension.len();
    while !clean.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    Ok(format!("{}{extension}", &clean[..stem_end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_in_many_bytes_is_kept_shortened_with_its_extension() {
        let dir = tempfile::tempdir().unwrap();
        let reply = ReplyFiles::new(dir.path().join("outbox"));
        // 100 characters of three bytes each: 304 bytes with ".pdf".
        let name = format!("{}.pdf", "請".repeat(100));
        reply.add(&name, "application/pdf", b"%PDF", 1 << 20).unwrap();
        let kept = &reply.files()[0];
        assert_eq!(kept.name, format!("{}.pdf", "請".repeat(41)));
        assert_eq!(std::fs::read(&kept.path).unwrap(), b"%PDF");
    }

    #[test]
    fn files_are_kept_in_order_and_refused_past_their_caps() {
        let dir = tempfile::tempdir().unwrap();
        let reply = ReplyFiles::new(dir.path().join("outbox"));
        reply
            .add("../../etc/report.csv", "text/csv", b"a,b\n", 1 << 20)
            .unwrap();
        reply.add("chart.png", "image/png", b"png", 1 << 20).unwrap();
        let files = reply.files();
        assert_eq!(
            files[0].name, "report.csv",
            "only the last segment of a name is kept"
        );
        assert!(files[0].path.starts_with(dir.path().join("outbox")));
        assert_eq!(std::fs::read(&files[0].path).unwrap(), b"a,b\n");
        assert!(!files[0].is_photo() && files[1].is_photo());
        assert!(matches!(
            reply.add("big.bin", "application/octet-stream", &[0; 100], 99),
            Err(CapabilityError::OverBudget(_))
        ));
        for i in 2..MAX_FILES {
            reply.add(&format!("{i}.txt"), "text/plain", b"x", 10).unwrap();
        }
        assert!(matches!(
            reply.add("one-too-many.txt", "text/plain", b"x", 10),
            Err(CapabilityError::OverBudget(_))
        ));
    }

    #[test]
    fn only_regular_files_inside_the_working_directory_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = dir.path().join("claude");
        std::fs::create_dir_all(workdir.join("out")).unwrap();
        std::fs::write(workdir.join("out/invoice.pdf"), b"%PDF").unwrap();
        std::fs::write(dir.path().join("secret"), b"host secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), workdir.join("link")).unwrap();
        assert_eq!(
            read_written(&workdir, "out/invoice.pdf", 1 << 20).unwrap(),
            b"%PDF"
        );
        for outside in ["../secret", "/etc/passwd", "link", ""] {
            assert!(
                matches!(
                    read_written(&workdir, outside, 1 << 20),
                    Err(CapabilityError::Denied(_))
                ),
                "{outside}"
            );
        }
        assert!(matches!(
            read_written(&workdir, "out", 1 << 20),
            Err(CapabilityError::Denied(_))
        ));
        assert!(matches!(
            read_written(&workdir, "none.pdf", 1 << 20),
            Err(CapabilityError::Failed(_))
        ));
        assert!(matches!(
            read_written(&workdir, "out/invoice.pdf", 2),
            Err(CapabilityError::OverBudget(_))
        ));
    }
}
