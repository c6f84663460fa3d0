//! Rust bindings for the worlds of `wit/`, one `bindgen!` per world.
//!
//! The chat world reuses the task world's capability interfaces (`with`), so
//! each capability has exactly one host trait, implemented in
//! [`crate::capabilities`].

/// The `task` world: a plugin that exports `run`.
pub mod task {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "task",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// The `chat` world: a plugin that exports `handle`.
pub mod chat {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "chat",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "mission:plugin/common": super::task::mission::plugin::common,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "mission:plugin/log": super::task::mission::plugin::log,
            "mission:plugin/state": super::task::mission::plugin::state,
            "mission:plugin/history": super::task::mission::plugin::history,
            "mission:plugin/claude": super::task::mission::plugin::claude,
            "mission:plugin/notify": super::task::mission::plugin::notify,
            "mission:plugin/process": super::task::mission::plugin::process,
        },
    });
}

/// The `tools` world: a plugin that exports `tools` and `call`.
pub mod tools {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tools",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "mission:plugin/common": super::task::mission::plugin::common,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "mission:plugin/log": super::task::mission::plugin::log,
            "mission:plugin/state": super::task::mission::plugin::state,
            "mission:plugin/claude": super::task::mission::plugin::claude,
            "mission:plugin/notify": super::task::mission::plugin::notify,
            "mission:plugin/process": super::task::mission::plugin::process,
        },
    });
}

pub use task::mission::plugin::common::CapabilityError;

/// The package these bindings are of.
pub const PACKAGE: &str = "mission:plugin";

/// The version of [`PACKAGE`] in `wit/`, which the host provides. Versions
/// follow semver as the component model links them: a component built
/// against an earlier `0.1.x` still loads on a `0.1.y` host (wasmtime
/// matches `0.1.*` imports to it); another minor is refused by name (see
/// [`compatible`]).
pub const PACKAGE_VERSION: &str = "0.1.6";

/// Whether an import of `version` of the package links to this host's:
/// the same major for `1.0` and later, the same minor for `0.x`, exactly the
/// same for `0.0.x` (wasmtime's rule for semver-compatible names).
pub fn compatible(version: &str) -> bool {
    let key = |v: &str| -> Option<Vec<u64>> {
        let parts: Vec<u64> = v.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        match parts.as_slice() {
            [0, 0, _] => Some(parts),
            [0, minor, _] => Some(vec![0, *minor]),
            [major, _, _] => Some(vec![*major]),
            _ => None,
        }
    };
    key(version).is_some() && key(version) == key(PACKAGE_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_one_in_wit() {
        let common =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/common.wit")).unwrap();
        assert!(
            common.contains(&format!("package {PACKAGE}@{PACKAGE_VERSION};")),
            "wit/common.wit names another version than PACKAGE_VERSION"
        );
    }

    #[test]
    fn versions_link_as_semver_says() {
        assert!(compatible("0.1.0") && compatible("0.1.7"));
        for other in ["0.2.0", "0.0.9", "1.0.0", "nonsense"] {
            assert!(!compatible(other), "{other}");
        }
    }
}
