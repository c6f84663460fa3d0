//! {{name}}: a chat plugin. It answers each message with what it heard,
//! how many earlier messages the chat's history holds, and how many it has
//! answered in all (kept in its private state).

use mission_chat_sdk::mission::plugin::history::{self, Role};
use mission_chat_sdk::mission::plugin::state;
use mission_chat_sdk::{conversation, export_chat, log_info, Guest, Message, Reply};

struct Plugin;

impl Guest for Plugin {
    fn handle(message: Message) -> Result<Option<Reply>, String> {
        let earlier = history::read(&conversation(&message), 100)?;
        let said = earlier.iter().filter(|e| e.role == Role::User).count();
        let answered = state::get("answered")?.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
        state::set("answered", &answered.to_string())?;
        log_info(&format!("message from {} in chat {}", message.sender_name, message.chat_id));
        Ok(Some(Reply {
            text: format!(
                "{{name}} heard: {} ({said} earlier in this chat, {answered} answered in all)",
                message.text
            ),
            parse_mode: None,
        }))
    }
}

export_chat!(Plugin);
