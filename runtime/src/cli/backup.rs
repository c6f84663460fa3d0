//! `mission backup` and `mission restore`: an archive of everything the
//! business runs on, taken while the host serves, and put back into a
//! folder once checked whole.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::backup::{self, folder, restore, Reason};
use crate::config::Config;
use crate::display::bytes;
use crate::os::data_lock;
use crate::serve::control;

/// `mission backup`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The folder to write the archive to; `[backup] dir` (or the data
    /// directory's backups/) if left out, where `[backup] keep` then holds
    /// and `[backup] then` runs.
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mission restore`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive (`mission-….tar.gz`).
    pub archive: PathBuf,
    /// The folder to restore into: the config file goes there, the
    /// database into the data directory it names. The config file's own
    /// folder if left out.
    #[arg(long)]
    pub into: Option<PathBuf>,
}

impl BackupArgs {
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        // `[backup]` holds only in its own folder.
        let settings = config.backup.as_ref().filter(|_| self.to.is_none());
        let dir = self.to.unwrap_or_else(|| backup::dir(&config));
        // Created (or brought up to date) first, as any command would.
        drop(super::open_db(&config)?);
        let taken = backup::take(&config, &dir, Reason::Asked).await?;
        let removed = match settings {
            Some(settings) => folder::keep_newest(&dir, settings.keep)
                .with_context(|| format!("cannot remove old archives from {}", dir.display()))?,
            None => Vec::new(),
        };
        let then = match settings.and_then(|s| s.then.as_ref()) {
            Some(then) => Some(crate::serve::backups::copy_off(then, &taken.path).await),
            None => None,
        };
        if self.json {
            say!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "archive": taken.path,
                    "size": taken.size,
                    "files": taken.files,
                    "schema_version": taken.schema_version,
                    "took_ms": taken.took.as_millis() as u64,
                    "removed": removed,
                    "then": then.as_ref().map(|t| t.as_ref().err().cloned()),
                }))?
            );
        } else {
            say!(
                "Backed up to {} ({}, {} files and the database at schema version {}) in {:.1} s.",
                taken.path.display(),
                bytes(taken.size),
                taken.files,
                taken.schema_version,
                taken.took.as_secs_f64()
            );
            for old in &removed {
                say!(
                    "Removed {} (keeping the newest {}).",
                    old.display(),
                    settings.map_or(0, |s| s.keep)
                );
            }
        }
        match then {
            Some(Err(e)) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
            _ => Ok(ExitCode::SUCCESS),
        }
    }
}

impl RestoreArgs {
    /// Restores without reading the config: on a new machine there may be
    /// none yet, or a broken one.
    pub(super) async fn run(self, config_file: &Path) -> anyhow::Result<ExitCode> {
        let into = match self.into {
            Some(into) => into,
            None => std::path::absolute(config_file)?
                .parent()
                .unwrap_or(Path::new("/"))
                .to_owned(),
        };
        let archive = self.archive;
        let restored = tokio::task::spawn_blocking(move || {
            let unpacked = restore::unpack(&archive, &into)
                .with_context(|| format!("{} cannot be restored", archive.display()))?;
            let data_dir = unpacked.data_dir();
            let database = data_dir.join(crate::db::DATABASE_FILE);
            // Held until the files are in place: a host starting meanwhile waits.
            let Some(_lock) = data_lock::exclusive_now(&data_dir)
                .with_context(|| format!("cannot lock the data directory {}", data_dir.display()))?
            else {
                let pid = control::running_on(&database)
                    .ok()
                    .flatten()
                    .map_or(String::new(), |h| format!(" (pid {})", h.pid));
                bail!(
                    "a host{pid} is running on {}: stop it first (`mission service stop`, or Ctrl-C)",
                    data_dir.display()
                );
            };
            let manifest = unpacked.manifest().clone();
            let restored = unpacked.install()?;
            Ok((manifest, restored))
        })
        .await
        .context("the restore's task panicked")?;
        let (manifest, restored) = restored?;
        say!(
            "Restored the backup taken {} (mission {}, schema version {}): {} files.",
            crate::display::local(manifest.taken_at),
            manifest.mission_version,
            manifest.schema_version,
            restored.files
        );
        say!("Config: {}", restored.config.display());
        say!("Database: {}", restored.database.display());
        for aside in &restored.kept_aside {
            say!("Kept what was there as {}", aside.display());
        }
        for (was, put) in &restored.outside {
            say!(
                "{} was outside the config file's folder: its copy is at {}",
                was.display(),
                put.display()
            );
        }
        say!("Start it with: mission up --config {}", restored.config.display());
        Ok(ExitCode::SUCCESS)
    }
}
