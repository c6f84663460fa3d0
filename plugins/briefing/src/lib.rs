//! Example task plugin: a morning briefing. It greets (config `greeting`,
//! `recipient`), counts its runs in its private state, logs, returns a
//! one-line summary that the host records, and with config `chat` (and the
//! `notify` grant for it) sends the summary to that Telegram chat.

use mission_task_sdk::mission::plugin::{notify, state};
use mission_task_sdk::{config_value, export_task, log_info, Guest, Invocation, Outcome};

struct Briefing;

impl Guest for Briefing {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let greeting = config_value(&invocation.config, "greeting").unwrap_or("Good morning");
        let recipient = config_value(&invocation.config, "recipient").unwrap_or("team");
        let stored = state::get("briefings")?;
        let count = stored.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
        state::set("briefings", &count.to_string())?;
        log_info(&format!(
            "preparing briefing #{count} (attempt {})",
            invocation.attempt
        ));
        println!("{greeting}, {recipient}!");
        let summary = format!(
            "{greeting}, {recipient}! Briefing #{count} from `{}`.",
            invocation.name
        );
        if let Some(chat) = config_value(&invocation.config, "chat") {
            let chat: i64 = chat
                .parse()
                .map_err(|_| format!("config `chat`: `{chat}` is not a Telegram chat id"))?;
            notify::send(chat, &summary)
                .map_err(|e| format!("cannot send the briefing to chat {chat}: {e}"))?;
        }
        Ok(Outcome { summary })
    }
}

export_task!(Briefing);
