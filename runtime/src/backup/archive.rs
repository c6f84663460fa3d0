//! The archive's format: a gzip-compressed tar of regular files, the last of
//! them `manifest.json`, which names every other file with its size and
//! sha256, the `mission` and schema versions, and where the config file
//! and the data directory were. An archive without its manifest is not
//! whole; one whose files do not match it is damaged.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's name in the archive.
pub const MANIFEST: &str = "manifest.json";
/// The database's name in the archive.
pub const DATABASE: &str = "database/mission.db";
/// The format this `mission` writes and reads.
const FORMAT: u32 = 1;
/// The largest manifest read back.
const MAX_MANIFEST: u64 = 64 << 20;

/// What an archive holds and where its files came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The archive format's version.
    pub format: u32,
    /// The `mission` that wrote it.
    pub mission_version: String,
    /// The database's schema version.
    pub schema_version: usize,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// Why: `asked`, `scheduled` or `before-migration`.
    pub reason: String,
    /// The config file's path in the archive (`config/…`).
    pub config: String,
    /// The data directory: relative to the config file's directory, or
    /// absolute if it was elsewhere.
    pub data_dir: PathBuf,
    /// Every other file, with its size and sha256.
    pub files: Vec<FileEntry>,
}

/// One file in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its path in the archive.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, in hex.
    pub sha256: String,
}

/// An archive being written, file by file.
pub struct Writer {
    tar: tar::Builder<GzEncoder<BufWriter<File>>>,
    files: Vec<FileEntry>,
}

impl Writer {
    /// Starts an archive at `path` (created, readable by this user only:
    /// it holds the chat's history; never replaced).
    pub fn create(path: &Path) -> io::Result<Writer> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // Fast compression: a backup runs beside the chat on two cores.
        let gzip = GzEncoder::new(
            BufWriter::with_capacity(1 << 20, file),
            flate2::Compression::fast(),
        );
        Ok(Writer {
            tar: tar::Builder::new(gzip),
            files: Vec::new(),
        })
    }

    /// Adds the file at `source` as `name`; `NotFound` if it is gone.
    pub fn add(&mut self, source: &Path, name: &str) -> io::Result<()> {
        let file = File::open(source)?;
        let metadata = file.metadata()?;
        if !metadata.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                source.display()
            )));
        }
        let size = metadata.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(
            metadata
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs()),
        );
        let mut reader = Hashing::new(file.take(size));
        self.tar.append_data(&mut header, name, &mut reader)?;
        let (read, sha256) = reader.finish();
        if read != size {
            return Err(io::Error::other(format!(
                "{} changed size while it was copied ({size} bytes, then {read})",
                source.display()
            )));
        }
        self.files.push(FileEntry {
            path: name.to_owned(),
            size,
            sha256,
        });
        Ok(())
    }

    /// Ends the archive with its manifest (`manifest` with the files added
    /// filled in) and syncs it to disk.
    pub fn finish(mut self, mut manifest: Manifest) -> anyhow::Result<Manifest> {
        manifest.files = std::mem::take(&mut self.files);
        let text = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(manifest.taken_at.timestamp().max(0) as u64);
        self.tar.append_data(&mut header, MANIFEST, text.as_slice())?;
        let file = self.tar.into_inner()?.finish()?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(manifest)
    }
}

/// Creates a manifest for what is about to be written, taken at `taken_at`.
pub fn manifest(
    taken_at: DateTime<Utc>,
    schema_version: usize,
    reason: &str,
    config: String,
    data_dir: PathBuf,
) -> Manifest {
    Manifest {
        format: FORMAT,
        mission_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version,
        taken_at,
        reason: reason.to_owned(),
        config,
        data_dir,
        files: Vec::new(),
    }
}

/// Unpacks the archive at `archive` into the empty folder `into` and checks
/// every file against its manifest: the manifest, once all match.
pub fn unpack(archive: &Path, into: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(io::BufReader::new(file)));
    let mut found = BTreeMap::new();
    let mut manifest = None;
    for entry in tar.entries().context("it is not a mission backup (a .tar.gz)")? {
        let mut entry = entry.context("it is damaged: cannot read its next file")?;
        let name = entry
            .path()
            .context("it holds a file with an unreadable name")?
            .to_string_lossy()
            .into_owned();
        if !entry.header().entry_type().is_file() {
            bail!("`{name}` in it is not a regular file");
        }
        if name == MANIFEST {
            let mut text = Vec::new();
            (&mut entry).take(MAX_MANIFEST).read_to_end(&mut text)?;
            let read: Manifest =
                serde_json::from_slice(&text).context("its manifest.json is not a mission manifest")?;
            manifest = Some(read);
            continue;
        }
        let relative = safe_relative(&name)?;
        let destination = into.join(relative);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(&destination)
            .with_context(|| format!("`{name}` appears twice in it, or cannot be unpacked"))?;
        let mut reader = Hashing::new(&mut entry);
        io::copy(&mut reader, &mut out).with_context(|| format!("it is damaged: cannot read `{name}`"))?;
        out.sync_all()
            .with_context(|| format!("cannot sync {}", destination.display()))?;
        found.insert(name, reader.finish());
    }
    let manifest = manifest.context("it has no manifest.json: it is not a complete backup")?;
    if manifest.format != FORMAT {
        bail!(
            "it is in backup format {}, which this mission (format {FORMAT}) cannot read",
            manifest.format
        );
    }
    for expected in &manifest.files {
        match found.remove(&expected.path) {
            None => bail!("it is missing `{}`, which its manifest lists", expected.path),
            Some((size, sha256)) if size != expected.size || sha256 != expected.sha256 => bail!(
                "`{}` in it does not match its manifest (sha256 {sha256}, {size} bytes; the manifest \
                 says {}, {} bytes): the archive is damaged",
                expected.path,
                expected.sha256,
                expected.size
            ),
            Some(_) => {}
        }
    }
    if let Some(extra) = found.keys().next() {
        bail!("it holds `{extra}`, which its manifest does not list");
    }
    Ok(manifest)
}

/// `name` as a relative path that stays inside the folder it is unpacked
/// into.
fn safe_relative(name: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(name);
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(path.to_owned())
    } else {
        bail!("`{name}` in it would be unpacked outside its folder")
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }

    /// How many bytes were read, and their sha256 in hex.
    fn finish(self) -> (u64, String) {
        (self.read, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
