//! The compile cache on disk: a component compiled once is kept as native
//! code under the data directory, keyed by its content hash and the engine's
//! settings, so a restart does not recompile unchanged plugins.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use anyhow::Context;
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::plugin::hash::ContentHash;

/// A directory of precompiled components.
#[derive(Clone, Debug)]
pub struct CompileCache {
    dir: PathBuf,
    /// Identifies the engine's version and settings; part of every file name
    /// so an upgraded host never loads code compiled for another.
    engine_key: String,
}

/// Whether a component came from the cache or had to be compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a file compiled earlier.
    Hit,
    /// Compiled now (and stored for next time).
    Miss,
}

impl CompileCache {
    /// Opens (creating if needed) the cache in `dir` for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> anyhow::Result<CompileCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create the compile cache {}", dir.display()))?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// The component for `wasm` (whose hash is `hash`): from the cache if it
    /// is there and sound, else compiled and stored. An unreadable or stale
    /// cache file is replaced, never fatal.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        hash: &ContentHash,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.dir.join(format!("{hash}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash, into a directory only
            // this host writes, and is renamed into place only when complete.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), "ignoring unreadable compile cache entry: {e}")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        // Writing the entry (serializing megabytes of code) is not on the
        // path to the first call: a thread does it while the plugin serves.
        let stored = component.clone();
        let writer = std::thread::spawn(move || {
            if let Err(e) = store(&path, &stored) {
                tracing::warn!(file = %path.display(), "failed to write compile cache entry: {e:#}");
            }
        });
        let mut writes = PENDING_WRITES.lock().unwrap_or_else(|p| p.into_inner());
        writes.retain(|w| !w.is_finished());
        writes.push(writer);
        Ok((component, CacheOutcome::Miss))
    }
}

/// Cache entries still being written, so the process can finish them before
/// it exits.
static PENDING_WRITES: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits for every cache entry still being written: call before the process
/// exits, or a short-lived command would leave nothing cached.
pub fn wait_for_writes() {
    let writes = std::mem::take(&mut *PENDING_WRITES.lock().unwrap_or_else(|p| p.into_inner()));
    for writer in writes {
        let _ = writer.join();
    }
}

/// Writes `component`'s native code to `path`, renamed into place only when
/// complete so a reader never sees half a file.
fn store(path: &Path, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize()?;
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
