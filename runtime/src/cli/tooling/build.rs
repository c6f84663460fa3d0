//! Building a plugin from its source directory into a component, whatever
//! its language: Rust with cargo (`Cargo.toml`), Python with componentize-py
//! (`app.py`), JavaScript with componentize-js (`app.js`). The tools are
//! found where `./dev` installs them (`target/python`, `target/js` beside
//! the config), or on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::config::PluginConfig;

/// componentize-py's version, as `./dev` installs it.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";
/// componentize-js's version, as `./dev` installs it.
pub const COMPONENTIZE_JS_VERSION: &str = "0.19.3";

/// A plugin's source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, against the SDK crates in `plugins/sdk`.
    Rust,
    /// Python, with componentize-py.
    Python,
    /// JavaScript, with componentize-js.
    Js,
}

impl Language {
    /// The language of the source in `dir`, by its build file.
    pub fn detect(dir: &Path) -> Option<Language> {
        [
            ("Cargo.toml", Language::Rust),
            ("app.py", Language::Python),
            ("app.js", Language::Js),
        ]
        .into_iter()
        .find(|(file, _)| dir.join(file).is_file())
        .map(|(_, language)| language)
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        })
    }
}

/// What a build did.
#[derive(Debug)]
pub struct Built {
    /// The language.
    pub language: Language,
    /// The tool's command line, as run.
    pub command: String,
    /// How long it took.
    pub took: Duration,
}

/// Builds `plugin`'s source into a component at `out`. `root` is the
/// config's directory: the WIT package is `root/wit`, the tools `./dev`
/// installs are under `root/target`. The tool's own output goes to stderr.
pub fn build(plugin: &PluginConfig, root: &Path, out: &Path) -> anyhow::Result<Built> {
    let source = &plugin.source;
    let language = Language::detect(source).with_context(|| {
        format!(
            "plugin `{}`: no Cargo.toml, app.py or app.js in {} (set `source` in [plugins.{}])",
            plugin.name,
            source.display(),
            plugin.name
        )
    })?;
    let wit = root.join("wit");
    let world = plugin.world.to_string();
    let started = Instant::now();
    let command = match language {
        Language::Rust => build_rust(source, out)?,
        Language::Python => {
            if !wit.is_dir() {
                bail!(
                    "plugin `{}`: the WIT package is not at {}",
                    plugin.name,
                    wit.display()
                );
            }
            let tool = python_tool(root).with_context(|| {
                format!(
                    "plugin `{}` is Python: it needs componentize-py {COMPONENTIZE_PY_VERSION}; \
                     `./dev plugins` installs it into target/python, or `pip install componentize-py=={COMPONENTIZE_PY_VERSION}`",
                    plugin.name
                )
            })?;
            let mut command = Command::new(&tool);
            command
                .arg("-d")
                .arg(&wit)
                .args(["-w", &world, "componentize", "app", "-p"])
                .arg(source)
                .arg("-o")
                .arg(out);
            run(command, &plugin.name.to_string())?
        }
        Language::Js => {
            if !wit.is_dir() {
                bail!(
                    "plugin `{}`: the WIT package is not at {}",
                    plugin.name,
                    wit.display()
                );
            }
            let module =
                root.join("target/js/node_modules/@bytecodealliance/componentize-js/src/componentize.js");
            if !module.is_file() {
                bail!(
                    "plugin `{}` is JavaScript: it needs componentize-js {COMPONENTIZE_JS_VERSION} in {}; \
                     `./dev plugins` installs it (npm)",
                    plugin.name,
                    root.join("target/js").display()
                );
            }
            let mut command = Command::new("node");
            command
                .args(["--input-type=module", "-e", COMPONENTIZE_JS_SCRIPT, "--"])
                .arg(&module)
                .arg(source.join("app.js"))
                .arg(&wit)
                .arg(&world)
                .arg(out);
            run(command, &plugin.name.to_string()).map_err(|e| {
                if e.to_string().contains("cannot start `node`") {
                    e.context("JavaScript plugins need Node.js (`node` on PATH)")
                } else {
                    e
                }
            })?
        }
    };
    Ok(Built {
        language,
        command,
        took: started.elapsed(),
    })
}

/// `plugins/js/componentize.mjs`: `app.js` into a component through
/// componentize-js's API (the same script `./dev` runs).
const COMPONENTIZE_JS_SCRIPT: &str = include_str!("../../../../plugins/js/componentize.mjs");

/// componentize-py: `root/target/python/bin`, else on `PATH`.
fn python_tool(root: &Path) -> Option<PathBuf> {
    let local = root.join("target/python/bin/componentize-py");
    if local.is_file() {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("componentize-py"))
        .find(|p| p.is_file())
}

/// `cargo build --release --target wasm32-wasip2` in `source`, then the
/// package's `.wasm` copied to `out`.
fn build_rust(source: &Path, out: &Path) -> anyhow::Result<String> {
    let manifest = std::fs::canonicalize(source.join("Cargo.toml"))?;
    let mut command = Command::new("cargo");
    command
        .current_dir(source)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(std::process::Stdio::inherit());
    let shown = format!(
        "cargo build --release --target wasm32-wasip2 (in {})",
        source.display()
    );
    let output = command.output().context("cannot start `cargo`")?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    let artifact = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["manifest_path"].as_str() == manifest.to_str())
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .with_context(|| format!("`{shown}` built no .wasm: is the crate a `cdylib`?"))?;
    std::fs::copy(&artifact, out)
        .with_context(|| format!("cannot copy {} to {}", artifact.display(), out.display()))?;
    Ok(shown)
}

/// Runs a tool with its output on our stderr; its command line.
fn run(mut command: Command, plugin: &str) -> anyhow::Result<String> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| {
                let a = a.to_string_lossy();
                if a.contains('\n') {
                    "<script>".to_owned()
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = command
        .stdout(std::process::Stdio::inherit())
        .status()
        .with_context(|| {
            format!(
                "plugin `{plugin}`: cannot start `{}`",
                command.get_program().to_string_lossy()
            )
        })?;
    if !status.success() {
        bail!("plugin `{plugin}`: `{shown}` failed ({status})");
    }
    Ok(shown)
}
