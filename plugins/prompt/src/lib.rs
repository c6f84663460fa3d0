//! prompt: a scheduled prompt. Each run asks Claude the `prompt` in its
//! config (with the tools and MCP servers its Claude grant gives, within
//! its own budget) and sends the answer to the chat `chat`, Markdown shown
//! as the chat's replies are. "Every weekday at 7 summarise yesterday's
//! orders" is a schedule of this plugin:
//!
//! ```toml
//! plugin = "prompt"
//! cron = "0 7 * * 1-5"
//! timezone = "Europe/Berlin"
//! config = { prompt = "Summarise yesterday's orders.", chat = "123456789" }
//! ```
//!
//! Optional config: `title` (a bold first line), `max_turns`.

use mission_task_sdk::mission::plugin::claude::{self, Options};
use mission_task_sdk::mission::plugin::notify::{self, Message, TextFormat};
use mission_task_sdk::{config_value, export_task, Guest, Invocation, Outcome};

struct Prompt;

impl Guest for Prompt {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let config = &invocation.config;
        let prompt = config_value(config, "prompt")
            .filter(|p| !p.trim().is_empty())
            .ok_or("config `prompt`: what to ask Claude is missing")?;
        let chat: i64 = config_value(config, "chat")
            .ok_or("config `chat`: the chat to send the answer to is missing")?
            .parse()
            .map_err(|_| "config `chat`: a Telegram chat id (a number)".to_owned())?;
        let options = Options {
            max_turns: config_value(config, "max_turns").and_then(|t| t.parse().ok()),
            ..Options::new()
        };
        let answer = claude::ask(prompt, &options).map_err(|e| format!("asking Claude: {e}"))?;
        let text = match config_value(config, "title") {
            Some(title) => format!("**{title}**\n\n{}", answer.text),
            None => answer.text.clone(),
        };
        let message = Message {
            text,
            format: TextFormat::Markdown,
            buttons: Vec::new(),
        };
        notify::post(chat, &message).map_err(|e| format!("sending the answer to chat {chat}: {e}"))?;
        let first_line = answer.text.lines().next().unwrap_or_default();
        Ok(Outcome {
            summary: format!(
                "sent {} characters to chat {chat} (${:.4}): {first_line}",
                answer.text.chars().count(),
                answer.cost_usd
            ),
        })
    }
}

export_task!(Prompt);
