//! Example chat plugin: echoes each message with how many messages this chat
//! has sent (the earlier ones from the history the host keeps, plus this one).

use mission_chat_sdk::mission::plugin::history::{self, Role};
use mission_chat_sdk::{conversation, export_chat, Guest, Message, Reply};

struct EchoChat;

impl Guest for EchoChat {
    fn handle(message: Message) -> Result<Option<Reply>, String> {
        let entries = history::read(&conversation(&message), 1000)?;
        let count = entries.iter().filter(|e| e.role == Role::User).count() + 1;
        Ok(Some(Reply {
            text: format!(
                "{} said: {} (message {count} in this chat)",
                message.sender_name, message.text
            ),
            parse_mode: None,
        }))
    }
}

export_chat!(EchoChat);
