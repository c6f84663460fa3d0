//! The plugins the host serves, by name. A new version of a plugin replaces
//! the old in one step; calls already running keep the `Arc` they hold and
//! finish on the old version.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::PluginName;
use crate::plugin::Plugin;

/// `name → loaded plugin`, shared by every part of the host.
#[derive(Default)]
pub struct PluginRegistry {
    plugins: RwLock<BTreeMap<PluginName, Arc<Plugin>>>,
}

impl PluginRegistry {
    /// The current version of the plugin named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        plugins
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, p)| p.clone())
    }

    /// Makes `plugin` the current version under its name; returns the version
    /// it replaced.
    pub fn insert(&self, plugin: Plugin) -> Option<Arc<Plugin>> {
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        plugins.insert(plugin.name().clone(), Arc::new(plugin))
    }

    /// Stops serving the plugin named `name` (removed from the config).
    pub fn remove(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        let key = plugins.keys().find(|n| n.as_str() == name)?.clone();
        plugins.remove(&key)
    }

    /// Every plugin, by name.
    pub fn list(&self) -> Vec<Arc<Plugin>> {
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        plugins.values().cloned().collect()
    }
}
