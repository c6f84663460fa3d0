//! The buttons under a prompt and their words in the callback data a
//! press comes back with (`tool:ID:once`, written by [`ButtonData`]).

use crate::alerts::buttons::{ButtonData, ButtonKind};

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
    const ALL: [Choice; 3] = [Choice::Once, Choice::Conversation, Choice::Deny];

    fn word(self) -> &'static str {
        match self {
            Choice::Once => "once",
            Choice::Conversation => "conversation",
            Choice::Deny => "deny",
        }
    }

    /// The button's callback data for approval `id`.
    pub fn callback_data(self, id: i64) -> String {
        ButtonData::encode(ButtonKind::Tool, id, self.word())
    }

    /// The choice a tool button's `word` names, if any.
    pub fn from_word(word: &str) -> Option<Choice> {
        Choice::ALL.into_iter().find(|c| c.word() == word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_data_names_the_approval_and_the_choice() {
        for choice in Choice::ALL {
            let data = choice.callback_data(42);
            let read = ButtonData::parse(&data).unwrap();
            assert_eq!((read.kind, read.id), (ButtonKind::Tool, 42));
            assert_eq!(Choice::from_word(read.word), Some(choice));
        }
        assert_eq!(Choice::from_word("always"), None);
    }
}
