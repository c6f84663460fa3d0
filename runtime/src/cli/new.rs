//! `mission new task|chat NAME [--lang rust|python|js] [--add]`: a new
//! plugin that builds and answers without edits.

use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::tooling::build::Language;
use crate::cli::tooling::scaffold::scaffold;
use crate::config::{Config, PluginName, World};

/// `mission new`'s arguments.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The world: task or chat.
    #[arg(value_enum)]
    pub world: World,
    /// The plugin's name (lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// The language.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub lang: Language,
    /// Add its `[plugins.NAME]` entry to the config.
    #[arg(long)]
    pub add: bool,
}

pub(super) fn new(
    config: Config,
    world: World,
    name: &str,
    language: Language,
    add: bool,
) -> anyhow::Result<ExitCode> {
    let name = PluginName::parse(name).map_err(anyhow::Error::msg)?;
    if config.plugin(name.as_str()).is_some() {
        bail!("a plugin named `{name}` is already in {}", config.file.display());
    }
    let root = config
        .file
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_owned();
    let scaffold = scaffold(&root, world, &name, language)?;
    if scaffold.dir.exists() {
        bail!(
            "{} already exists: pick another name or remove it",
            scaffold.dir.display()
        );
    }
    for (path, contents) in &scaffold.files {
        let file = scaffold.dir.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&file, contents).with_context(|| format!("cannot write {}", file.display()))?;
        say!("wrote {}", file.display());
    }
    if add {
        config.append(&scaffold.config_entry)?;
        say!("added [plugins.{name}] to {}", config.file.display());
    } else {
        say!("\nadd to {}:{}", config.file.display(), scaffold.config_entry);
    }
    let try_it = match world {
        World::Task => format!("mission run {name}"),
        World::Chat => format!("mission chat {name} \"hello\""),
        World::Tools => "mission tools   (then name it in a plugin's claude.tools_from)".to_owned(),
    };
    say!("build: mission build {name}\nthen:  {try_it}");
    Ok(ExitCode::SUCCESS)
}
