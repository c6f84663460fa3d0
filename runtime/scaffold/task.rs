//! {{name}}: a task plugin. It counts its runs in its private state, logs,
//! and returns a one-line summary that the host records. Config:
//! `greeting` (default "Hello").
//!
//! More, once granted in its `[plugins.{{name}}]` table (docs/plugins.md):
//! `later` (`later::after(ms, payload)`, `at`, `cancel`: the woken run reads
//! `event::wake()`), `notify` (`notify::post(chat, &message)` with buttons:
//! a press runs it again with `event::press()`), and a schedule's or its
//! own `after` (the run reads `event::parent()`).

use mission_task_sdk::mission::plugin::state;
use mission_task_sdk::{config_value, export_task, log_info, Guest, Invocation, Outcome};

struct Plugin;

impl Guest for Plugin {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let greeting = config_value(&invocation.config, "greeting").unwrap_or("Hello");
        let runs = state::get("runs")?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
        state::set("runs", &runs.to_string())?;
        log_info(&format!("run #{runs} of {}", invocation.name));
        Ok(Outcome {
            summary: format!("{greeting} from {{name}}: run #{runs}"),
        })
    }
}

export_task!(Plugin);
