//! Bringing existing jobs over: [`launchd`] reads LaunchAgent plists and
//! maps each job that runs on a schedule to a `run-command` plugin and its
//! schedule files, with [`timing`] saying when it runs.

pub mod launchd;
pub mod timing;

/// `text` as a TOML string.
pub fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}
