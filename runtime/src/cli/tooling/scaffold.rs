//! `mission new`: a working plugin of either world in any of the three
//! languages — its source, its build file and its `[plugins.NAME]` entry —
//! from templates compiled into the binary. Each uses `log` and `state`,
//! and a chat plugin `history`.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::cli::tooling::build::Language;
use crate::config::{PluginName, World};

/// What `mission new` writes.
#[derive(Debug)]
pub struct Scaffold {
    /// The plugin's source directory.
    pub dir: PathBuf,
    /// Its files: path inside `dir`, contents.
    pub files: Vec<(PathBuf, String)>,
    /// Its `[plugins.NAME]` entry, with paths relative to the config.
    pub config_entry: String,
}

/// The plugin `name` of `world` in `language`, under `root/plugins/`
/// (`root` is the config's directory).
pub fn scaffold(
    root: &Path,
    world: World,
    name: &PluginName,
    language: Language,
) -> anyhow::Result<Scaffold> {
    let dir = root.join("plugins").join(name.as_str());
    // The JavaScript templates import the WIT interfaces by this host's version.
    let template = |text: &str| {
        text.replace("{{name}}", name.as_str())
            .replace("{{version}}", crate::wasm::bindings::PACKAGE_VERSION)
    };
    let (sdk, sources) = match world {
        World::Task => (
            "task",
            [
                include_str!("../../../scaffold/task.rs"),
                include_str!("../../../scaffold/task.py"),
                include_str!("../../../scaffold/task.js"),
            ],
        ),
        World::Chat => (
            "chat",
            [
                include_str!("../../../scaffold/chat.rs"),
                include_str!("../../../scaffold/chat.py"),
                include_str!("../../../scaffold/chat.js"),
            ],
        ),
        World::Tools => (
            "tools",
            [
                include_str!("../../../scaffold/tools.rs"),
                include_str!("../../../scaffold/tools.py"),
                include_str!("../../../scaffold/tools.js"),
            ],
        ),
    };
    let [rust, python, js] = sources;
    let files = match language {
        Language::Rust => {
            if !root.join("plugins/sdk").join(sdk).join("Cargo.toml").is_file() {
                bail!(
                    "the Rust SDK is not at {}: a Rust plugin builds against plugins/sdk/{sdk} from \
                     the Mission Control repository (copy plugins/sdk beside your config)",
                    root.join("plugins/sdk").join(sdk).display()
                );
            }
            let manifest = template(include_str!("../../../scaffold/Cargo.toml.in"))
                .replace("{{sdk_crate}}", &format!("mission-{sdk}-sdk"))
                .replace("{{sdk_path}}", &format!("../sdk/{sdk}"));
            vec![
                (PathBuf::from("Cargo.toml"), manifest),
                (PathBuf::from("src/lib.rs"), template(rust)),
            ]
        }
        Language::Python => vec![(PathBuf::from("app.py"), template(python))],
        Language::Js => vec![(PathBuf::from("app.js"), template(js))],
    };
    let grants = match world {
        World::Chat => r#"["state", "history"]"#,
        World::Task | World::Tools => r#"["state"]"#,
    };
    let config_entry = format!(
        "\n[plugins.{name}]\nworld = \"{world}\"\nwasm = \"plugins/target/{language}/{name}.wasm\"\n\
         source = \"plugins/{name}\"\ngrants = {grants}\n"
    );
    Ok(Scaffold {
        dir,
        files,
        config_entry,
    })
}
