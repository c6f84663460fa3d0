//! `[plugins.NAME.files]`: the directories a plugin may read and write.
//!
//! ```toml
//! [plugins.invoices.files]
//! read = ["~/Documents/exports"]     # each preopened read-only at /read/exports
//! write = ["~/Documents/invoices"]   # read-write, at /write/invoices
//! max_write = "50MiB"                # bytes written per call (the default)
//! max_create = 1000                  # files and directories created per call (the default)
//! ```
//!
//! A directory is seen by the plugin under `/read/NAME` or `/write/NAME`,
//! `NAME` its last component, whatever the host path: a plugin's code does
//! not change with the machine it runs on.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::units::ByteSize;

/// What a plugin may write in one call unless `max_write` says.
pub const DEFAULT_MAX_WRITE: u64 = 50 << 20;

/// How many files and directories a plugin may create in one call unless
/// `max_create` says: plenty for reports and exports, far from the
/// hundreds of thousands that would fill a directory or a disk's inodes.
pub const DEFAULT_MAX_CREATE: u64 = 1000;

/// The validated `files` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesGrant {
    /// Directories preopened read-only.
    pub read: Vec<GrantedDir>,
    /// Directories preopened read-write.
    pub write: Vec<GrantedDir>,
    /// Bytes one call may write, over all its files.
    pub max_write: u64,
    /// Files, directories and links one call may create, over all its
    /// directories.
    pub max_create: u64,
}

/// One granted directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedDir {
    /// Where it is on this machine (`~` expanded, relative to the config).
    pub host: PathBuf,
    /// Where the plugin sees it: `/read/NAME` or `/write/NAME`.
    pub guest: String,
}

/// `[plugins.NAME.files]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilesGrant {
    /// Example: `read = ["~/Documents/exports"]`
    #[serde(default)]
    read: Vec<String>,
    /// Example: `write = ["~/Documents/invoices"]`
    #[serde(default)]
    write: Vec<String>,
    /// Example: `max_write = "50MiB"` (the default)
    max_write: Option<ByteSize>,
    /// Example: `max_create = 1000` (the default)
    max_create: Option<u64>,
}

impl RawFilesGrant {
    /// The grant validated: paths from `base` with `~` as `home`, each
    /// directory named once, none both read and write.
    pub(super) fn validate(
        self,
        field: &str,
        base: &Path,
        home: Option<&Path>,
    ) -> Result<FilesGrant, String> {
        if self.read.is_empty() && self.write.is_empty() {
            return Err(format!("{field}: list the `read` or `write` directories"));
        }
        let resolve = |list: &str, path: &str| -> Result<PathBuf, String> {
            let path = match path
                .strip_prefix("~/")
                .or(if path == "~" { Some("") } else { None })
            {
                Some(rest) => home
                    .ok_or_else(|| format!("{field}.{list}: `{path}` starts with `~` but HOME is not set"))?
                    .join(rest),
                None => base.join(path),
            };
            Ok(normalize(&path))
        };
        let mut dirs: Vec<(&str, GrantedDir)> = Vec::new();
        for (list, paths) in [("read", &self.read), ("write", &self.write)] {
            for path in paths {
                let host = resolve(list, path)?;
                let name = host
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| format!("{field}.{list}: `{path}` names no directory"))?
                    .to_owned();
                if let Some((other, _)) = dirs.iter().find(|(_, d)| d.host == host) {
                    return Err(if *other == list {
                        format!("{field}.{list}: `{path}` is listed twice")
                    } else {
                        format!("{field}: `{path}` is both read and write; list it once, under `write` if the plugin writes there")
                    });
                }
                let guest = format!("/{list}/{name}");
                if dirs.iter().any(|(_, d)| d.guest == guest) {
                    return Err(format!(
                        "{field}.{list}: two directories named `{name}`; the plugin would see both at {guest}"
                    ));
                }
                dirs.push((list, GrantedDir { host, guest }));
            }
        }
        let (read, write): (Vec<_>, Vec<_>) = dirs.into_iter().partition(|(list, _)| *list == "read");
        Ok(FilesGrant {
            read: read.into_iter().map(|(_, d)| d).collect(),
            write: write.into_iter().map(|(_, d)| d).collect(),
            max_write: self.max_write.map_or(DEFAULT_MAX_WRITE, |b| b.0),
            max_create: self.max_create.unwrap_or(DEFAULT_MAX_CREATE),
        })
    }
}

/// `path` without `.` components and with `..` applied, lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> Result<FilesGrant, String> {
        let raw: RawFilesGrant = toml::from_str(text).unwrap();
        raw.validate(
            "plugins.x.files",
            Path::new("/etc/mission"),
            Some(Path::new("/home/anna")),
        )
    }

    #[test]
    fn directories_are_named_by_their_last_part_under_read_and_write() {
        let grant = grant(
            "read = [\"~/Documents/exports\"]\nwrite = [\"out/./reports\"]\nmax_write = \"1MiB\"\nmax_create = 20",
        )
        .unwrap();
        assert_eq!(
            grant.read,
            [GrantedDir {
                host: "/home/anna/Documents/exports".into(),
                guest: "/read/exports".into()
            }]
        );
        assert_eq!(grant.write[0].host, PathBuf::from("/etc/mission/out/reports"));
        assert_eq!(grant.write[0].guest, "/write/reports");
        assert_eq!(grant.max_write, 1 << 20);
        assert_eq!(grant.max_create, 20);
        let defaults = self::grant("read = [\"/srv/a\"]").unwrap();
        assert_eq!(
            (defaults.max_write, defaults.max_create),
            (DEFAULT_MAX_WRITE, DEFAULT_MAX_CREATE)
        );
    }

    #[test]
    fn a_directory_both_read_and_write_or_two_of_one_name_are_refused() {
        let both = grant("read = [\"/srv/a\"]\nwrite = [\"/srv/x/../a\"]").unwrap_err();
        assert!(both.contains("`/srv/x/../a` is both read and write"), "{both}");
        let twins = grant("read = [\"/srv/a/data\", \"/srv/b/data\"]").unwrap_err();
        assert!(twins.contains("two directories named `data`"), "{twins}");
        assert!(grant("")
            .unwrap_err()
            .contains("list the `read` or `write` directories"));
    }
}
