//! `mission build [NAME]`: builds plugins from source, whatever the
//! language, and compiles each for this host into the compile cache before
//! it replaces the old `.wasm`, so a running host's hot reload (and the next
//! `mission up`) finds it compiled.

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::tooling::build::{self, Built};
use crate::config::{Config, PluginConfig};
use crate::plugin::cache;
use crate::plugin::loader::PluginLoader;

/// `mission build`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The plugin; all with a source directory if left out.
    pub plugin: Option<String>,
}

pub(super) async fn build(config: Config, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let plugins: Vec<&PluginConfig> = match name {
        Some(name) => match config.plugin(name) {
            Some(plugin) => vec![plugin],
            None => bail!("no plugin named `{name}` in {}", config.file.display()),
        },
        None => config.plugins.iter().collect(),
    };
    let root = config
        .file
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_owned();
    let loader = PluginLoader::open(&config)?;
    let mut failed = 0;
    for plugin in plugins {
        if name.is_none() && !plugin.source.is_dir() {
            say!(
                "{}: skipped, no source at {}",
                plugin.name,
                plugin.source.display()
            );
            continue;
        }
        match build_one(&loader, plugin, &root).await {
            Ok((built, compile)) => say!(
                "{}: built ({}) with `{}` in {:.1} s -> {}; compiled for this host in {:.1} s (cached)",
                plugin.name,
                built.language,
                built.command,
                built.took.as_secs_f64(),
                plugin.wasm.display(),
                compile.as_secs_f64()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    cache::wait_for_writes();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds into a file beside the `.wasm`, loads that (compiling it into the
/// cache and checking its world), then renames it into place.
async fn build_one(
    loader: &PluginLoader,
    plugin: &PluginConfig,
    root: &std::path::Path,
) -> anyhow::Result<(Built, std::time::Duration)> {
    if let Some(dir) = plugin.wasm.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staged = plugin.wasm.with_extension("wasm.building");
    let result = async {
        let built = build::build(plugin, root, &staged)?;
        let mut staged_config = plugin.clone();
        staged_config.wasm = staged.clone();
        let loaded = loader.load(staged_config).await?;
        // The cache entry is written on a thread: it must be on disk before
        // a running host sees the new file.
        cache::wait_for_writes();
        std::fs::rename(&staged, &plugin.wasm)?;
        Ok((built, loaded.compile_time))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}
