//! Turns plugin configs into loaded [`Plugin`]s: owns the engine, the linker
//! and the compile cache, and compiles on tokio's blocking pool.

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime::Engine;

use crate::config::{Config, PluginConfig};
use crate::plugin::cache::{CompileCache, CACHE_DIR};
use crate::plugin::linker;
use crate::plugin::store::HostState;
use crate::plugin::{LoadError, Plugin};
use crate::wasm::engine::new_engine;

/// Everything needed to load plugins; cheap to clone.
#[derive(Clone)]
pub struct PluginLoader {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: CompileCache,
}

impl PluginLoader {
    /// A loader with a new engine and the compile cache under `config`'s data
    /// directory.
    pub fn open(config: &Config) -> anyhow::Result<PluginLoader> {
        let engine = new_engine()?;
        let linker = linker::linker(&engine)?;
        let cache = CompileCache::open(&config.data_dir.join(CACHE_DIR), &engine)?;
        Ok(PluginLoader {
            engine,
            linker: Arc::new(linker),
            cache,
        })
    }

    /// Loads one plugin without blocking the async runtime.
    pub async fn load(&self, config: PluginConfig) -> Result<Plugin, LoadError> {
        let loader = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            Plugin::load(&loader.engine, &loader.linker, &loader.cache, config)
        });
        match task.await {
            Ok(loaded) => loaded,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Where compiled plugins are kept.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }
}
