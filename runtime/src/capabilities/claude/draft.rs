//! Claude's text while it is being written, for a chat that shows it: the
//! persistent backend appends each text delta of its stream-json partial
//! messages, and the bot reads the latest text when it next updates the
//! chat. Only the latest text matters, so it is a watch channel: a slow
//! reader skips states, never falls behind.

use std::fmt;

use tokio::sync::watch;

/// The writing end, carried by a chat call that streams.
#[derive(Clone)]
pub struct Draft {
    text: watch::Sender<String>,
}

/// The reading end, for whoever shows the text.
pub type DraftView = watch::Receiver<String>;

impl Draft {
    /// A new, empty draft and its view.
    pub fn new() -> (Draft, DraftView) {
        let (text, view) = watch::channel(String::new());
        (Draft { text }, view)
    }

    /// Appends `delta` to the text.
    pub(crate) fn push(&self, delta: &str) {
        self.text.send_modify(|text| text.push_str(delta));
    }

    /// Starts the text over: Claude began another message of its turn.
    pub(crate) fn restart(&self) {
        self.text.send_if_modified(|text| {
            let had = !text.is_empty();
            text.clear();
            had
        });
    }
}

impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Draft")
            .field("chars", &self.text.borrow().len())
            .finish()
    }
}

impl PartialEq for Draft {
    fn eq(&self, other: &Draft) -> bool {
        self.text.same_channel(&other.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_sees_the_text_so_far_and_a_restart() {
        let (draft, mut view) = Draft::new();
        draft.push("Hello, ");
        draft.push("world");
        assert!(view.has_changed().unwrap());
        assert_eq!(*view.borrow_and_update(), "Hello, world");
        draft.restart();
        assert_eq!(*view.borrow_and_update(), "");
        draft.restart();
        assert!(
            !view.has_changed().unwrap(),
            "an empty draft restarted is unchanged"
        );
    }
}
