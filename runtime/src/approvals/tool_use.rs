//! A tool Claude wants to use, and the summary of it a person decides on.

use serde_json::Value;

/// The longest input summary shown in the chat.
const MAX_SUMMARY: usize = 300;

/// A tool Claude wants to use, with its input.
#[derive(Debug, Clone)]
pub struct ToolUse {
    /// The tool's name (`Bash`, `Write`…).
    pub tool: String,
    /// Its input as the model wrote it.
    pub input: Value,
}

impl ToolUse {
    /// The tool's name as a person knows it: a plugin's tool as its grant
    /// names it (`mcp__crm__create_lead` is `crm.create_lead`), any other
    /// as the CLI does.
    pub fn display_name(&self) -> String {
        match self
            .tool
            .strip_prefix("mcp__")
            .and_then(|rest| rest.split_once("__"))
        {
            Some((plugin, tool)) => format!("{plugin}.{tool}"),
            None => self.tool.clone(),
        }
    }

    /// What a person needs to decide, cut to fit a chat message: the Bash
    /// command; the file path, with the start of what a `Write` would put
    /// there or what an `Edit` would replace by what; the URL; else the
    /// input as JSON.
    pub fn summary(&self) -> String {
        let field = |name: &str| self.input.get(name).and_then(Value::as_str);
        let text = match (
            field("command"),
            field("file_path").or(field("path")),
            field("url"),
        ) {
            (Some(command), _, _) => command.to_owned(),
            (None, Some(path), _) => match (field("content"), field("old_string"), field("new_string")) {
                (Some(content), _, _) => format!("{path}\n{}", first_lines(content, 5)),
                (None, Some(old), Some(new)) => {
                    format!(
                        "{path}\nreplace: {}\nwith: {}",
                        first_lines(old, 3),
                        first_lines(new, 3)
                    )
                }
                _ => path.to_owned(),
            },
            (None, None, Some(url)) => url.to_owned(),
            _ => self.input.to_string(),
        };
        cut(&text, MAX_SUMMARY)
    }
}

/// The first `n` lines of `text`, with `…` when there are more.
fn first_lines(text: &str, n: usize) -> String {
    let mut lines: Vec<&str> = text.lines().take(n + 1).collect();
    if lines.len() > n {
        lines[n] = "…";
    }
    lines.join("\n")
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn summary(tool: &str, input: Value) -> String {
        ToolUse {
            tool: tool.into(),
            input,
        }
        .summary()
    }

    #[test]
    fn a_plugin_s_tool_is_shown_by_its_grant_name() {
        let tool = |name: &str| ToolUse {
            tool: name.into(),
            input: json!({}),
        };
        assert_eq!(tool("mcp__crm__create_lead").display_name(), "crm.create_lead");
        assert_eq!(tool("Bash").display_name(), "Bash");
    }

    #[test]
    fn a_summary_shows_what_the_tool_would_do() {
        let bash = json!({"command": "git -C ~/invoices status", "description": "Show status"});
        assert_eq!(summary("Bash", bash), "git -C ~/invoices status");
        let write = json!({"file_path": "/srv/a.txt", "content": "1\n2\n3\n4\n5\n6\n7"});
        assert_eq!(summary("Write", write), "/srv/a.txt\n1\n2\n3\n4\n5\n…");
        let edit = json!({"file_path": "/srv/b.rs", "old_string": "let a = 1;", "new_string": "let a = 2;"});
        assert_eq!(
            summary("Edit", edit),
            "/srv/b.rs\nreplace: let a = 1;\nwith: let a = 2;"
        );
        assert_eq!(
            summary("WebFetch", json!({"url": "https://example.com", "prompt": "x"})),
            "https://example.com"
        );
        assert_eq!(summary("Other", json!({"n": 1})), "{\"n\":1}");
        let long = summary("Bash", json!({"command": "x".repeat(1000)}));
        assert_eq!(long.chars().count(), MAX_SUMMARY);
        assert!(long.ends_with('…'));
    }
}
