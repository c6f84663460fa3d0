//! Claude's Markdown as Telegram's HTML subset: bold, italic, strikethrough,
//! inline code, `pre` with a language, links and quotes; headings bold,
//! lists and rules as text; everything else escaped (`<`, `>`, `&`, `"`,
//! the only entities Telegram reads). [`split`] cuts the HTML into
//! messages without breaking a tag or an entity: tags open at a cut are
//! closed there and opened again in the next piece. [`plain`] is the
//! fallback text when Telegram refuses the entities.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// `markdown` rendered to Telegram HTML.
pub fn render(markdown: &str) -> String {
    let mut out = String::new();
    // Each open list: the next item's number, or none for bullets.
    let mut lists: Vec<Option<u64>> = Vec::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph => {}
                Tag::Heading { .. } => out.push_str("<b>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(kind) => match kind {
                    CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                        let lang = lang.split_whitespace().next().unwrap_or_default();
                        out.push_str(&format!("<pre><code class=\"language-{}\">", escape(lang)));
                    }
                    _ => out.push_str("<pre>"),
                },
                Tag::List(start) => {
                    if !lists.is_empty() && !out.ends_with('\n') {
                        out.push('\n');
                    }
                    lists.push(start);
                }
                Tag::Item => {
                    let depth = lists.len().saturating_sub(1);
                    out.push_str(&"  ".repeat(depth));
                    match lists.last_mut() {
                        Some(Some(number)) => {
                            out.push_str(&format!("{number}. "));
                            *number += 1;
                        }
                        _ => out.push_str("• "),
                    }
                }
                Tag::Emphasis => out.push_str("<i>"),
                Tag::Strong => out.push_str("<b>"),
                Tag::Strikethrough => out.push_str("<s>"),
                Tag::Link { dest_url, .. } => out.push_str(&format!("<a href=\"{}\">", escape(&dest_url))),
                Tag::Image { dest_url, .. } => out.push_str(&format!("<a href=\"{}\">", escape(&dest_url))),
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => paragraph_break(&mut out, !lists.is_empty()),
                TagEnd::Heading(_) => {
                    out.push_str("</b>");
                    paragraph_break(&mut out, false);
                }
                TagEnd::BlockQuote(_) => {
                    trim_end_newlines(&mut out);
                    out.push_str("</blockquote>");
                    paragraph_break(&mut out, false);
                }
                TagEnd::CodeBlock => {
                    trim_end_newlines(&mut out);
                    close_code_block(&mut out);
                    paragraph_break(&mut out, !lists.is_empty());
                }
                TagEnd::List(_) => {
                    lists.pop();
                    if lists.is_empty() {
                        paragraph_break(&mut out, false);
                    }
                }
                TagEnd::Item => {
                    trim_end_newlines(&mut out);
                    out.push('\n');
                }
                TagEnd::Emphasis => out.push_str("</i>"),
                TagEnd::Strong => out.push_str("</b>"),
                TagEnd::Strikethrough => out.push_str("</s>"),
                TagEnd::Link | TagEnd::Image => out.push_str("</a>"),
                _ => {}
            },
            Event::Text(text) => out.push_str(&escape(&text)),
            Event::Code(code) => out.push_str(&format!("<code>{}</code>", escape(&code))),
            Event::Html(html) | Event::InlineHtml(html) => out.push_str(&escape(&html)),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                out.push_str("──────────");
                paragraph_break(&mut out, false);
            }
            _ => {}
        }
    }
    out.trim_end().to_owned()
}

/// Ends a block: a blank line after it (a line break inside a list).
fn paragraph_break(out: &mut String, tight: bool) {
    trim_end_newlines(out);
    out.push_str(if tight { "\n" } else { "\n\n" });
}

fn trim_end_newlines(out: &mut String) {
    while out.ends_with('\n') {
        out.pop();
    }
}

/// Closes the code block open at the end of `out`.
fn close_code_block(out: &mut String) {
    let fenced = out
        .rfind("<pre><code class=")
        .is_some_and(|at| !out[at..].contains("</pre>"));
    out.push_str(if fenced { "</code></pre>" } else { "</pre>" });
}

/// `text` with the characters Telegram's HTML gives meaning escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            ch => out.push(ch),
        }
    }
    out
}

/// The text of `html` as a person reads it: tags dropped, entities read.
pub fn plain(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(ch) = rest.chars().next() {
        if ch == '<' {
            if let Some(end) = rest.find('>') {
                rest = &rest[end + 1..];
                continue;
            }
        }
        if ch == '&' {
            let entity = [("&lt;", '<'), ("&gt;", '>'), ("&amp;", '&'), ("&quot;", '"')]
                .into_iter()
                .find(|(name, _)| rest.starts_with(name));
            if let Some((name, read)) = entity {
                out.push(read);
                rest = &rest[name.len()..];
                continue;
            }
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

/// One piece of HTML that cannot be cut: a tag, an entity or a character.
enum Atom<'a> {
    Open { tag: &'a str, name: &'a str },
    Close(&'a str),
    Text(&'a str),
}

fn atoms(html: &str) -> Vec<Atom<'_>> {
    let mut atoms = Vec::new();
    let mut at = 0;
    while at < html.len() {
        let rest = &html[at..];
        let len = match rest.as_bytes()[0] {
            b'<' => match rest.find('>') {
                Some(end) => {
                    let tag = &rest[..=end];
                    match tag.strip_prefix("</") {
                        Some(_) => atoms.push(Atom::Close(tag)),
                        None => {
                            let name = tag[1..tag.len() - 1]
                                .split(|c: char| c.is_whitespace())
                                .next()
                                .unwrap_or_default();
                            atoms.push(Atom::Open { tag, name });
                        }
                    }
                    end + 1
                }
                None => {
                    atoms.push(Atom::Text(&rest[..1]));
                    1
                }
            },
            b'&' => {
                let end = rest.find(';').filter(|&e| e <= 6).map_or(1, |e| e + 1);
                atoms.push(Atom::Text(&rest[..end]));
                end
            }
            _ => {
                let ch = rest.chars().next().expect("not empty");
                atoms.push(Atom::Text(&rest[..ch.len_utf8()]));
                ch.len_utf8()
            }
        };
        at += len;
    }
    atoms
}

/// How long Telegram counts `html`'s text: its entities as one character
/// each, its tags as nothing (UTF-16 units, as Telegram counts).
fn text_len(atom: &Atom<'_>) -> usize {
    match atom {
        Atom::Text(text) if text.starts_with('&') && text.len() > 1 => 1,
        Atom::Text(text) => text.chars().map(char::len_utf16).sum(),
        _ => 0,
    }
}

/// `html` cut into pieces whose text is at most `max` UTF-16 units, at a
/// line break if there is one in the second half of the piece, else a
/// space, else anywhere between atoms; a tag open at a cut is closed there
/// and opened again at the start of the next piece.
pub fn split(html: &str, max: usize) -> Vec<String> {
    let atoms = atoms(html);
    let mut pieces = Vec::new();
    let mut start = 0;
    // The tags open at `start`, outermost first.
    let mut open_at_start: Vec<(&str, &str)> = Vec::new();
    while start < atoms.len() {
        let mut open = open_at_start.clone();
        let mut len = 0;
        let (mut newline, mut space) = (None, None);
        let mut end = start;
        while end < atoms.len() {
            let atom = &atoms[end];
            if len + text_len(atom) > max {
                break;
            }
            len += text_len(atom);
            match atom {
                Atom::Open { tag, name } => open.push((tag, name)),
                Atom::Close(_) => {
                    open.pop();
                }
                Atom::Text("\n") => newline = Some((end, open.clone(), len)),
                Atom::Text(" ") => space = Some((end, open.clone(), len)),
                Atom::Text(_) => {}
            }
            end += 1;
        }
        let (cut, open_at_cut) = if end == atoms.len() {
            (end, open)
        } else {
            match newline.filter(|(_, _, at)| *at > max / 2).or(space) {
                // Cut at the break; it is dropped.
                Some((at, open, _)) => (at, open),
                None => (end, open),
            }
        };
        let mut piece: String = open_at_start.iter().map(|(tag, _)| *tag).collect();
        for atom in &atoms[start..cut] {
            piece.push_str(match atom {
                Atom::Open { tag, .. } => tag,
                Atom::Close(tag) => tag,
                Atom::Text(text) => text,
            });
        }
        for (_, name) in open_at_cut.iter().rev() {
            piece.push_str(&format!("</{name}>"));
        }
        if !plain(&piece).trim().is_empty() {
            pieces.push(piece.trim().to_owned());
        }
        start = match cut < atoms.len() && matches!(atoms[cut], Atom::Text("\n") | Atom::Text(" ")) {
            true => cut + 1,
            false => cut.max(start + 1),
        };
        open_at_start = open_at_cut;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_telegram_html() {
        let cases = [
            (
                "**bold** and *italic* and ~~gone~~",
                "<b>bold</b> and <i>italic</i> and <s>gone</s>",
            ),
            ("`a < b` & \"c\"", "<code>a &lt; b</code> &amp; &quot;c&quot;"),
            ("# Title\n\ntext", "<b>Title</b>\n\ntext"),
            (
                "```rust\nfn main() { x < 1 }\n```",
                "<pre><code class=\"language-rust\">fn main() { x &lt; 1 }</code></pre>",
            ),
            ("    indented\n    code", "<pre>indented\ncode</pre>"),
            (
                "[the docs](https://ex.com/?a=1&b=2)",
                "<a href=\"https://ex.com/?a=1&amp;b=2\">the docs</a>",
            ),
            ("> quoted\n> more", "<blockquote>quoted\nmore</blockquote>"),
            (
                "- one\n- two\n  - inner\n\nafter",
                "• one\n• two\n  • inner\n\nafter",
            ),
            ("3. three\n4. four", "3. three\n4. four"),
            (
                "**nested `code` in bold**",
                "<b>nested <code>code</code> in bold</b>",
            ),
            ("a <script> tag", "a &lt;script&gt; tag"),
            ("line one\nline two", "line one\nline two"),
            ("1 < 2 & 3 > 2.", "1 &lt; 2 &amp; 3 &gt; 2."),
            ("***", "──────────"),
        ];
        for (markdown, html) in cases {
            assert_eq!(render(markdown), html, "{markdown:?}");
        }
    }

    #[test]
    fn the_captured_streamed_answer_renders() {
        let text = "Here is **what I see**: a page with `Schedules` and runs.\n\n```python\nprint('ok')\n```\nEscapes: 1 < 2 & 3 > 2.";
        assert_eq!(
            render(text),
            "Here is <b>what I see</b>: a page with <code>Schedules</code> and runs.\n\n\
             <pre><code class=\"language-python\">print('ok')</code></pre>\n\nEscapes: 1 &lt; 2 &amp; 3 &gt; 2."
        );
    }

    #[test]
    fn a_split_never_breaks_a_tag_or_an_entity_and_reopens_what_was_open() {
        // A code block longer than a message: each piece is whole HTML.
        let code: String = (0..40).map(|i| format!("let x{i} = a &lt; b;\n")).collect();
        let html = format!(
            "Intro <b>bold</b>\n<pre><code class=\"language-rust\">{}</code></pre>\nend",
            code.trim_end()
        );
        let pieces = split(&html, 200);
        assert!(pieces.len() > 3, "{pieces:#?}");
        for piece in &pieces {
            let text = plain(piece);
            assert!(text.chars().map(char::len_utf16).sum::<usize>() <= 200, "{piece}");
            assert_eq!(
                piece.matches("<pre>").count(),
                piece.matches("</pre>").count(),
                "{piece}"
            );
            assert_eq!(
                piece.matches("<code").count(),
                piece.matches("</code>").count(),
                "{piece}"
            );
            assert!(!piece.contains("&l\n") && !piece.ends_with('&'), "{piece}");
        }
        assert!(
            pieces[1].starts_with("<pre><code class=\"language-rust\">"),
            "{}",
            pieces[1]
        );
        // Nothing lost but the line breaks cut at.
        let joined: String = pieces.iter().map(|p| plain(p)).collect::<Vec<_>>().join("\n");
        assert_eq!(joined.replace('\n', ""), plain(&html).replace('\n', ""));
        // Short HTML is one piece, as it was.
        assert_eq!(split("<b>hi</b> &amp; bye", 4096), ["<b>hi</b> &amp; bye"]);
    }

    #[test]
    fn plain_reads_the_entities_and_drops_the_tags() {
        assert_eq!(plain("<b>a &lt; b</b> &amp; <a href=\"x\">c</a>"), "a < b & c");
    }
}
