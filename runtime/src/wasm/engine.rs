//! The one wasmtime [`Engine`] every plugin is compiled and run with, and
//! the thread that drives its epoch clock so calls can be interrupted.

use std::time::Duration;

use wasmtime::error::Context;
use wasmtime::{Config, Engine};

/// How often the epoch advances. A spinning plugin is checked against its
/// deadline, and yields to other tasks, once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Creates the engine: component model, epoch interruption for deadlines,
/// and a stack limit fit for small plugins.
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20);
    let engine = Engine::new(&config).context("failed to create the wasmtime engine")?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] on a background thread that
/// ends once the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("mission-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("failed to spawn the epoch thread");
}
