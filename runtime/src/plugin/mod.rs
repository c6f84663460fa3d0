//! A loaded plugin: its component compiled, checked against its world and
//! pre-instantiated, with the config it was loaded under. Calls on it live in
//! [`crate::plugin::call`].

pub mod cache;
pub mod call;
pub mod hash;
pub mod linker;
pub mod loader;
pub mod loads;
pub mod registry;
pub mod store;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Linker;
use wasmtime::Engine;

use crate::config::{PluginConfig, PluginName, World};
use crate::os::regular_file;
use crate::plugin::store::HostState;
use crate::wasm::bindings::{self, chat, task};
use cache::{CacheOutcome, CompileCache};
use hash::ContentHash;

/// The pre-instantiated component, typed by its world.
pub(crate) enum PluginPre {
    Task(task::TaskPre<HostState>),
    Chat(chat::ChatPre<HostState>),
    Tools(bindings::tools::ToolsPre<HostState>),
}

/// A plugin ready to be called: every call instantiates it afresh.
pub struct Plugin {
    /// The config it was loaded with, shared with each call's capabilities.
    pub config: Arc<PluginConfig>,
    /// The hash of the component file it was loaded from.
    pub hash: ContentHash,
    /// When it was loaded.
    pub loaded_at: DateTime<Utc>,
    /// How long compiling (or loading from the cache) took.
    pub compile_time: Duration,
    /// Whether it came from the compile cache.
    pub cache: CacheOutcome,
    /// The tools it offers (a tools plugin), read once it is loaded.
    pub tools: Vec<tools::ToolSpec>,
    pub(crate) engine: Engine,
    pub(crate) pre: PluginPre,
}

/// Why a plugin could not be loaded. Each names the plugin and its file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("plugin `{plugin}`: cannot read {}: {source}", file.display())]
    Read {
        plugin: PluginName,
        file: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a component wasmtime can compile.
    #[error("plugin `{plugin}`: {} is not a valid WebAssembly component: {reason}", file.display())]
    Compile {
        plugin: PluginName,
        file: PathBuf,
        reason: String,
    },
    /// The component does not implement the world its config names.
    #[error("plugin `{plugin}`: {} is not a {world} plugin: {reason}", file.display())]
    WrongWorld {
        plugin: PluginName,
        file: PathBuf,
        world: World,
        reason: String,
    },
    /// The component was built against a version of `mission:plugin` this
    /// host does not link to.
    #[error(
        "plugin `{plugin}`: {} was built against mission:plugin@{built}, and this host provides \
         mission:plugin@{host}: rebuild it against this host's wit/ (`mission build {plugin}`)",
        file.display()
    )]
    Version {
        plugin: PluginName,
        file: PathBuf,
        built: String,
        host: &'static str,
    },
    /// A tools plugin whose tool list could not be read or is not valid.
    #[error("plugin `{plugin}`: {} offers no usable tools: {reason}", file.display())]
    Tools {
        plugin: PluginName,
        file: PathBuf,
        reason: String,
    },
    /// The component imports something this host does not provide.
    #[error("plugin `{plugin}`: {} needs imports this host does not provide: {reason}", file.display())]
    Link {
        plugin: PluginName,
        file: PathBuf,
        reason: String,
    },
}

impl Plugin {
    /// Reads, compiles (or loads from `cache`), checks and pre-instantiates
    /// the plugin `config` describes. Blocking: compiling takes milliseconds
    /// to seconds, so call it off the async runtime.
    pub fn load(
        engine: &Engine,
        linker: &Linker<HostState>,
        cache: &CompileCache,
        config: PluginConfig,
    ) -> Result<Plugin, LoadError> {
        let plugin = config.name.clone();
        let file = config.wasm.clone();
        let wasm =
            regular_file::read(&file, regular_file::MAX_COMPONENT).map_err(|source| LoadError::Read {
                plugin: plugin.clone(),
                file: file.clone(),
                source,
            })?;
        let hash = ContentHash::of(&wasm);
        let started = Instant::now();
        let (component, cache_outcome) =
            cache.load(engine, &wasm, &hash).map_err(|e| LoadError::Compile {
                plugin: plugin.clone(),
                file: file.clone(),
                reason: format!("{e:#}"),
            })?;
        let compile_time = started.elapsed();

        let wrong_world = |reason: String| LoadError::WrongWorld {
            plugin: plugin.clone(),
            file: file.clone(),
            world: config.world,
            reason,
        };
        let export = config.world.export();
        let exports: Vec<(String, bool)> = component
            .component_type()
            .exports(engine)
            .map(|(name, item)| {
                (
                    name.to_owned(),
                    matches!(item.ty, ComponentItem::ComponentFunc(_)),
                )
            })
            .collect();
        if !exports.iter().any(|(name, is_func)| name == export && *is_func) {
            let found: Vec<_> = exports.iter().map(|(name, _)| format!("`{name}`")).collect();
            let found = if found.is_empty() {
                "none".to_owned()
            } else {
                found.join(", ")
            };
            return Err(wrong_world(format!(
                "it does not export the function `{export}` (its exports: {found})"
            )));
        }

        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            match package_version(engine, &component).filter(|v| !bindings::compatible(v)) {
                Some(built) => LoadError::Version {
                    plugin: plugin.clone(),
                    file: file.clone(),
                    built,
                    host: bindings::PACKAGE_VERSION,
                },
                None => LoadError::Link {
                    plugin: plugin.clone(),
                    file: file.clone(),
                    reason: format!("{e:#}"),
                },
            }
        })?;
        let pre = match config.world {
            World::Task => task::TaskPre::new(instance_pre).map(PluginPre::Task),
            World::Chat => chat::ChatPre::new(instance_pre).map(PluginPre::Chat),
            World::Tools => bindings::tools::ToolsPre::new(instance_pre).map(PluginPre::Tools),
        }
        .map_err(|e| wrong_world(format!("its `{export}` export does not match the world: {e:#}")))?;

        Ok(Plugin {
            config: Arc::new(config),
            hash,
            loaded_at: Utc::now(),
            compile_time,
            cache: cache_outcome,
            tools: Vec::new(),
            engine: engine.clone(),
            pre,
        })
    }

    /// The plugin's name.
    pub fn name(&self) -> &PluginName {
        &self.config.name
    }
}

/// The version of `mission:plugin` that `component` imports, if it imports
/// any of it (`mission:plugin/log@0.1.0` → `0.1.0`).
fn package_version(engine: &Engine, component: &wasmtime::component::Component) -> Option<String> {
    let prefix = format!("{}/", bindings::PACKAGE);
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| Some(name.strip_prefix(&prefix)?.split_once('@')?.1.to_owned()))
}
