//! `[plugins.NAME.process]`: which programs a plugin may run, with what.
//!
//! ```toml
//! [plugins.backup.process]
//! programs = ["/usr/local/bin/backup.sh"]   # absolute paths, exactly
//! env = ["HOME", "PATH"]                    # passed from the host; none unless listed
//! set_env = { LANG = "en_US.UTF-8" }        # set to these values (over `env`)
//! workdir = "/srv/backup"                   # default: the data directory
//! timeout = "10m"                           # ceiling per run (default 5m)
//! max_output = "1MiB"                       # stdout and stderr each (default 256KiB)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::units::{ByteSize, HumanDuration};

/// What a plugin may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGrant {
    /// The programs, by absolute path.
    pub programs: Vec<PathBuf>,
    /// The host's environment variables passed on.
    pub env: Vec<String>,
    /// Variables set to these values, over those passed on.
    pub set_env: BTreeMap<String, String>,
    /// Where the programs run.
    pub workdir: PathBuf,
    /// The longest a run may take.
    pub timeout: Duration,
    /// How much of stdout and of stderr is kept.
    pub max_output: u64,
}

/// `[plugins.NAME.process]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProcessGrant {
    /// Example: `programs = ["/usr/local/bin/backup.sh"]`
    programs: Vec<PathBuf>,
    /// Example: `env = ["HOME"]` (default none)
    #[serde(default)]
    env: Vec<String>,
    /// Example: `set_env = { LANG = "en_US.UTF-8" }` (default none)
    #[serde(default)]
    set_env: BTreeMap<String, String>,
    /// Example: `workdir = "/srv/backup"` (default the data directory)
    workdir: Option<PathBuf>,
    /// Example: `timeout = "10m"` (default 5m)
    timeout: Option<HumanDuration>,
    /// Example: `max_output = "1MiB"` (default 256KiB)
    max_output: Option<ByteSize>,
}

impl RawProcessGrant {
    /// The grant validated; `base` resolves a relative workdir; errors name
    /// `field`.
    pub(crate) fn validate(self, field: &str, base: &Path, data_dir: &Path) -> Result<ProcessGrant, String> {
        if self.programs.is_empty() {
            return Err(format!(
                "{field}.programs: list at least one program, by absolute path"
            ));
        }
        if let Some(relative) = self.programs.iter().find(|p| !p.is_absolute()) {
            return Err(format!(
                "{field}.programs: `{}` is not an absolute path",
                relative.display()
            ));
        }
        if let Some(bad) = self.set_env.keys().find(|n| n.is_empty() || n.contains('=')) {
            return Err(format!(
                "{field}.set_env: `{bad}` is not an environment variable name"
            ));
        }
        Ok(ProcessGrant {
            programs: self.programs,
            env: self.env,
            set_env: self.set_env,
            workdir: self.workdir.map_or_else(|| data_dir.to_owned(), |w| base.join(w)),
            timeout: self.timeout.map_or(Duration::from_secs(300), |t| t.0),
            max_output: self.max_output.map_or(256 << 10, |m| m.0),
        })
    }
}
