//! The `mission:plugin` imports, one file per WIT interface. Each checks the
//! plugin's grant first and answers a denied or failed call with a
//! [`CapabilityError`] the plugin can handle; only a broken host traps.

use std::collections::BTreeSet;

use crate::bindings::{chat, task, CapabilityError};
use crate::config::{Grant, HistoryPolicy, PluginName};
use crate::db::Database;

mod claude;
pub mod history;
mod log;
mod notify;
mod state;

/// What one call of one plugin may reach: its name scopes every row it
/// reads or writes, and its grants decide which calls are allowed.
pub struct Capabilities {
    plugin: PluginName,
    grants: BTreeSet<Grant>,
    history: HistoryPolicy,
    db: Database,
}

impl Capabilities {
    /// Capabilities for a call of `plugin` with `grants`, reading history
    /// under `history`.
    pub fn new(plugin: PluginName, grants: BTreeSet<Grant>, history: HistoryPolicy, db: Database) -> Self {
        Self {
            plugin,
            grants,
            history,
            db,
        }
    }

    /// `Ok` if the plugin holds `grant`, else the `denied` error it gets.
    fn check(&self, grant: Grant) -> Result<(), CapabilityError> {
        if self.grants.contains(&grant) {
            Ok(())
        } else {
            tracing::warn!(plugin = %self.plugin, %grant, "capability call denied: not granted");
            Err(CapabilityError::Denied(format!(
                "plugin `{}` has no `{grant}` grant in its config",
                self.plugin
            )))
        }
    }

    /// The `failed` error for a host-side failure, logged in full here since
    /// the plugin only gets a short reason.
    fn failed(&self, what: &str, error: anyhow::Error) -> CapabilityError {
        tracing::error!(plugin = %self.plugin, "{what} failed: {error:#}");
        CapabilityError::Failed(format!("{what} failed"))
    }
}

#[cfg(test)]
/// Capabilities of `plugin` with `grants`, for tests of one capability.
fn for_test(db: &Database, plugin: &str, grants: &[Grant]) -> Capabilities {
    Capabilities::new(
        PluginName::parse(plugin).unwrap(),
        grants.iter().copied().collect(),
        HistoryPolicy::default(),
        db.clone(),
    )
}

impl task::mission::plugin::types::Host for Capabilities {}
impl task::mission::plugin::task_types::Host for Capabilities {}
impl chat::mission::plugin::chat_types::Host for Capabilities {}
