//! Example chat plugin: hands each message to Claude, one session per chat
//! (the chat id is the session key, so the bot's `/reset` starts afresh),
//! with the system prompt from config `system`. Config `backend` (`cli`,
//! `persistent` or `api`) and `model` pick how and whom to ask, within the
//! plugin's grant; config `tools` (comma-separated, e.g. `"Read,Bash"`)
//! the tools Claude may use, within the grant's `tools` and `ask_tools`
//! (the host asks in the chat before each use of an `ask_tools` one). When
//! Claude cannot answer, the user is told why. A message's photos and
//! documents go to Claude with it; a voice note the host transcribed is
//! answered like text, and the reply says what was heard. Claude's text is
//! shown in the chat while it is written (`claude::ask_streamed`). A line
//! `[attach: PATH]` in Claude's answer sends the file it wrote at PATH in
//! its working directory with the reply (the system prompt tells it so).

use mission_chat_sdk::mission::plugin::attachments;
use mission_chat_sdk::mission::plugin::claude::{self, Backend, Options};
use mission_chat_sdk::{config_value, conversation, export_chat, CapabilityError, Guest, Message, Reply};

struct Assistant;

impl Guest for Assistant {
    fn handle(message: Message) -> Result<Option<Reply>, String> {
        let backend = match config_value(&message.config, "backend") {
            None => None,
            Some("cli") => Some(Backend::Cli),
            Some("persistent") => Some(Backend::Persistent),
            Some("api") => Some(Backend::Api),
            Some(other) => return Err(format!("config `backend`: unknown backend `{other}`")),
        };
        let system = match config_value(&message.config, "system") {
            Some(system) => format!("{system}\n\n{SENDING_FILES}"),
            None => SENDING_FILES.to_owned(),
        };
        let mut options = Options::new().session_key(conversation(&message)).system(&system);
        if let Some(model) = config_value(&message.config, "model") {
            options = options.model(model);
        }
        if let Some(backend) = backend {
            options = options.backend(backend);
        }
        if let Some(tools) = config_value(&message.config, "tools") {
            options = options.allowed_tools(tools.split(',').map(str::trim).filter(|t| !t.is_empty()));
        }
        // A voice note the host transcribed is read like text; the message's
        // other files (photos, documents) go to Claude with it.
        let files = attachments::files();
        let heard: Vec<String> = files.iter().filter_map(|f| f.transcript.clone()).collect();
        let ids: Vec<u32> = files
            .iter()
            .filter(|f| f.transcript.is_none())
            .map(|f| f.id)
            .collect();
        let prompt = match (message.text.trim().is_empty(), heard.is_empty(), ids.is_empty()) {
            (true, false, _) => heard.join("\n"),
            (false, false, _) => format!("{}\n\n(voice note) {}", message.text, heard.join("\n")),
            (true, true, false) => "(the user sent only the attached files)".to_owned(),
            _ => message.text.clone(),
        };
        let text = match claude::ask_streamed(&prompt, &options, &ids) {
            Ok(answer) => attach_written(&answer.text),
            Err(CapabilityError::OverBudget(budget)) => {
                format!("I can't ask Claude right now: {budget}.")
            }
            Err(CapabilityError::TimedOut) => "Claude took too long to answer; please try again.".into(),
            Err(CapabilityError::Denied(why)) => format!("I'm not allowed to ask Claude: {why}."),
            Err(CapabilityError::Unavailable(why)) => format!("Claude is not available here: {why}."),
            Err(CapabilityError::Failed(why)) => format!("Claude could not answer: {why}"),
        };
        let text = match heard.is_empty() {
            true => text,
            false => format!("🎙 I heard your voice note: “{}”\n\n{text}", heard.join(" ")),
        };
        Ok(Some(Reply {
            text,
            parse_mode: None,
        }))
    }
}

/// What Claude is told about sending files.
const SENDING_FILES: &str = "To send the user a file you wrote, put a line `[attach: PATH]` in your \
answer, PATH relative to your working directory; it is sent after your answer.";

/// `text` without its `[attach: PATH]` lines, each of whose files is sent
/// with the reply; a file that cannot be is named at the end.
fn attach_written(text: &str) -> String {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for line in text.lines() {
        let path = line
            .trim()
            .strip_prefix("[attach:")
            .and_then(|rest| rest.strip_suffix(']'))
            .map(str::trim);
        match path {
            Some(path) => {
                if let Err(e) = attachments::attach_written(path) {
                    refused.push(format!("(I could not send you {path}: {})", describe(&e)));
                }
            }
            None => kept.push(line),
        }
    }
    let mut text = kept.join("\n").trim_end().to_owned();
    for line in refused {
        text.push_str("\n\n");
        text.push_str(&line);
    }
    text
}

fn describe(error: &CapabilityError) -> String {
    match error {
        CapabilityError::Denied(why)
        | CapabilityError::OverBudget(why)
        | CapabilityError::Unavailable(why)
        | CapabilityError::Failed(why) => why.clone(),
        CapabilityError::TimedOut => "it took too long".into(),
    }
}

export_chat!(Assistant);
