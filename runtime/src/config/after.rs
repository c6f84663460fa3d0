//! `after`: the schedules whose runs' ends start a schedule (in its file)
//! or a task plugin (in `[plugins.NAME]`), and on which outcomes.

use std::fmt;

use serde::Deserialize;

use super::PluginName;

/// One `after` link: the schedule whose run's end starts this, and on which
/// outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    /// The parent schedule. Example: `schedule = "sync-shop"`
    pub schedule: String,
    /// Example: `on = "success"` (the default; or `failure`, `any`)
    #[serde(default)]
    pub on: FollowOn,
}

/// `after` as written: one link or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAfter {
    /// `after = { schedule = "sync-shop" }`
    One(After),
    /// `after = [{ schedule = "sync-shop" }, { schedule = "sync-crm" }]`
    Many(Vec<After>),
}

impl RawAfter {
    /// The links, each parent's name checked; `field` names them in an
    /// error.
    pub fn links(raw: Option<RawAfter>, field: &str) -> Result<Vec<After>, String> {
        let links = match raw {
            None => Vec::new(),
            Some(RawAfter::One(link)) => vec![link],
            Some(RawAfter::Many(links)) => links,
        };
        for link in &links {
            check_schedule_name(&link.schedule).map_err(|e| format!("{field}: {e}"))?;
        }
        Ok(links)
    }
}

/// Which outcomes of a run start what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FollowOn {
    /// It succeeded.
    #[default]
    Success,
    /// It did not (failed, timed out, trapped, was refused or not loaded).
    Failure,
    /// Either.
    Any,
}

impl FollowOn {
    /// Whether a run that `succeeded` (or not) starts the follow-up.
    pub fn matches(self, succeeded: bool) -> bool {
        match self {
            FollowOn::Success => succeeded,
            FollowOn::Failure => !succeeded,
            FollowOn::Any => true,
        }
    }
}

impl fmt::Display for FollowOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FollowOn::Success => "succeeds",
            FollowOn::Failure => "fails",
            FollowOn::Any => "ends",
        })
    }
}

/// `Ok` if `name` may name a schedule (as a plugin may be named: lowercase
/// letters, digits, `-`, `_`), else why not. A name from the command line is
/// checked before it becomes a path.
pub fn check_schedule_name(name: &str) -> Result<(), String> {
    PluginName::parse(name).map(drop).map_err(|_| {
        format!("`{name}` is not a valid schedule name: use 1 to 64 lowercase letters, digits, `-` or `_`")
    })
}
