//! contacts: Claude's tools over a small contacts-and-leads JSON API — find
//! a contact, add a lead. The API's base URL is config `api`; its key is
//! never here: the host adds it to requests for that origin (a secret of
//! the plugin's `[plugins.NAME.http]` grant), which is also the only
//! origin the plugin can reach.
//!
//! The API: `GET {api}/contacts?q=NAME` answers `{"contacts": [...]}`;
//! `POST {api}/leads` with `{"name", "email", "note"}` answers the lead it
//! made.

use mission_tools_sdk::http::{self, Method, Request};
use mission_tools_sdk::{config_value, export_tools, log_info, Guest, Tool, ToolCall, ToolOutput};
use serde_json::{json, Value};

struct Contacts;

impl Guest for Contacts {
    fn tools() -> Vec<Tool> {
        vec![
            Tool {
                name: "find_contact".into(),
                description: "Find customers and contacts by name, part of a name or company. \
                              Answers each match with its email, company, plan and notes."
                    .into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {"name": {"type": "string", "description": "What to look for"}},
                    "required": ["name"]
                })
                .to_string(),
            },
            Tool {
                name: "add_lead".into(),
                description: "Record a new sales lead: a person who asked about buying.".into(),
                input_schema: json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "note": {"type": "string", "description": "What they asked about"}
                    },
                    "required": ["name", "email"]
                })
                .to_string(),
            },
        ]
    }

    fn call(call: ToolCall) -> Result<ToolOutput, String> {
        let api = config_value(&call.config, "api").ok_or("config `api` (the API's base URL) is not set")?;
        let api = api.trim_end_matches('/');
        let input: Value =
            serde_json::from_str(&call.input).map_err(|e| format!("the input is not JSON: {e}"))?;
        let text = |field: &str| input[field].as_str().unwrap_or_default().trim().to_owned();
        let response = match call.name.as_str() {
            "find_contact" => {
                let name = text("name");
                if name.is_empty() {
                    return Err("give `name`: what to look for".into());
                }
                http::get(&format!("{api}/contacts?q={}", query_escape(&name)))?
            }
            "add_lead" => {
                let (name, email) = (text("name"), text("email"));
                if name.is_empty() || !email.contains('@') {
                    return Err("give the lead's `name` and a valid `email`".into());
                }
                let body = json!({"name": name, "email": email, "note": text("note")}).to_string();
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(format!("{api}/leads"))
                    .header("content-type", "application/json")
                    .body(body.into_bytes())
                    .map_err(|e| e.to_string())?;
                log_info(&format!("adding lead {name}"));
                http::send(request)?
            }
            other => return Err(format!("no tool `{other}`")),
        };
        let body = response.text()?;
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "the contacts API answered {}: {}",
                response.status,
                body.trim()
            ));
        }
        Ok(ToolOutput::Json(body.to_owned()))
    }
}

/// `text` for a URL's query: unreserved characters as they are, the rest
/// percent-encoded.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

export_tools!(Contacts);
