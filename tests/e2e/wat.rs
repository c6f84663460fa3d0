//! Task-world components from hand-written WAT, for fixtures whose behaviour
//! must be exact (trap, spin, grow memory) and for the benchmarks' baseline.
//! Shared by the end-to-end tests and the benchmarks (`#[path]`).

use std::path::Path;

/// A task-world component whose `run` has the body `body`: WAT
/// instructions ending with a pointer to a `result<outcome, string>` return
/// area (`{tag@0, ptr@4, len@8}`). Memory above 1024 is a bump allocator's.
pub fn wat_task(body: &str) -> Vec<u8> {
    wat_task_with(body, "")
}

/// Like [`wat_task`], with `extra` module fields (functions, data) added.
pub fn wat_task_with(body: &str, extra: &str) -> Vec<u8> {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    wat_task_against(&wit, "", body, extra)
}

/// Like [`wat_task_with`], built against the WIT package in `wit` (another
/// version of ours, say), with core `imports` of its interfaces.
pub fn wat_task_against(wit: &Path, imports: &str, body: &str, extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
            {imports}
            (memory (export "memory") 1)
            (global $next (mut i32) (i32.const 1024))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
                (local $at i32)
                ;; align up, hand out, move on; nothing is ever freed
                (local.set $at (i32.and
                    (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
                    (i32.sub (i32.const 0) (local.get 2))))
                (global.set $next (i32.add (local.get $at) (local.get 3)))
                (local.get $at))
            (func (export "run") (param i32 i32 i64 i32 i32 i32) (result i32)
                {body})
            (func (export "cabi_post_run") (param i32))
            {extra})"#
    );
    let mut module = wat::parse_str(wat).expect("fixture WAT is valid");
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_path(wit).expect("wit/ parses");
    let world = resolve
        .select_world(&[package], Some("task"))
        .expect("wit/ has a task world");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module is accepted")
        .validate(true)
        .encode()
        .expect("component encodes")
}

/// A `run` body that succeeds at once with `summary` (ASCII, kept at
/// offset 64).
pub fn returns(summary: &str) -> String {
    let stores: String = summary
        .bytes()
        .enumerate()
        .map(|(i, b)| format!("(i32.store8 (i32.const {}) (i32.const {b}))\n", 64 + i))
        .collect();
    format!(
        "{stores}
        (i32.store8 (i32.const 0) (i32.const 0))
        (i32.store (i32.const 4) (i32.const 64))
        (i32.store (i32.const 8) (i32.const {}))
        (i32.const 0)",
        summary.len()
    )
}

/// A `run` body that counts down from `iterations` (about a nanosecond
/// each), then succeeds with `summary`.
pub fn spins_then_returns(iterations: u32, summary: &str) -> String {
    format!(
        "(local $left i32)
        (local.set $left (i32.const {iterations}))
        (loop $spin
            (local.set $left (i32.sub (local.get $left) (i32.const 1)))
            (br_if $spin (local.get $left)))
        {}",
        returns(summary)
    )
}
