//! {{name}}: a tools plugin. Claude may call its tools for the plugins
//! whose Claude grant names it in `tools_from`. `count_words` counts the
//! words of a text and keeps a running total in its private state.

use mission_tools_sdk::mission::plugin::state;
use mission_tools_sdk::{export_tools, Guest, Tool, ToolCall, ToolOutput};

struct Plugin;

impl Guest for Plugin {
    fn tools() -> Vec<Tool> {
        vec![Tool {
            name: "count_words".into(),
            description: "Counts the words of a text.".into(),
            input_schema: r#"{"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}"#
                .into(),
        }]
    }

    fn call(call: ToolCall) -> Result<ToolOutput, String> {
        if call.name != "count_words" {
            return Err(format!("no tool `{}`", call.name));
        }
        // The input is JSON text; a real plugin would parse it with serde_json.
        let text = call.input.split("\"text\"").nth(1).unwrap_or_default();
        let words = text.split_whitespace().count();
        let total = state::get("total")?.and_then(|v| v.parse::<usize>().ok()).unwrap_or(0) + words;
        state::set("total", &total.to_string())?;
        Ok(ToolOutput::Text(format!("{words} words ({total} counted in all)")))
    }
}

export_tools!(Plugin);
