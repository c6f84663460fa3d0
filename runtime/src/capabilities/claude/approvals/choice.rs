//! The buttons under a prompt and their callback data, the wire format a
//! press comes back in (`tool:ID:once`; Telegram allows 64 bytes).

/// A button under an approval prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Allow once.
    Once,
    /// Allow for this conversation.
    Conversation,
    /// Deny.
    Deny,
}

impl Choice {
    /// The button's callback data for approval `id`.
    pub fn callback_data(self, id: i64) -> String {
        let word = match self {
            Choice::Once => "once",
            Choice::Conversation => "conversation",
            Choice::Deny => "deny",
        };
        format!("tool:{id}:{word}")
    }

    /// The approval and choice a button's `data` names, if it is ours.
    pub fn parse(data: &str) -> Option<(i64, Choice)> {
        let rest = data.strip_prefix("tool:")?;
        let (id, word) = rest.split_once(':')?;
        let choice = match word {
            "once" => Choice::Once,
            "conversation" => Choice::Conversation,
            "deny" => Choice::Deny,
            _ => return None,
        };
        Some((id.parse().ok()?, choice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_names_the_approval_and_the_choice() {
        for choice in [Choice::Once, Choice::Conversation, Choice::Deny] {
            let data = choice.callback_data(42);
            assert!(data.len() <= 64, "Telegram takes at most 64 bytes: {data}");
            assert_eq!(Choice::parse(&data), Some((42, choice)));
        }
        assert_eq!(Choice::parse("tool:x:once"), None);
        assert_eq!(Choice::parse("other:1:once"), None);
        assert_eq!(Choice::parse("tool:1:always"), None);
    }
}
