//! `[backup]`: the archives `mission up` takes on its own, how many it
//! keeps, and the program that copies each off the machine.
//!
//! ```toml
//! [backup]
//! every = "1d"                      # how often (from the newest archive)
//! keep = 14                         # the newest archives kept; older removed
//! dir = "backups"                   # from the config's folder; default: DATA_DIR/backups
//! then = ["rclone", "copy"]         # run with the archive's path last
//! then_env = ["HOME", "RCLONE_CONFIG"]  # the only variables it gets
//! then_timeout = "30m"              # cut after this (default 30m)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::process::ProcessGrant;
use super::units::HumanDuration;

/// The folder archives go to without `[backup] dir`, under the data
/// directory.
pub const DEFAULT_DIR: &str = "backups";

/// The validated `[backup]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// How often `mission up` takes one, counted from the newest archive.
    pub every: Duration,
    /// How many archives are kept (the newest).
    pub keep: usize,
    /// Where they go.
    pub dir: PathBuf,
    /// What is run with each new archive's path, if anything.
    pub then: Option<ThenProgram>,
}

/// The program run with each new archive's path last (`then = [...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThenProgram {
    /// The program: a bare name is looked up on `PATH`, a path is taken
    /// from the config file's directory.
    pub program: PathBuf,
    /// Its arguments before the archive's path.
    pub args: Vec<String>,
    /// How it runs: the environment it gets, where, for how long (the
    /// process capability's machinery).
    pub limits: ProcessGrant,
}

/// `[backup]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackup {
    /// Example: `every = "1d"`
    every: HumanDuration,
    /// Example: `keep = 14`
    #[serde(default = "default_keep")]
    keep: usize,
    /// Example: `dir = "backups"`
    dir: Option<PathBuf>,
    /// Example: `then = ["rclone", "copy"]`
    then: Option<Vec<String>>,
    /// Example: `then_env = ["HOME", "RCLONE_CONFIG"]`
    then_env: Option<Vec<String>>,
    /// Example: `then_timeout = "30m"`
    then_timeout: Option<HumanDuration>,
}

fn default_keep() -> usize {
    14
}

impl RawBackup {
    pub(crate) fn validate(self, base: &Path, data_dir: &Path) -> Result<BackupConfig, String> {
        if self.every.0 < Duration::from_secs(60) {
            return Err(format!(
                "backup.every: `{}` is too often: a backup at most once a minute",
                self.every
            ));
        }
        if self.keep == 0 {
            return Err("backup.keep: keep at least one archive".into());
        }
        if self.then.is_none() && (self.then_env.is_some() || self.then_timeout.is_some()) {
            return Err("backup: `then_env` and `then_timeout` go with `then`".into());
        }
        let then = match self.then {
            Some(command) => Some(then_program(
                command,
                self.then_env,
                self.then_timeout,
                base,
                data_dir,
            )?),
            None => None,
        };
        Ok(BackupConfig {
            every: self.every.0,
            keep: self.keep,
            dir: self
                .dir
                .map_or_else(|| data_dir.join(DEFAULT_DIR), |dir| base.join(dir)),
            then,
        })
    }
}

fn then_program(
    command: Vec<String>,
    env: Option<Vec<String>>,
    timeout: Option<HumanDuration>,
    base: &Path,
    data_dir: &Path,
) -> Result<ThenProgram, String> {
    let mut command = command.into_iter();
    let program = command
        .next()
        .filter(|p| !p.trim().is_empty())
        .ok_or("backup.then: name the program, then its arguments")?;
    // A bare name is found on PATH when it runs; a path is the config's.
    let program = if program.contains('/') {
        base.join(program)
    } else {
        PathBuf::from(program)
    };
    let env = env.unwrap_or_default();
    if let Some(bad) = env.iter().find(|n| n.is_empty() || n.contains('=')) {
        return Err(format!("backup.then_env: `{bad}` is not a variable's name"));
    }
    let timeout = timeout.map_or(Duration::from_secs(30 * 60), |t| t.0);
    if timeout.is_zero() {
        return Err("backup.then_timeout: must be more than zero".into());
    }
    Ok(ThenProgram {
        args: command.collect(),
        limits: ProcessGrant {
            programs: vec![program.clone()],
            env,
            set_env: BTreeMap::new(),
            workdir: data_dir.join("backup-then"),
            timeout,
            max_output: 64 << 10,
        },
        program,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(text: &str) -> Result<BackupConfig, String> {
        toml::from_str::<RawBackup>(text)
            .map_err(|e| e.to_string())?
            .validate(Path::new("/etc/mission"), Path::new("/var/mission"))
    }

    #[test]
    fn defaults_keep_fourteen_in_the_data_directory() {
        let config = backup("every = \"1d\"").unwrap();
        assert_eq!(config.every, Duration::from_secs(86_400));
        assert_eq!(config.keep, 14);
        assert_eq!(config.dir, Path::new("/var/mission/backups"));
        assert!(config.then.is_none());
    }

    #[test]
    fn then_is_a_program_found_on_path_or_from_the_config() {
        let config =
            backup("every = \"1h\"\ndir = \"b\"\nthen = [\"rclone\", \"copy\", \"remote:\"]").unwrap();
        let then = config.then.unwrap();
        assert_eq!(then.program, Path::new("rclone"));
        assert_eq!(then.args, ["copy", "remote:"]);
        assert_eq!(then.limits.timeout, Duration::from_secs(1800));
        assert_eq!(config.dir, Path::new("/etc/mission/b"));
        let then = backup("every = \"1h\"\nthen = [\"bin/copy-off\"]")
            .unwrap()
            .then
            .unwrap();
        assert_eq!(then.program, Path::new("/etc/mission/bin/copy-off"));
    }

    #[test]
    fn bad_values_are_named() {
        for (text, expected) in [
            ("every = \"10s\"", "backup.every: `10s` is too often"),
            (
                "every = \"1d\"\nkeep = 0",
                "backup.keep: keep at least one archive",
            ),
            ("every = \"1d\"\nthen = []", "backup.then: name the program"),
            (
                "every = \"1d\"\nthen_env = [\"HOME\"]",
                "`then_env` and `then_timeout` go with `then`",
            ),
            (
                "every = \"1d\"\nthen = [\"x\"]\nthen_env = [\"A=B\"]",
                "backup.then_env: `A=B`",
            ),
            (
                "every = \"1d\"\nthen = [\"x\"]\nthen_timeout = \"0s\"",
                "backup.then_timeout",
            ),
        ] {
            let error = backup(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
