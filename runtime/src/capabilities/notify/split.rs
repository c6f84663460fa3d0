//! Splitting a reply into messages Telegram accepts: at most 4096
//! characters each (counted in UTF-16 units, as Telegram counts), cut at a
//! line break, else a space, else anywhere.

/// Telegram's limit on a message's text, in UTF-16 units.
pub const MAX_MESSAGE: usize = 4096;

/// `text` cut into pieces of at most `max` UTF-16 units, preferring line
/// breaks, then spaces. No piece is empty; joined they give back `text`
/// minus the whitespace cut at.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if utf16_len(rest) <= max {
            pieces.push(rest.to_owned());
            break;
        }
        // The longest prefix within the limit, on a char boundary.
        let mut units = 0;
        let mut end = 0;
        for (index, ch) in rest.char_indices() {
            if units + ch.len_utf16() > max {
                break;
            }
            units += ch.len_utf16();
            end = index + ch.len_utf8();
        }
        let window = &rest[..end];
        let cut = window
            .rfind('\n')
            .or_else(|| window.rfind(' '))
            .filter(|&at| at > 0)
            .unwrap_or(end);
        pieces.push(rest[..cut].trim_end().to_owned());
        rest = rest[cut..].trim_start();
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_text_is_one_message() {
        assert_eq!(split("hello", MAX_MESSAGE), ["hello"]);
        assert!(split("   ", MAX_MESSAGE).is_empty());
    }

    #[test]
    fn cuts_at_line_breaks_first() {
        let text = format!("{}\n{}", "a".repeat(3000), "b".repeat(3000));
        let pieces = split(&text, MAX_MESSAGE);
        assert_eq!(pieces, ["a".repeat(3000), "b".repeat(3000)]);
    }

    #[test]
    fn cuts_at_spaces_when_a_line_is_too_long() {
        let words = vec!["word"; 2000].join(" "); // 9999 characters
        let pieces = split(&words, MAX_MESSAGE);
        assert_eq!(pieces.len(), 3);
        assert!(pieces
            .iter()
            .all(|p| utf16_len(p) <= MAX_MESSAGE && !p.starts_with(' ') && !p.ends_with(' ')));
        assert_eq!(pieces.join(" "), words);
    }

    #[test]
    fn counts_utf16_units_and_never_cuts_inside_a_character() {
        let emoji = "😀".repeat(3000); // 2 UTF-16 units each, no spaces
        let pieces = split(&emoji, MAX_MESSAGE);
        assert!(pieces.iter().all(|p| utf16_len(p) <= MAX_MESSAGE));
        assert_eq!(pieces.concat(), emoji);
    }
}
