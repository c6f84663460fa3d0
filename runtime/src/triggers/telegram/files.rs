//! The files of a chat message — a photo, a document, a voice note, audio,
//! video — read from the update ([`of`]), stored with it, and downloaded
//! before the plugin is called ([`download`]): `getFile`, then the file,
//! into `DATA_DIR/attachments/`, up to the Bot API's 20 MB; kept there for
//! `[retention] attachments` ([`sweep`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use teloxide::net::Download;
use teloxide::requests::Requester;
use teloxide::types::{FileId, FileMeta, Message};

use crate::capabilities::attachments::Attachment;
use crate::capabilities::notify::telegram::TelegramSender;
use crate::wasm::bindings::chat::mission::plugin::attachments::AttachmentKind;

/// The most the Bot API lets a bot download.
pub const MAX_DOWNLOAD: u64 = 20 << 20;

/// One file of a message, as the update names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncomingFile {
    /// `photo`, `document`, `voice`, `audio` or `video`.
    pub kind: String,
    /// Telegram's id for `getFile`.
    pub file_id: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Its name, if the sender's app gave one.
    pub file_name: Option<String>,
    /// Its size in bytes, as Telegram says.
    pub size: u64,
}

/// The files of `message`, in the order a person sees them (a photo: its
/// largest size).
pub fn of(message: &Message) -> Vec<IncomingFile> {
    let photo = message
        .photo()
        .and_then(|sizes| sizes.iter().max_by_key(|s| s.width * s.height))
        .map(|p| file("photo", &p.file, None, "image/jpeg", None));
    let document = message.document().map(|d| {
        let name = d.file_name.clone();
        file(
            "document",
            &d.file,
            d.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
            "application/octet-stream",
            name,
        )
    });
    let voice = message.voice().map(|v| {
        file(
            "voice",
            &v.file,
            v.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
            "audio/ogg",
            None,
        )
    });
    let audio = message.audio().map(|a| {
        let name = a.file_name.clone();
        file(
            "audio",
            &a.file,
            a.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
            "audio/mpeg",
            name,
        )
    });
    let video = message.video().map(|v| {
        let name = v.file_name.clone();
        file(
            "video",
            &v.file,
            v.mime_type.as_ref().map(|m| m.essence_str().to_owned()),
            "video/mp4",
            name,
        )
    });
    [photo, document, voice, audio, video]
        .into_iter()
        .flatten()
        .collect()
}

/// One file of `kind`, its MIME type `default_mime` unless Telegram says.
fn file(
    kind: &str,
    meta: &FileMeta,
    mime_type: Option<String>,
    default_mime: &str,
    file_name: Option<String>,
) -> IncomingFile {
    IncomingFile {
        kind: kind.to_owned(),
        file_id: meta.id.0.clone(),
        mime_type: mime_type.unwrap_or_else(|| default_mime.to_owned()),
        file_name,
        size: u64::from(meta.size),
    }
}

fn kind(name: &str) -> AttachmentKind {
    match name {
        "photo" => AttachmentKind::Photo,
        "voice" => AttachmentKind::Voice,
        "audio" => AttachmentKind::Audio,
        "video" => AttachmentKind::Video,
        _ => AttachmentKind::Document,
    }
}

/// The message's `files` downloaded into `dir` (named by `update` and
/// their place), as the plugin is given them; the reply a person gets for
/// each that could not be taken (too big, or Telegram did not give it).
pub async fn download(
    sender: &TelegramSender,
    dir: &Path,
    update: i64,
    files: &[IncomingFile],
) -> (Vec<Attachment>, Vec<String>) {
    let mut attachments = Vec::new();
    let mut refusals = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let what = file
            .file_name
            .clone()
            .unwrap_or_else(|| format!("the {}", file.kind));
        if file.size > MAX_DOWNLOAD {
            refusals.push(format!(
                "{what} is {:.1} MB; I can take files up to {} MB, so I left it out.",
                file.size as f64 / (1 << 20) as f64,
                MAX_DOWNLOAD >> 20
            ));
            continue;
        }
        let path = stored_at(dir, update, index);
        match fetch(sender, &file.file_id, &path).await {
            Ok(size) => attachments.push(attachment(index, file, path, size)),
            Err(e) => {
                tracing::warn!(
                    update,
                    file = file.file_id,
                    "downloading a file from Telegram failed: {e:#}"
                );
                refusals.push(format!(
                    "I could not fetch {what} from Telegram; please send it again."
                ));
            }
        }
    }
    (attachments, refusals)
}

/// The files of update `update` that [`download`] left in `dir` and the
/// sweep has not removed yet: what its handler was given, read again.
pub fn on_disk(dir: &Path, update: i64, files: &[IncomingFile]) -> Vec<Attachment> {
    files
        .iter()
        .enumerate()
        .filter_map(|(index, file)| {
            let path = stored_at(dir, update, index);
            let size = std::fs::metadata(&path).ok().filter(|m| m.is_file())?.len();
            Some(attachment(index, file, path, size))
        })
        .collect()
}

/// Where file `index` of update `update` is kept.
fn stored_at(dir: &Path, update: i64, index: usize) -> PathBuf {
    dir.join(format!("{update}-{index}"))
}

fn attachment(index: usize, file: &IncomingFile, path: PathBuf, size: u64) -> Attachment {
    Attachment {
        id: index as u32,
        kind: kind(&file.kind),
        mime_type: file.mime_type.clone(),
        file_name: file.file_name.clone(),
        size,
        transcript: None,
        path,
    }
}

/// Removes the files in `dir` (and its folders, each removed once empty)
/// last modified before `cutoff`; how many.
pub fn sweep(dir: &Path, cutoff: std::time::SystemTime) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_file() && metadata.modified()? < cutoff {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        } else if metadata.is_dir() {
            removed += sweep(&entry.path(), cutoff)?;
            // Still holding files: kept.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    Ok(removed)
}

/// `getFile`, then the file itself into `path`; its size.
async fn fetch(sender: &TelegramSender, id: &str, path: &PathBuf) -> anyhow::Result<u64> {
    let file = sender.bot().get_file(FileId(id.to_owned())).await?;
    if u64::from(file.size) > MAX_DOWNLOAD {
        anyhow::bail!("Telegram says it has {} bytes", file.size);
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut out = tokio::fs::File::create(path).await?;
    sender.bot().download_file(&file.path, &mut out).await?;
    // tokio's file writes in the background: the bytes are in the file
    // only once it is flushed.
    use tokio::io::AsyncWriteExt as _;
    out.flush().await?;
    Ok(tokio::fs::metadata(path).await?.len())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn the_files_an_update_left_on_disk_are_read_again_and_swept_ones_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = |kind: &str, name: Option<&str>| IncomingFile {
            kind: kind.into(),
            file_id: "id".into(),
            mime_type: "text/plain".into(),
            file_name: name.map(str::to_owned),
            size: 99,
        };
        let files = [file("photo", None), file("document", Some("notes.txt"))];
        std::fs::write(dir.path().join("7-1"), b"hello").unwrap();
        let found = on_disk(dir.path(), 7, &files);
        assert_eq!(
            found,
            [Attachment {
                id: 1,
                kind: AttachmentKind::Document,
                mime_type: "text/plain".into(),
                file_name: Some("notes.txt".into()),
                size: 5,
                transcript: None,
                path: dir.path().join("7-1"),
            }]
        );
        assert!(on_disk(dir.path(), 8, &files).is_empty(), "another update's");
    }

    #[test]
    fn a_sweep_removes_the_files_older_than_its_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("5-0"), b"photo").unwrap();
        std::fs::write(dir.path().join("6-0"), b"pdf").unwrap();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        assert_eq!(sweep(dir.path(), an_hour_ago).unwrap(), 0, "both are new");
        let soon = SystemTime::now() + Duration::from_secs(1);
        assert_eq!(sweep(dir.path(), soon).unwrap(), 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(
            sweep(&dir.path().join("none"), soon).unwrap(),
            0,
            "no directory yet"
        );
    }
}
