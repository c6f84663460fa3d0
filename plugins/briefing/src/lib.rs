//! Example task plugin: a morning briefing. It greets (config `greeting`,
//! `recipient`), counts its runs in its private state, logs, and returns a
//! one-line summary that the host records.

use mission_task_sdk::mission::plugin::state;
use mission_task_sdk::{config_value, export_task, log_info, Guest, Invocation, Outcome};

struct Briefing;

impl Guest for Briefing {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let greeting = config_value(&invocation.config, "greeting").unwrap_or("Good morning");
        let recipient = config_value(&invocation.config, "recipient").unwrap_or("team");
        let count = match state::get("briefings") {
            Ok(value) => value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1,
            Err(e) => return Err(format!("cannot read my run count: {e:?}")),
        };
        state::set("briefings", &count.to_string())
            .map_err(|e| format!("cannot save my run count: {e:?}"))?;
        log_info(&format!(
            "preparing briefing #{count} (attempt {})",
            invocation.attempt
        ));
        println!("{greeting}, {recipient}!");
        Ok(Outcome {
            summary: format!(
                "{greeting}, {recipient}! Briefing #{count} from `{}`.",
                invocation.name
            ),
        })
    }
}

export_task!(Briefing);
