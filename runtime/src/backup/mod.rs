//! Backups: everything the business runs on in one archive, taken while the
//! host serves — a consistent copy of the database (`VACUUM INTO` on a
//! connection of its own, so the host's queries go on), the config file,
//! the schedules, each plugin's `.wasm` and source, and the chat's
//! attachments — with a manifest of each file's sha256 ([`archive`]);
//! archives kept in a folder by the time they were taken ([`folder`]);
//! and [`restore`], which checks an archive whole before it puts anything
//! in place. A database whose schema is about to change is backed up first
//! ([`open_database`]).

pub mod archive;
mod contents;
pub mod folder;
pub mod restore;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use rusqlite::{Connection, OpenFlags};

use crate::config::backup::DEFAULT_DIR;
use crate::config::Config;
use crate::db::{self, Database, BUSY_TIMEOUT, DATABASE_FILE};

/// Why an archive was taken (kept in its manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `mission backup`.
    Asked,
    /// `[backup] every`.
    Scheduled,
    /// The database's schema was about to change.
    BeforeMigration,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Asked => "asked",
            Reason::Scheduled => "scheduled",
            Reason::BeforeMigration => "before-migration",
        }
    }
}

/// A backup taken.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The archive.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// How many files it holds beside the database and its manifest.
    pub files: usize,
    /// The database's schema version.
    pub schema_version: usize,
    /// How long it took.
    pub took: Duration,
}

/// The folder `config`'s archives go to: `[backup] dir`, or `backups/` in
/// the data directory.
pub fn dir(config: &Config) -> PathBuf {
    config
        .backup
        .as_ref()
        .map_or_else(|| config.data_dir.join(DEFAULT_DIR), |b| b.dir.clone())
}

/// Takes a backup of everything `config` names into the folder `dir`
/// (created if missing), on a thread of its own at background priority:
/// compressing a year's database takes a core for a second, which the chat
/// and the runs get first.
pub async fn take(config: &Config, dir: &Path, reason: Reason) -> anyhow::Result<Taken> {
    let (config, dir) = (config.clone(), dir.to_owned());
    let (taken, taking) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("backup".into())
        .spawn(move || {
            crate::os::usage::lower_this_thread();
            let _ = taken.send(take_now(&config, &dir, reason));
        })
        .context("cannot start the backup's thread")?;
    taking.await.context("the backup's thread panicked")?
}

/// Takes a backup on this thread.
fn take_now(config: &Config, dir: &Path, reason: Reason) -> anyhow::Result<Taken> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the backup folder {}", dir.display()))?;
    folder::remove_abandoned(dir)
        .with_context(|| format!("cannot clear the backup folder {}", dir.display()))?;
    let at = Utc::now();
    let partial = folder::partial_path(dir, at);
    let copy = folder::database_copy_path(&partial);
    let scratch = RemovedWhenDone(vec![partial.clone(), copy.clone()]);
    let database = config.data_dir.join(DATABASE_FILE);
    let schema_version = copy_database(&database, &copy)?;
    let roots = contents::Roots::of(config).context("cannot resolve the config's folders")?;
    let entries = contents::of(config, &roots, dir).context("cannot list the files to back up")?;
    let mut writer =
        archive::Writer::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    writer
        .add(&copy, archive::DATABASE)
        .with_context(|| format!("cannot archive the copy of {}", database.display()))?;
    for entry in &entries {
        match writer.add(&entry.source, &entry.name) {
            Ok(()) => {}
            // Removed since it was listed (an attachment swept): not kept.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot archive {}", entry.source.display())),
        }
    }
    let manifest = archive::manifest(
        at,
        schema_version,
        reason.as_str(),
        roots.name(&contents::absolute(&config.file)?),
        roots.data_dir_in_manifest(),
    );
    let manifest = writer
        .finish(manifest)
        .with_context(|| format!("cannot finish {}", partial.display()))?;
    let path = dir.join(folder::archive_name(at));
    // A link, not a rename: an archive of the same name is never replaced.
    std::fs::hard_link(&partial, &path)
        .with_context(|| format!("cannot name the archive {}", path.display()))?;
    drop(scratch);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the backup folder {}", dir.display()))?;
    Ok(Taken {
        size: std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len(),
        path,
        files: manifest.files.len() - 1,
        schema_version,
        took: started.elapsed(),
    })
}

/// Copies the database at `database` to `copy` as one consistent snapshot,
/// on a connection of its own: its schema version.
fn copy_database(database: &Path, copy: &Path) -> anyhow::Result<usize> {
    let connection = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open the database {}", database.display()))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let destination = copy.to_str().context("the backup folder's path is not UTF-8")?;
    connection
        .execute("VACUUM INTO ?1", [destination])
        .with_context(|| format!("cannot copy the database {}", database.display()))?;
    let copied = Connection::open_with_flags(copy, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| db::schema_version(&c))
        .with_context(|| format!("cannot read the copy {}", copy.display()))?;
    Ok(copied)
}

/// Opens `config`'s database, first taking a backup if its schema is about
/// to change (said in the log, with where). Blocks while it does.
pub fn open_database(config: &Config) -> anyhow::Result<Database> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "failed to create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let path = config.data_dir.join(DATABASE_FILE);
    if let Some(from) = schema_behind(&path)? {
        let dir = dir(config);
        let taken = take_now(config, &dir, Reason::BeforeMigration).with_context(|| {
            format!(
                "the database {}'s schema must change (version {from} to {}), and the backup taken \
                     first failed",
                path.display(),
                db::SCHEMA_VERSION
            )
        })?;
        tracing::warn!(
            archive = %taken.path.display(),
            "the database's schema changes from version {from} to {}: backed up first",
            db::SCHEMA_VERSION
        );
    }
    Database::open(&path)
}

/// The schema version of an existing database at `path` that this
/// `mission` would migrate; none for a new file or an up-to-date one.
fn schema_behind(path: &Path) -> anyhow::Result<Option<usize>> {
    if !path.exists() {
        return Ok(None);
    }
    // Read-write but never created: a read-only connection cannot open a
    // WAL database whose shared-memory file is gone.
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("cannot open the database {}", path.display()))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let version = db::schema_version(&connection)?;
    if version > db::SCHEMA_VERSION {
        bail!(
            "the database {}: {}",
            path.display(),
            db::NewerSchema { found: version }
        );
    }
    Ok(Some(version).filter(|&v| v > 0 && v < db::SCHEMA_VERSION))
}

/// Files removed when dropped: a backup's scratch files, whether it
/// succeeds or fails.
struct RemovedWhenDone(Vec<PathBuf>);

impl Drop for RemovedWhenDone {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    /// A config in `dir` with a schedule, a plugin's `.wasm` and source,
    /// and an attachment.
    fn business(dir: &Path) -> Config {
        std::fs::create_dir_all(dir.join("schedules")).unwrap();
        std::fs::create_dir_all(dir.join("plugins/briefing/src")).unwrap();
        std::fs::create_dir_all(dir.join("plugins/briefing/target/debug")).unwrap();
        std::fs::create_dir_all(dir.join("data/attachments/7")).unwrap();
        std::fs::write(
            dir.join("schedules/morning.toml"),
            "plugin = \"briefing\"\ncron = \"0 7 * * *\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("plugins/briefing.wasm"), b"\0asm not really").unwrap();
        std::fs::write(dir.join("plugins/briefing/src/lib.rs"), "// the source").unwrap();
        std::fs::write(dir.join("plugins/briefing/target/debug/big"), "build output").unwrap();
        std::fs::write(dir.join("data/attachments/7/photo.jpg"), "jpeg").unwrap();
        let text = "# my business\ndata_dir = \"data\"\n[plugins.briefing]\nworld = \"task\"\n\
                    wasm = \"plugins/briefing.wasm\"\n";
        std::fs::write(dir.join("mission.toml"), text).unwrap();
        Config::load(&dir.join("mission.toml")).unwrap()
    }

    async fn remember(db: &Database, value: &'static str) {
        db.call(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO plugin_state VALUES ('briefing', 'k', ?1)",
                [value],
            )
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn an_archive_restores_into_a_fresh_folder_whole() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = business(here.path());
        let db = open_database(&config).unwrap();
        remember(&db, "before the backup").await;
        let taken = take(&config, &dir(&config), Reason::Asked).await.unwrap();
        remember(&db, "after the backup").await;
        assert_eq!(taken.schema_version, db::SCHEMA_VERSION);
        assert_eq!(taken.files, 5, "config, schedule, .wasm, source, attachment");

        let unpacked = restore::unpack(&taken.path, there.path()).unwrap();
        let names: Vec<&str> = unpacked
            .manifest()
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            names,
            [
                archive::DATABASE,
                "config/mission.toml",
                "config/plugins/briefing/src/lib.rs",
                "config/plugins/briefing.wasm",
                "config/schedules/morning.toml",
                "data/attachments/7/photo.jpg"
            ]
        );
        let restored = unpacked.install().unwrap();
        assert_eq!(restored.config, there.path().join("mission.toml"));
        let text = std::fs::read_to_string(&restored.config).unwrap();
        assert!(text.starts_with("# my business"), "{text}");
        assert!(there.path().join("data/attachments/7/photo.jpg").exists());
        assert!(!there.path().join("plugins/briefing/target").exists());
        let restored_config = Config::load(&restored.config).unwrap();
        let db = open_database(&restored_config).unwrap();
        let value: String = db
            .call(|c| c.query_row("SELECT value FROM plugin_state", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(value, "before the backup");
        // Nothing of the unpacking is left beside it.
        let left: Vec<_> = std::fs::read_dir(there.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn restoring_over_a_stopped_host_keeps_what_was_there_aside() {
        let here = tempfile::tempdir().unwrap();
        let config = business(here.path());
        let db = open_database(&config).unwrap();
        remember(&db, "the archived value").await;
        let taken = take(&config, &dir(&config), Reason::Asked).await.unwrap();
        remember(&db, "the value since").await;
        std::fs::write(
            here.path().join("schedules/morning.toml"),
            "plugin = \"briefing\"\ncron = \"0 8 * * *\"\n",
        )
        .unwrap();
        drop(db);
        let restored = restore::unpack(&taken.path, here.path())
            .unwrap()
            .install()
            .unwrap();
        assert_eq!(restored.kept_aside.len(), 2, "{:?}", restored.kept_aside);
        let schedule = std::fs::read_to_string(here.path().join("schedules/morning.toml")).unwrap();
        assert!(schedule.contains("0 7 * * *"), "{schedule}");
        let aside = restored
            .kept_aside
            .iter()
            .find(|p| p.to_string_lossy().contains("morning.toml.before-restore-"))
            .unwrap();
        assert!(std::fs::read_to_string(aside).unwrap().contains("0 8 * * *"));
        let value = |path: &Path| -> String {
            Connection::open(path)
                .unwrap()
                .query_row("SELECT value FROM plugin_state", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(value(&restored.database), "the archived value");
        let old = restored
            .kept_aside
            .iter()
            .find(|p| p.to_string_lossy().contains("mission.db"))
            .unwrap();
        assert_eq!(value(old), "the value since");
    }

    #[tokio::test]
    async fn a_schema_change_is_backed_up_first() {
        let here = tempfile::tempdir().unwrap();
        let config = business(here.path());
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let older = db::SCHEMA_VERSION - 1;
        db::create_at_version(&config.data_dir.join(DATABASE_FILE), older).unwrap();
        let db = open_database(&config).unwrap();
        let version = db.call(|c| db::schema_version(c)).await.unwrap();
        assert_eq!(version, db::SCHEMA_VERSION);
        let archives = folder::archives(&dir(&config)).unwrap();
        assert_eq!(archives.len(), 1);
        let there = tempfile::tempdir().unwrap();
        let unpacked = restore::unpack(&archives[0].0, there.path()).unwrap();
        assert_eq!(unpacked.manifest().reason, "before-migration");
        assert_eq!(unpacked.manifest().schema_version, older);
        // Opening it again changes nothing, so takes no backup.
        drop(open_database(&config).unwrap());
        assert_eq!(folder::archives(&dir(&config)).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_archive_of_a_newer_schema_is_refused_by_version() {
        let here = tempfile::tempdir().unwrap();
        let config = business(here.path());
        drop(open_database(&config).unwrap());
        let database = config.data_dir.join(DATABASE_FILE);
        Connection::open(&database)
            .unwrap()
            .pragma_update(None, "user_version", db::SCHEMA_VERSION + 1)
            .unwrap();
        let taken = take(&config, &dir(&config), Reason::Asked).await.unwrap();
        let there = tempfile::tempdir().unwrap();
        let error = format!("{:#}", restore::unpack(&taken.path, there.path()).err().unwrap());
        assert!(
            error.contains(&format!(
                "schema is version {}, newer than this mission knows (version {})",
                db::SCHEMA_VERSION + 1,
                db::SCHEMA_VERSION
            )),
            "{error}"
        );
        assert!(!there.path().join("mission.toml").exists());
    }

    #[test]
    fn an_archive_whose_file_does_not_match_its_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tampered.tar.gz");
        let gzip =
            flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gzip);
        let mut manifest = archive::manifest(
            Utc::now(),
            1,
            "asked",
            "config/mission.toml".into(),
            "data".into(),
        );
        manifest.files.push(archive::FileEntry {
            path: "config/mission.toml".into(),
            size: 9,
            sha256: hex::encode(sha2::Sha256::digest(b"original\n")),
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        for (name, data) in [
            ("config/mission.toml", &b"changed!\n"[..]),
            (archive::MANIFEST, &manifest),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, name, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        let into = dir.path().join("into");
        let error = format!("{:#}", restore::unpack(&path, &into).err().unwrap());
        assert!(
            error.contains("`config/mission.toml` in it does not match its manifest"),
            "{error}"
        );
        assert!(!into.join("mission.toml").exists());
    }
}
