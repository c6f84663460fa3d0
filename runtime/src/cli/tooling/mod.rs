//! What the commands do beside the host, which the host itself never uses:
//! [`build`] (a plugin's source to a component, in any of the three
//! languages), [`scaffold`] (new plugins from templates), [`import`]
//! (LaunchAgents read as jobs for `run-command`), [`service`] (`mission
//! up` as a LaunchAgent or a systemd user unit) and the [`starter_kit`] of
//! `mission init`.

pub mod build;
pub mod import;
pub mod scaffold;
pub mod service;
pub mod starter_kit;
