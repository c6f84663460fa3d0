//! What a button under one of the host's messages carries back when it is
//! pressed (Telegram's `callback_data`, 64 bytes at most): `KIND:ID:WORD`,
//! written and read here only. Each kind of button — a tool approval's
//! choice, an alert's action — names its words; the bot reads a press once
//! and hands it to its kind.

/// The kinds of buttons the host posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonKind {
    /// Under a tool-approval prompt: `tool:APPROVAL:CHOICE`.
    Tool,
    /// Under an alert: `alert:ALERT:ACTION`.
    Alert,
    /// Under a plugin's message (`notify.post`): `post:POST:BUTTON`, the
    /// button's place (`ROW.COLUMN`); the plugin's data stays with the host.
    Post,
}

impl ButtonKind {
    const ALL: [ButtonKind; 3] = [ButtonKind::Tool, ButtonKind::Alert, ButtonKind::Post];

    fn prefix(self) -> &'static str {
        match self {
            ButtonKind::Tool => "tool",
            ButtonKind::Alert => "alert",
            ButtonKind::Post => "post",
        }
    }
}

/// A pressed button's data, read: its kind, the row it is about, and the
/// word its kind gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonData<'a> {
    /// Whose button it is.
    pub kind: ButtonKind,
    /// The approval's or the alert's id.
    pub id: i64,
    /// What it does, in its kind's words.
    pub word: &'a str,
}

impl<'a> ButtonData<'a> {
    /// The data for a button of `kind` about row `id` that does `word`.
    pub fn encode(kind: ButtonKind, id: i64, word: &str) -> String {
        format!("{}:{id}:{word}", kind.prefix())
    }

    /// `data` read, if it is one of the host's buttons.
    pub fn parse(data: &'a str) -> Option<ButtonData<'a>> {
        let (prefix, rest) = data.split_once(':')?;
        let kind = ButtonKind::ALL.into_iter().find(|k| k.prefix() == prefix)?;
        let (id, word) = rest.split_once(':')?;
        Some(ButtonData {
            kind,
            id: id.parse().ok()?,
            word,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_button_s_data_reads_back_as_written_and_fits_telegram() {
        for kind in ButtonKind::ALL {
            let data = ButtonData::encode(kind, i64::MAX, "conversation");
            assert!(data.len() <= 64, "Telegram takes at most 64 bytes: {data}");
            assert_eq!(
                ButtonData::parse(&data),
                Some(ButtonData {
                    kind,
                    id: i64::MAX,
                    word: "conversation"
                })
            );
        }
        for foreign in ["tool:x:once", "other:1:once", "alert:1", "", "alert::run"] {
            assert_eq!(ButtonData::parse(foreign), None, "{foreign}");
        }
    }
}
