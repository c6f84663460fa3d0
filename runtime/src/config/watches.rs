//! `[watches.NAME]`: directories whose changes start a task plugin.
//!
//! ```toml
//! [watches.new-exports]
//! paths = ["~/Documents/exports"]   # directories, watched with what is inside them
//! pattern = "*.csv"                 # optional: file names to care about (`*`, `?`)
//! plugin = "crm-import"             # a task plugin
//! debounce = "2s"                   # one run for a burst of changes (the default)
//! catch_up = "once"                 # changes while the host was down: once | none
//! overlap = "queue"                 # changes during a run: queue (run after) | skip
//! until_empty = false               # launchd's QueueDirectories: run while not empty
//! max_runs = 10                     # with until_empty: the most runs in a row
//! timeout = "5m"                    # the run's deadline (default: the plugin's)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::units::HumanDuration;
use super::{PluginConfig, PluginName, World};

/// One watch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Its name.
    pub name: String,
    /// The directories watched (absolute).
    pub paths: Vec<PathBuf>,
    /// The file names it cares about; all without one.
    pub pattern: Option<String>,
    /// The task plugin it runs.
    pub plugin: PluginName,
    /// How long the directories must be quiet before a run.
    pub debounce: Duration,
    /// Whether changes made while the host was down start a run at start.
    pub catch_up: bool,
    /// Whether changes during a run start another run after it.
    pub queue: bool,
    /// Run while a directory holds a matching file, again after each run.
    pub until_empty: bool,
    /// With `until_empty`, the most runs in a row.
    pub max_runs: u32,
    /// The run's deadline; the plugin's `timeout` without one.
    pub timeout: Option<Duration>,
}

impl WatchConfig {
    /// Whether `name` (a file name) is one this watch cares about.
    pub fn matches(&self, name: &str) -> bool {
        self.pattern
            .as_deref()
            .is_none_or(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

/// `*` any run of characters, `?` one, anything else itself.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], name) || (!name.is_empty() && glob(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// `[watches.NAME]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    /// Example: `paths = ["~/Documents/exports"]`
    paths: Vec<String>,
    /// Example: `pattern = "*.csv"`
    pattern: Option<String>,
    /// Example: `plugin = "crm-import"`
    plugin: String,
    /// Example: `debounce = "2s"` (the default)
    debounce: Option<HumanDuration>,
    /// Example: `catch_up = "none"` (default `"once"`)
    catch_up: Option<String>,
    /// Example: `overlap = "skip"` (default `"queue"`)
    overlap: Option<String>,
    /// Example: `until_empty = true`
    #[serde(default)]
    until_empty: bool,
    /// Example: `max_runs = 10` (the default)
    max_runs: Option<u32>,
    /// Example: `timeout = "5m"`
    timeout: Option<HumanDuration>,
}

/// Every `[watches.NAME]`, validated: each plugin a task plugin among
/// `plugins`, paths from `base` with `~` as `home`.
pub(super) fn validate(
    raw: BTreeMap<String, RawWatch>,
    plugins: &[PluginConfig],
    base: &Path,
    home: Option<&Path>,
) -> Result<Vec<WatchConfig>, String> {
    raw.into_iter()
        .map(|(name, watch)| watch.validate(&name, plugins, base, home))
        .collect()
}

impl RawWatch {
    fn validate(
        self,
        name: &str,
        plugins: &[PluginConfig],
        base: &Path,
        home: Option<&Path>,
    ) -> Result<WatchConfig, String> {
        let field = format!("watches.{name}");
        let plugin = plugins
            .iter()
            .find(|p| p.name.as_str() == self.plugin)
            .ok_or_else(|| format!("{field}.plugin: no plugin named `{}`", self.plugin))?;
        if plugin.world != World::Task {
            return Err(format!(
                "{field}.plugin: `{}` is a {} plugin; a watch runs a task plugin",
                plugin.name, plugin.world
            ));
        }
        if self.paths.is_empty() {
            return Err(format!("{field}.paths: list the directories to watch"));
        }
        let paths = self
            .paths
            .iter()
            .map(|path| match path.strip_prefix("~/") {
                Some(rest) => home
                    .map(|home| home.join(rest))
                    .ok_or_else(|| format!("{field}.paths: `{path}` starts with `~` but HOME is not set")),
                None => Ok(base.join(path)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let catch_up = match self.catch_up.as_deref() {
            None | Some("once") => true,
            Some("none") => false,
            Some(other) => return Err(format!("{field}.catch_up: `{other}` is not `once` or `none`")),
        };
        let queue = match self.overlap.as_deref() {
            None | Some("queue") => true,
            Some("skip") => false,
            Some("allow") => {
                return Err(format!(
                    "{field}.overlap: `allow` is not offered for a watch (its runs see the directory one after another): use `queue` or `skip`"
                ))
            }
            Some(other) => return Err(format!("{field}.overlap: `{other}` is not `queue` or `skip`")),
        };
        let max_runs = self.max_runs.unwrap_or(10);
        if max_runs == 0 {
            return Err(format!("{field}.max_runs: must be at least 1"));
        }
        Ok(WatchConfig {
            name: name.to_owned(),
            paths,
            pattern: self.pattern,
            plugin: plugin.name.clone(),
            debounce: self.debounce.map_or(Duration::from_secs(2), |d| d.0),
            catch_up,
            queue,
            until_empty: self.until_empty,
            max_runs,
            timeout: self.timeout.map(|t| t.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_matches_file_names_by_star_and_question_mark() {
        for (pattern, name, expected) in [
            ("*.csv", "leads.csv", true),
            ("*.csv", "leads.csv.tmp", false),
            ("report-??.pdf", "report-07.pdf", true),
            ("report-??.pdf", "report-7.pdf", false),
            ("*", "", true),
            ("a*b*c", "aXXbYYc", true),
        ] {
            assert_eq!(
                glob(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} {name}"
            );
        }
    }
}
