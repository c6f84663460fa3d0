//! `mission init DIR`: a folder of one's own automations, outside this
//! repository — a config, `schedules/`, the WIT package and the Rust SDK —
//! ready for `mission new`, `build` and `run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::tooling::starter_kit;

/// `mission init`'s arguments.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

pub(super) fn init(dir: &Path) -> anyhow::Result<ExitCode> {
    let config = dir.join("mission.toml");
    if config.exists() {
        bail!("{} already exists: this folder is set up", config.display());
    }
    for (path, text) in starter_kit::files() {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
    }
    say!(
        "set up {}: mission.toml, schedules/, wit/ and the Rust SDK in plugins/sdk/",
        dir.display()
    );
    say!(
        "next:  cd {} && mission new task hello --add && mission build hello && mission run hello",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
