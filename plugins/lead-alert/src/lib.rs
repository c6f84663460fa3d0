//! Example task plugin for a webhook: a lead from a web form or a shop
//! (`POST /hooks/leads` with a JSON body such as `{"name": "Ada",
//! "email": "ada@example.com", "message": "A quote for 40 chairs?"}`) becomes
//! a Telegram message to config `chat` (with the `notify` grant for it).
//! Form fields may also come as `application/x-www-form-urlencoded`.
//! Without `chat` the lead is only logged and summarised in the run record.

use mission_task_sdk::mission::plugin::{event, notify};
use mission_task_sdk::{config_value, export_task, log_info, Guest, Invocation, Outcome};

/// The longest message text sent for one lead.
const MAX_MESSAGE: usize = 1000;

struct LeadAlert;

impl Guest for LeadAlert {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let Some(request) = event::webhook() else {
            return Ok(Outcome {
                summary: "not started by a webhook: no lead to tell".into(),
            });
        };
        let content_type = request
            .headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .map_or("", |(_, value)| value.as_str());
        let lead = Lead::read(content_type, &request.body)?;
        let text = lead.text();
        match config_value(&invocation.config, "chat") {
            Some(chat) => {
                let chat: i64 = chat
                    .parse()
                    .map_err(|_| format!("config `chat`: `{chat}` is not a Telegram chat id"))?;
                notify::send(chat, &text)?;
            }
            None => log_info(&format!("no `chat` configured; the lead: {text}")),
        }
        Ok(Outcome {
            summary: format!("lead from {} (delivery {})", lead.name, request.delivery_id),
        })
    }
}

/// The fields a lead alert tells.
struct Lead {
    name: String,
    email: Option<String>,
    message: String,
}

impl Lead {
    /// Reads a JSON object (whatever the content type says: `curl -d`
    /// calls JSON a form), or else a form, with at least a `name`.
    fn read(content_type: &str, body: &[u8]) -> Result<Lead, String> {
        let fields: Vec<(String, String)> = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(object)) => object
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            _ if content_type.starts_with("application/x-www-form-urlencoded") => form(body),
            Ok(_) => return Err("the body is JSON but not an object".into()),
            Err(e) => return Err(format!("the body is neither a JSON object nor a form: {e}")),
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Ok(Lead {
            name: field("name").ok_or("the lead has no `name`")?,
            email: field("email"),
            message: field("message").unwrap_or_default(),
        })
    }

    fn text(&self) -> String {
        let mut text = format!("New lead: {}", self.name);
        if let Some(email) = &self.email {
            text.push_str(&format!(" <{email}>"));
        }
        if !self.message.is_empty() {
            text.push_str(&format!("\n{}", self.message));
        }
        text.chars().take(MAX_MESSAGE).collect()
    }
}

/// `a=1&b=two+words` as pairs, percent-decoded.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

export_task!(LeadAlert);
