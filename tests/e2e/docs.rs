//! The documentation against the code: the configuration reference holds
//! every example documented on the config code, so it cannot drift from it,
//! and every link between the documents leads to a file that exists.

use std::path::Path;

use crate::support::repo_root;

/// The ```toml blocks of a source file's module documentation (`//!`).
fn module_toml_blocks(source: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in source.lines().take_while(|l| l.starts_with("//!")) {
        let text = line
            .strip_prefix("//! ")
            .unwrap_or(line.strip_prefix("//!").unwrap_or(line));
        match (text.trim(), current.as_mut()) {
            ("```toml", None) => current = Some(Vec::new()),
            ("```", Some(lines)) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (_, Some(lines)) => lines.push(text),
            _ => {}
        }
    }
    blocks
}

/// The config sources: `runtime/src/config/*.rs` and the schedule files' reader.
fn config_sources() -> Vec<std::path::PathBuf> {
    let root = repo_root();
    let mut sources: Vec<_> = std::fs::read_dir(root.join("runtime/src/config"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    sources.push(root.join("runtime/src/triggers/schedule/mod.rs"));
    sources.sort();
    sources
}

#[test]
fn the_configuration_reference_holds_every_example_of_the_config_code() {
    let reference = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let mut blocks = 0;
    for source in config_sources() {
        let text = std::fs::read_to_string(&source).unwrap();
        for block in module_toml_blocks(&text) {
            blocks += 1;
            assert!(
                reference.contains(&format!("```toml\n{block}\n```")),
                "docs/configuration.md lacks the example of {}:\n{block}",
                source.display()
            );
        }
        // Each field's `/// Example: `key = ...`` names a key the reference shows.
        for example in text.split("/// Example: `").skip(1) {
            let example = &example[..example.find('`').unwrap()];
            let Some((key, _)) = example.split_once(" = ") else {
                continue;
            };
            assert!(
                reference.contains(&format!("\n{key} = ")) || reference.contains(&format!(" {key} = ")),
                "docs/configuration.md never shows `{key}` ({} documents `{example}`)",
                source.display()
            );
        }
    }
    assert!(
        blocks >= 12,
        "only {blocks} examples found: is the reader still right?"
    );
}

#[test]
fn every_link_between_the_documents_leads_to_a_file() {
    let root = repo_root();
    let mut documents = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        documents.push(entry.unwrap().path());
    }
    for document in documents {
        let text = std::fs::read_to_string(&document).unwrap();
        for link in text.split("](").skip(1) {
            let target = &link[..link.find(')').unwrap()];
            let path = target.split('#').next().unwrap();
            if path.is_empty() || path.contains("://") {
                continue;
            }
            let resolved = document.parent().unwrap().join(path);
            assert!(
                Path::new(&resolved).exists(),
                "{} links to {target}, which is not there",
                document.display()
            );
        }
    }
}
