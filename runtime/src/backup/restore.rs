//! Restoring an archive into a folder: unpacked beside it first, every file
//! checked against the manifest, the database's schema and integrity
//! checked, and only then put in place — the config file, the schedules
//! and the plugins where they were relative to the config file's directory,
//! the database and the attachments in the data directory the manifest
//! names. A file that was there and differs is kept beside it
//! (`NAME.before-restore-TIME`).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use chrono::Utc;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::archive::{self, Manifest};
use super::folder::with_suffix;
use crate::db::{self, DATABASE_FILE};

/// An archive unpacked and checked, not yet in place. Dropping it removes
/// what was unpacked.
pub struct Unpacked {
    into: PathBuf,
    staging: Staging,
    manifest: Manifest,
}

/// The folder an archive is unpacked into, removed when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a restore put where.
#[derive(Debug)]
pub struct Restored {
    /// The config file.
    pub config: PathBuf,
    /// The database.
    pub database: PathBuf,
    /// How many files were put in place, the database among them.
    pub files: usize,
    /// Files that were there and differed, kept under a new name.
    pub kept_aside: Vec<PathBuf>,
    /// Files that were outside the config file's directory: where each was,
    /// and where its copy was put instead (under `outside/`).
    pub outside: Vec<(PathBuf, PathBuf)>,
}

/// Unpacks the archive at `archive` beside `into` (created if missing) and
/// checks it whole: every file against the manifest, the schema against
/// what this `mission` knows, and `PRAGMA integrity_check`.
pub fn unpack(archive: &Path, into: &Path) -> anyhow::Result<Unpacked> {
    std::fs::create_dir_all(into).with_context(|| format!("cannot create {}", into.display()))?;
    let into = std::path::absolute(into).with_context(|| format!("cannot resolve {}", into.display()))?;
    let staging = into.join(format!(".mission-restore-{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    let staging = Staging(staging);
    let manifest = archive::unpack(archive, &staging.0)?;
    if manifest
        .data_dir
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        bail!(
            "its manifest puts the data directory at {}, outside any folder it can be restored into",
            manifest.data_dir.display()
        );
    }
    if manifest.schema_version > db::SCHEMA_VERSION {
        bail!(
            "its database: {} (taken by mission {})",
            db::NewerSchema {
                found: manifest.schema_version
            },
            manifest.mission_version
        );
    }
    let database = staging.0.join(archive::DATABASE);
    let connection = Connection::open_with_flags(&database, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .context("its database cannot be opened")?;
    let version = db::schema_version(&connection)?;
    if version != manifest.schema_version {
        bail!(
            "its database is at schema version {version}, its manifest says {}: the archive is damaged",
            manifest.schema_version
        );
    }
    let integrity: String = connection.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if integrity != "ok" {
        bail!("its database fails SQLite's integrity check: {integrity}");
    }
    drop(connection);
    Ok(Unpacked {
        into,
        staging,
        manifest,
    })
}

impl Unpacked {
    /// The archive's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The data directory the database goes to.
    pub fn data_dir(&self) -> PathBuf {
        self.into.join(&self.manifest.data_dir)
    }

    /// Puts every file in place, the database first.
    pub fn install(self) -> anyhow::Result<Restored> {
        let data_dir = self.data_dir();
        let mut restored = Restored {
            config: PathBuf::new(),
            database: data_dir.join(DATABASE_FILE),
            files: 0,
            kept_aside: Vec::new(),
            outside: Vec::new(),
        };
        let aside = format!(".before-restore-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
        let staged = self.staging.0.join(archive::DATABASE);
        if let Some(kept) = put_database_in_place(&staged, &restored.database, &aside)? {
            restored.kept_aside.push(kept);
        }
        restored.files += 1;
        for file in &self.manifest.files {
            if file.path == archive::DATABASE {
                continue;
            }
            let destination = match file.path.split_once('/') {
                Some(("config", relative)) => self.into.join(relative),
                Some(("data", relative)) => data_dir.join(relative),
                Some(("outside", was)) => {
                    let put = self.into.join(&file.path);
                    restored.outside.push((Path::new("/").join(was), put.clone()));
                    put
                }
                _ => bail!("`{}` in it has no place to go", file.path),
            };
            if file.path == self.manifest.config {
                restored.config = destination.clone();
            }
            let staged = self.staging.0.join(&file.path);
            if let Some(kept) = put_in_place(&staged, &destination, &file.sha256, &aside)? {
                restored.kept_aside.push(kept);
            }
            restored.files += 1;
        }
        Ok(restored)
    }
}

/// Moves `staged` to `destination`; a different file there is kept beside
/// it first, its name ending in `aside` (returned).
fn put_in_place(
    staged: &Path,
    destination: &Path,
    sha256: &str,
    aside: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let mut kept = None;
    match std::fs::read(destination) {
        Ok(existing) if hex::encode(Sha256::digest(&existing)) == sha256 => return Ok(None),
        Ok(_) => {
            let to = with_suffix(destination, aside);
            std::fs::rename(destination, &to)
                .with_context(|| format!("cannot move {} aside", destination.display()))?;
            kept = Some(to);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", destination.display())),
    }
    if let Some(parent) = destination.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::rename(staged, destination)
        .with_context(|| format!("cannot write {}", destination.display()))?;
    Ok(kept)
}

/// Moves the staged database to `destination`. A database there is first
/// checkpointed whole (so its write-ahead log is in it) and kept beside it,
/// its name ending in `aside` (returned); its log and shared memory files
/// go, so that neither is applied to the restored one.
fn put_database_in_place(staged: &Path, destination: &Path, aside: &str) -> anyhow::Result<Option<PathBuf>> {
    let parent = destination.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let mut kept = None;
    if destination.exists() {
        let connection = Connection::open_with_flags(destination, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("cannot open the database there, {}", destination.display()))?;
        connection.busy_timeout(db::BUSY_TIMEOUT)?;
        // (busy, frames in the log, frames checkpointed)
        let (busy, logged, moved): (i64, i64, i64) = connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .with_context(|| format!("cannot checkpoint {}", destination.display()))?;
        if busy != 0 || logged != moved {
            bail!(
                "cannot move {} aside whole: another process is using it (its log could not be checkpointed)",
                destination.display()
            );
        }
        drop(connection);
        let to = with_suffix(destination, aside);
        std::fs::rename(destination, &to)
            .with_context(|| format!("cannot move {} aside", destination.display()))?;
        kept = Some(to);
    }
    for leftover in ["-wal", "-shm", "-journal"] {
        match std::fs::remove_file(with_suffix(destination, leftover)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}{leftover}", destination.display()))
            }
            _ => {}
        }
    }
    std::fs::rename(staged, destination)
        .with_context(|| format!("cannot write {}", destination.display()))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", parent.display()))?;
    Ok(kept)
}
