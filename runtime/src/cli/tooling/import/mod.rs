//! Bringing existing jobs over: [`launchd`] reads LaunchAgent plists and
//! maps each job that runs on a schedule to a `run-command` plugin and its
//! schedule files.

pub mod launchd;
