//! What `mission init` writes into a new folder: a config, `schedules/`,
//! the WIT package, and the Rust SDK to build plugins against — compiled
//! into the binary, so a folder needs nothing from this repository. Each
//! SDK crate gets its own copy of the WIT (in the repository, a link).

use std::path::PathBuf;

/// The config a new folder starts with.
const CONFIG: &str = include_str!("../../../scaffold/mission.toml.in");

/// The WIT package and the Rust SDK, by their path in a folder.
const KIT: &[(&str, &str)] = &[
    (
        "wit/attachments.wit",
        include_str!("../../../../wit/attachments.wit"),
    ),
    ("wit/claude.wit", include_str!("../../../../wit/claude.wit")),
    ("wit/common.wit", include_str!("../../../../wit/common.wit")),
    ("wit/event.wit", include_str!("../../../../wit/event.wit")),
    ("wit/history.wit", include_str!("../../../../wit/history.wit")),
    ("wit/later.wit", include_str!("../../../../wit/later.wit")),
    ("wit/log.wit", include_str!("../../../../wit/log.wit")),
    ("wit/notify.wit", include_str!("../../../../wit/notify.wit")),
    ("wit/process.wit", include_str!("../../../../wit/process.wit")),
    ("wit/state.wit", include_str!("../../../../wit/state.wit")),
    ("wit/worlds.wit", include_str!("../../../../wit/worlds.wit")),
    ("wit/deps/cli.wit", include_str!("../../../../wit/deps/cli.wit")),
    (
        "wit/deps/clocks.wit",
        include_str!("../../../../wit/deps/clocks.wit"),
    ),
    (
        "wit/deps/filesystem.wit",
        include_str!("../../../../wit/deps/filesystem.wit"),
    ),
    ("wit/deps/http.wit", include_str!("../../../../wit/deps/http.wit")),
    ("wit/deps/io.wit", include_str!("../../../../wit/deps/io.wit")),
    (
        "wit/deps/random.wit",
        include_str!("../../../../wit/deps/random.wit"),
    ),
    (
        "wit/deps/sockets.wit",
        include_str!("../../../../wit/deps/sockets.wit"),
    ),
    (
        "plugins/sdk/common/Cargo.toml",
        include_str!("../../../../plugins/sdk/common/Cargo.toml"),
    ),
    (
        "plugins/sdk/common/src/lib.rs",
        include_str!("../../../../plugins/sdk/common/src/lib.rs"),
    ),
    (
        "plugins/sdk/common/src/http.rs",
        include_str!("../../../../plugins/sdk/common/src/http.rs"),
    ),
    (
        "plugins/sdk/task/Cargo.toml",
        include_str!("../../../../plugins/sdk/task/Cargo.toml"),
    ),
    (
        "plugins/sdk/task/src/lib.rs",
        include_str!("../../../../plugins/sdk/task/src/lib.rs"),
    ),
    (
        "plugins/sdk/chat/Cargo.toml",
        include_str!("../../../../plugins/sdk/chat/Cargo.toml"),
    ),
    (
        "plugins/sdk/chat/src/lib.rs",
        include_str!("../../../../plugins/sdk/chat/src/lib.rs"),
    ),
    (
        "plugins/sdk/tools/Cargo.toml",
        include_str!("../../../../plugins/sdk/tools/Cargo.toml"),
    ),
    (
        "plugins/sdk/tools/src/lib.rs",
        include_str!("../../../../plugins/sdk/tools/src/lib.rs"),
    ),
];

/// The SDK crates that generate their bindings from a `wit/` of their own.
const SDKS_WITH_WIT: [&str; 3] = ["plugins/sdk/task", "plugins/sdk/chat", "plugins/sdk/tools"];

/// Every file of a new folder: its path inside the folder, its contents.
pub fn files() -> Vec<(PathBuf, &'static str)> {
    let mut files = vec![
        (PathBuf::from("mission.toml"), CONFIG),
        (
            PathBuf::from("schedules/README.md"),
            "One schedule per `NAME.toml` here; see `mission schedule next` and the docs.\n",
        ),
    ];
    for (path, text) in KIT {
        files.push((PathBuf::from(path), *text));
        if let Some(wit) = path.strip_prefix("wit/") {
            for sdk in SDKS_WITH_WIT {
                files.push((PathBuf::from(sdk).join("wit").join(wit), *text));
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every file under `dir` (relative to the repository), as folder paths.
    fn tree(root: &Path, dir: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
            let kind = std::fs::symlink_metadata(entry.path()).unwrap().file_type();
            if kind.is_dir() {
                tree(root, &path, out);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_kit_holds_every_file_of_the_wit_package_and_the_sdk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut repository = Vec::new();
        tree(&root, "wit", &mut repository);
        tree(&root, "plugins/sdk", &mut repository);
        repository.sort();
        let mut kit: Vec<String> = KIT.iter().map(|(path, _)| path.to_string()).collect();
        kit.sort();
        assert_eq!(
            kit, repository,
            "a file was added to wit/ or plugins/sdk/: list it in KIT"
        );
        let written = files();
        assert!(written
            .iter()
            .any(|(p, _)| p == Path::new("plugins/sdk/task/wit/deps/http.wit")));
        assert!(written.iter().any(|(p, _)| p == Path::new("mission.toml")));
    }
}
