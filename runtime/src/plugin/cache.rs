//! The compile cache on disk: a component compiled once is kept as native
//! code under the data directory, keyed by its content hash and the engine's
//! settings, so a restart does not recompile unchanged plugins. Entries
//! nobody uses any more (an old build, an older host's) are swept.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::Serialize;
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

/// Compiled files: how many, and the bytes they take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheFiles {
    /// Files.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The cache's folder in the data directory.
pub const CACHE_DIR: &str = "cache";

/// A partial write older than this was left by a process that died.
const ABANDONED_WRITE: Duration = Duration::from_secs(3600);

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
                Ok(component) => {
                    // The file's time is when it was last used: what `sweep` reads.
                    if let Err(e) = touch(&path) {
                        tracing::debug!(file = %path.display(), "failed to mark a compile cache entry used: {e}");
                    }
                    return Ok((component, CacheOutcome::Hit));
                }
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

    /// The files in the cache now.
    pub fn size(&self) -> std::io::Result<CacheFiles> {
        let mut size = CacheFiles::default();
        for entry in std::fs::read_dir(&self.dir)? {
            let metadata = entry?.metadata()?;
            if metadata.is_file() {
                size.files += 1;
                size.bytes += metadata.len();
            }
        }
        Ok(size)
    }

    /// Removes, as of `now`, the compiled code nobody has used for
    /// `unused_for`: entries of components not in `in_use` (an old build, a
    /// plugin removed) and entries compiled for another engine (an older
    /// host). Entries of `in_use` stay whatever their age; so does a write
    /// under way. Returns what was removed.
    pub fn sweep(
        &self,
        in_use: &HashSet<ContentHash>,
        unused_for: Duration,
        now: SystemTime,
    ) -> std::io::Result<CacheFiles> {
        let in_use: HashSet<String> = in_use
            .iter()
            .map(|hash| format!("{hash}-{}.cwasm", self.engine_key))
            .collect();
        let mut swept = CacheFiles::default();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let metadata = entry.metadata()?;
            let age = now.duration_since(metadata.modified()?).unwrap_or_default();
            let stale = if name.contains(".partial-") {
                age > ABANDONED_WRITE
            } else {
                name.ends_with(".cwasm") && !in_use.contains(&name) && age > unused_for
            };
            if stale && metadata.is_file() {
                std::fs::remove_file(entry.path())?;
                swept.files += 1;
                swept.bytes += metadata.len();
            }
        }
        Ok(swept)
    }
}

/// Sets `path`'s modification time to now.
fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
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

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    /// A component with nothing in it, and its hash.
    fn component() -> (Vec<u8>, ContentHash) {
        let wasm = wat::parse_str("(component)").unwrap();
        let hash = ContentHash::of(&wasm);
        (wasm, hash)
    }

    fn cache() -> (tempfile::TempDir, Engine, CompileCache) {
        let dir = tempfile::tempdir().unwrap();
        let engine = crate::wasm::engine::new_engine().unwrap();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        (dir, engine, cache)
    }

    /// Writes `name` in `dir`, last modified `age` ago.
    fn file(dir: &Path, name: &str, age: Duration) {
        let path = dir.join(name);
        std::fs::write(&path, b"code").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_sweep_removes_old_unused_code_and_leaves_what_is_in_use_or_recent() {
        let (dir, _engine, cache) = cache();
        let key = &cache.engine_key;
        let hash = |build: &str| ContentHash::of(build.as_bytes());
        let (loaded, old_build, recent_build) = (hash("loaded"), hash("old"), hash("recent"));
        file(dir.path(), &format!("{loaded}-{key}.cwasm"), 30 * DAY);
        file(dir.path(), &format!("{old_build}-{key}.cwasm"), 8 * DAY);
        file(dir.path(), &format!("{recent_build}-{key}.cwasm"), DAY);
        // The loaded component as an older host compiled it.
        file(dir.path(), &format!("{loaded}-0000000000000000.cwasm"), 8 * DAY);
        file(
            dir.path(),
            &format!("{old_build}-{key}.partial-1"),
            2 * ABANDONED_WRITE,
        );
        file(
            dir.path(),
            &format!("{recent_build}-{key}.partial-2"),
            Duration::ZERO,
        );
        file(dir.path(), "notes.txt", 30 * DAY);

        let in_use = HashSet::from([loaded.clone()]);
        let swept = cache.sweep(&in_use, 7 * DAY, SystemTime::now()).unwrap();

        assert_eq!(swept, CacheFiles { files: 3, bytes: 12 });
        let mut kept = vec![
            format!("{loaded}-{key}.cwasm"),
            format!("{recent_build}-{key}.cwasm"),
            format!("{recent_build}-{key}.partial-2"),
            "notes.txt".to_owned(),
        ];
        kept.sort();
        assert_eq!(names(dir.path()), kept);
        assert_eq!(cache.size().unwrap(), CacheFiles { files: 4, bytes: 16 });
    }

    #[test]
    fn an_entry_loaded_again_counts_as_used_now() {
        let (dir, engine, cache) = cache();
        let (wasm, hash) = component();
        let (_, outcome) = cache.load(&engine, &wasm, &hash).unwrap();
        assert_eq!(outcome, CacheOutcome::Miss);
        wait_for_writes();
        let entry = dir.path().join(format!("{hash}-{}.cwasm", cache.engine_key));
        let file = std::fs::File::options().write(true).open(&entry).unwrap();
        file.set_modified(SystemTime::now() - 30 * DAY).unwrap();

        let (_, outcome) = cache.load(&engine, &wasm, &hash).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        let swept = cache.sweep(&HashSet::new(), 7 * DAY, SystemTime::now()).unwrap();
        assert_eq!(swept.files, 0);
        assert!(entry.exists());

        // Unused from here on: gone once the period has passed.
        let swept = cache
            .sweep(&HashSet::new(), 7 * DAY, SystemTime::now() + 8 * DAY)
            .unwrap();
        assert_eq!(swept.files, 1);
        assert!(!entry.exists());
    }
}
