//! What an archive holds beside the database: the config file, the
//! schedule files, each plugin's `.wasm` and its source folder (without
//! build output), and the chat's attachments — each named by where it was:
//! `config/…` relative to the config file's directory, `data/…` relative to
//! the data directory, `outside/…` by its absolute path otherwise.

use std::collections::BTreeSet;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::config::Config;

/// Folders in a plugin's source that are build output or fetched, not
/// source.
const NOT_SOURCE: &[&str] = &["target", "node_modules", "__pycache__"];

/// One file to archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Its path in the archive.
    pub name: String,
    /// Where it is now.
    pub source: PathBuf,
}

/// Where the files of `config` are named from.
pub struct Roots {
    /// The config file's directory (absolute).
    pub config_dir: PathBuf,
    /// The data directory (absolute).
    pub data_dir: PathBuf,
}

impl Roots {
    /// The roots of `config`.
    pub fn of(config: &Config) -> io::Result<Roots> {
        let file = absolute(&config.file)?;
        Ok(Roots {
            config_dir: file.parent().unwrap_or(Path::new("/")).to_owned(),
            data_dir: absolute(&config.data_dir)?,
        })
    }

    /// The archive's name for the file at `path`.
    pub fn name(&self, path: &Path) -> String {
        let named = |root: &str, relative: &Path| format!("{root}/{}", relative.to_string_lossy());
        if let Ok(relative) = path.strip_prefix(&self.config_dir) {
            named("config", relative)
        } else {
            named("outside", path.strip_prefix("/").unwrap_or(path))
        }
    }

    /// The data directory as the manifest keeps it: relative to the config
    /// file's directory if inside it.
    pub fn data_dir_in_manifest(&self) -> PathBuf {
        self.data_dir
            .strip_prefix(&self.config_dir)
            .map_or_else(|_| self.data_dir.clone(), Path::to_owned)
    }
}

/// Every file of `config` an archive holds beside the database; nothing
/// under the data directory but the attachments, nor under `backups` (the
/// folder archives go to), whatever folder holds them.
pub fn of(config: &Config, roots: &Roots, backups: &Path) -> io::Result<Vec<Entry>> {
    let walk = Walk {
        skip_names: &[],
        skip_dirs: &[roots.data_dir.clone(), absolute(backups)?],
    };
    let source = Walk {
        skip_names: NOT_SOURCE,
        ..walk
    };
    let mut files = BTreeSet::new();
    files.insert(absolute(&config.file)?);
    walk.regular_files_under(&config.schedules_dir, &mut files)?;
    for plugin in &config.plugins {
        let wasm = absolute(&plugin.wasm)?;
        if wasm.is_file() {
            files.insert(wasm);
        }
        source.regular_files_under(&plugin.source, &mut files)?;
    }
    let mut entries: Vec<Entry> = files
        .into_iter()
        .map(|source| Entry {
            name: roots.name(&source),
            source,
        })
        .collect();
    let attachments = roots.data_dir.join("attachments");
    let mut attached = BTreeSet::new();
    let everything = Walk {
        skip_names: &[],
        skip_dirs: &[],
    };
    everything.regular_files_under(&attachments, &mut attached)?;
    entries.extend(attached.into_iter().map(|source| Entry {
        name: format!(
            "data/attachments/{}",
            source.strip_prefix(&attachments).unwrap_or(&source).to_string_lossy()
        ),
        source,
    }));
    Ok(entries)
}

/// `path` made absolute, without `.` and `..` (taken by name: `a/../b` is
/// `b`), as an archive names it.
pub fn absolute(path: &Path) -> io::Result<PathBuf> {
    let mut normal = PathBuf::new();
    for component in std::path::absolute(path)?.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// What a walk of a folder leaves out, beside hidden entries and
/// symbolic links.
#[derive(Clone, Copy)]
struct Walk<'a> {
    /// Folders of these names.
    skip_names: &'a [&'a str],
    /// These folders (absolute).
    skip_dirs: &'a [PathBuf],
}

impl Walk<'_> {
    /// Adds the regular files under `dir` (none if it is missing) to `files`.
    fn regular_files_under(&self, dir: &Path, files: &mut BTreeSet<PathBuf>) -> io::Result<()> {
        let dir = absolute(dir)?;
        if self.skip_dirs.contains(&dir) {
            return Ok(());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(())
            }
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name != ".deleted" {
                continue;
            }
            let kind = entry.file_type()?;
            let path = dir.join(&*name);
            if kind.is_dir() && !self.skip_names.contains(&&*name) {
                self.regular_files_under(&path, files)?;
            } else if kind.is_file() {
                files.insert(path);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_named_without_dots() {
        assert_eq!(
            absolute(Path::new("/srv/mission/../plugins/./x.wasm")).unwrap(),
            Path::new("/srv/plugins/x.wasm")
        );
        let roots = Roots {
            config_dir: PathBuf::from("/srv/mission"),
            data_dir: PathBuf::from("/srv/mission/data"),
        };
        assert_eq!(
            roots.name(Path::new("/srv/plugins/x.wasm")),
            "outside/srv/plugins/x.wasm"
        );
        assert_eq!(
            roots.name(Path::new("/srv/mission/schedules/a.toml")),
            "config/schedules/a.toml"
        );
    }
}
