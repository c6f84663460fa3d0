//! A fake Telegram Bot API server on 127.0.0.1 that speaks the real JSON
//! (../shared/reference/telegram.md): `getUpdates` long polls with offsets
//! (an update is kept until a later offset confirms it), `sendMessage` (with
//! inline keyboards), `editMessageText`, `answerCallbackQuery`,
//! `sendChatAction`, `getMe`, `getFile` and the file download
//! (`/file/bot<token>/<path>`) for the files of messages it was given,
//! `sendDocument` and `sendPhoto` (multipart uploads), `sendMessageDraft`
//! (private chats only, a non-zero `draft_id`) and `deleteMessage`; HTML
//! text is checked as Telegram checks it;
//! presses of inline buttons arrive as
//! `callback_query` updates; and it can be told to fail the next call of a
//! method with a given status and body (429 with `retry_after`, 5xx).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;

/// A file for [`FakeTelegram::send_file`].
pub struct FakeFile<'a> {
    /// Its name (documents).
    pub name: &'a str,
    /// Its MIME type (documents and voice notes).
    pub mime_type: &'a str,
    /// Its bytes, as text.
    pub contents: &'a str,
    /// The message's caption.
    pub caption: Option<&'a str>,
    /// The size Telegram states, if not the contents' length.
    pub size: Option<u64>,
}

impl<'a> FakeFile<'a> {
    /// A voice note whose "recording" is `contents`.
    pub fn voice(contents: &'a str) -> FakeFile<'a> {
        FakeFile {
            name: "",
            mime_type: "audio/ogg",
            contents,
            caption: None,
            size: None,
        }
    }
}

impl FakeFile<'static> {
    /// A small text document, `notes.txt` (12 bytes), captioned "files".
    pub fn notes() -> FakeFile<'static> {
        FakeFile {
            name: "notes.txt",
            mime_type: "text/plain",
            contents: "hello, files",
            caption: Some("files"),
            size: None,
        }
    }
}

/// One call the bot made (`getUpdates` only when it was made to fail).
#[derive(Debug, Clone)]
pub struct Call {
    /// `sendMessage` or `sendChatAction`.
    pub method: String,
    /// The chat it was for.
    pub chat_id: i64,
    /// The text, for `sendMessage` and `editMessageText`.
    pub text: Option<String>,
    /// Its `parse_mode`, if any (`HTML`, `MarkdownV2`).
    pub parse_mode: Option<String>,
    /// The message sent or edited.
    pub message_id: Option<i64>,
    /// The inline buttons sent, as (label, callback data).
    pub buttons: Vec<(String, String)>,
    /// The press answered, for `answerCallbackQuery`.
    pub callback_query_id: Option<String>,
    /// The `draft_id`, for `sendMessageDraft`.
    pub draft_id: Option<i64>,
    /// The file uploaded (`sendDocument`, `sendPhoto`): its name and bytes.
    pub file: Option<(String, Vec<u8>)>,
    /// Whether the fake answered it with an injected failure.
    pub failed: bool,
    /// When it arrived.
    pub at: Instant,
}

impl Call {
    /// The callback data of the button labelled `label`.
    pub fn button(&self, label: &str) -> String {
        self.buttons
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no `{label}` button: {:?}", self.buttons))
            .1
            .clone()
    }
}

#[derive(Default)]
struct State {
    next_update_id: i64,
    pending: Vec<Value>,
    calls: Vec<Call>,
    failures: VecDeque<(String, u16, Value)>,
    next_message_id: i64,
    /// The update kinds the last `getUpdates` asked for (Telegram keeps
    /// the others from the bot); none: all.
    allowed_updates: Option<Vec<String>>,
    /// The files of messages sent, by file id: their path and contents.
    files: std::collections::HashMap<String, (String, String)>,
}

/// The fake server; it stops with the test process.
pub struct FakeTelegram {
    /// Its base URL, for `[telegram] api_url`.
    pub url: String,
    state: Arc<Mutex<State>>,
    arrived: Arc<Notify>,
    /// Signalled on every call recorded, for the waits below.
    recorded: Arc<Condvar>,
}

impl FakeTelegram {
    /// Starts the server on a free loopback port.
    pub fn start() -> FakeTelegram {
        let state = Arc::new(Mutex::new(State {
            next_update_id: 5000,
            next_message_id: 1,
            ..State::default()
        }));
        let arrived = Arc::new(Notify::new());
        let recorded = Arc::new(Condvar::new());
        let (server_state, server_arrived, server_recorded) =
            (state.clone(), arrived.clone(), recorded.clone());
        let url = crate::loopback::serve(move |request| {
            let (state, arrived, recorded) = (
                server_state.clone(),
                server_arrived.clone(),
                server_recorded.clone(),
            );
            async move {
                let response = respond(request, &state, &arrived).await;
                recorded.notify_all();
                response
            }
        });
        FakeTelegram {
            url,
            state,
            arrived,
            recorded,
        }
    }

    /// Queues a private text message from `user` in `chat`; returns its
    /// update id.
    pub fn send_text(&self, chat: i64, user: u64, text: &str) -> i64 {
        let mut state = self.state.lock().unwrap();
        state.next_update_id += 1;
        let id = state.next_update_id;
        let now = chrono::Utc::now().timestamp();
        state.pending.push(json!({
            "update_id": id,
            "message": {
                "message_id": id, "date": now, "text": text,
                "chat": chat_object(chat, &format!("User{user}")),
                "from": {"id": user, "is_bot": false, "first_name": format!("User{user}"), "language_code": "en"}
            }
        }));
        drop(state);
        self.arrived.notify_waiters();
        id
    }

    /// Queues a message from `user` in `chat` carrying a file of `kind`
    /// (`photo`, `document`, `voice`), as Telegram sends one: its caption,
    /// and the file's `contents` behind `getFile`. `size` is what Telegram
    /// says it has (a file over 20 MB is refused before any download).
    pub fn send_file(&self, chat: i64, user: u64, kind: &str, file: FakeFile<'_>) -> i64 {
        let mut state = self.state.lock().unwrap();
        state.next_update_id += 1;
        let id = state.next_update_id;
        let file_id = format!("file-{id}");
        let size = file.size.unwrap_or(file.contents.len() as u64);
        let path = format!("{kind}s/file_{id}");
        state
            .files
            .insert(file_id.clone(), (path, file.contents.to_owned()));
        let meta = json!({"file_id": file_id, "file_unique_id": format!("u{id}"), "file_size": size});
        let mut message = json!({
            "message_id": id, "date": chrono::Utc::now().timestamp(),
            "chat": {"id": chat, "type": "private", "first_name": format!("User{user}")},
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}"), "language_code": "en"}
        });
        let mut object = meta.clone();
        match kind {
            "photo" => {
                object["width"] = json!(640);
                object["height"] = json!(480);
                message["photo"] = json!([{"file_id": format!("{file_id}-small"), "file_unique_id": "s",
                    "file_size": 10, "width": 90, "height": 67}, object]);
            }
            "voice" => {
                object["duration"] = json!(3);
                object["mime_type"] = json!(file.mime_type);
                message["voice"] = object;
            }
            _ => {
                object["mime_type"] = json!(file.mime_type);
                object["file_name"] = json!(file.name);
                message[kind] = object;
            }
        }
        if let Some(caption) = file.caption {
            message["caption"] = json!(caption);
        }
        state.pending.push(json!({"update_id": id, "message": message}));
        drop(state);
        self.arrived.notify_waiters();
        id
    }

    /// Queues `update` as it is (with the next update id), for updates the
    /// bot's library may not read.
    pub fn send_raw(&self, mut update: Value) {
        let mut state = self.state.lock().unwrap();
        state.next_update_id += 1;
        update["update_id"] = json!(state.next_update_id);
        state.pending.push(update);
        drop(state);
        self.arrived.notify_waiters();
    }

    /// Queues a press by `user` of the button with `data` under `message`
    /// in `chat`; returns the callback query's id.
    pub fn press(&self, chat: i64, user: u64, message: i64, data: &str) -> String {
        let mut state = self.state.lock().unwrap();
        state.next_update_id += 1;
        let id = state.next_update_id;
        let callback_id = format!("cb{id}");
        let now = chrono::Utc::now().timestamp();
        state.pending.push(json!({
            "update_id": id,
            "callback_query": {
                "id": callback_id,
                "from": {"id": user, "is_bot": false, "first_name": format!("User{user}"), "language_code": "en"},
                "message": {
                    "message_id": message, "date": now, "text": "prompt",
                    "chat": {"id": chat, "type": "private", "first_name": "User"},
                    "from": {"id": 42, "is_bot": true, "first_name": "Bot", "username": "test_bot"}
                },
                "chat_instance": format!("{}", -chat),
                "data": data
            }
        }));
        drop(state);
        self.arrived.notify_waiters();
        callback_id
    }

    /// Waits (up to 30 s) until `chat` has received `count` messages with
    /// inline buttons; returns them all.
    pub fn wait_for_prompts(&self, chat: i64, count: usize) -> Vec<Call> {
        let prompts = |calls: &[Call]| -> Vec<Call> {
            calls
                .iter()
                .filter(|c| {
                    c.method == "sendMessage" && c.chat_id == chat && !c.buttons.is_empty() && !c.failed
                })
                .cloned()
                .collect()
        };
        let waited = self.wait_until(|state| prompts(&state.calls).len() >= count);
        assert!(
            waited,
            "chat {chat} got fewer than {count} prompts: {:#?}",
            self.calls()
        );
        prompts(&self.calls())
    }

    /// Waits (up to 30 s) for a call matching `wanted`, and returns the first.
    pub fn wait_for(&self, wanted: impl Fn(&Call) -> bool) -> Call {
        let waited = self.wait_until(|state| state.calls.iter().any(&wanted));
        assert!(waited, "no such call: {:#?}", self.calls());
        self.calls().into_iter().find(wanted).unwrap()
    }

    /// The calls of `method` in `chat` that it answered, in order.
    pub fn calls_of(&self, method: &str, chat: i64) -> Vec<Call> {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|c| c.method == method && c.chat_id == chat && !c.failed)
            .cloned()
            .collect()
    }

    /// Makes the next call of `method` fail with `status` and `body`.
    pub fn fail_next(&self, method: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .failures
            .push_back((method.to_owned(), status, body));
    }

    /// Every send call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The texts delivered to `chat` so far, in order.
    pub fn messages(&self, chat: i64) -> Vec<String> {
        messages_in(&self.state.lock().unwrap().calls, chat)
    }

    /// The texts sent to `chat` so far, with or without buttons, in order.
    pub fn texts(&self, chat: i64) -> Vec<String> {
        texts_in(&self.state.lock().unwrap().calls, chat)
    }

    /// Waits (up to 30 s) until `chat` has received `count` texts, with or
    /// without buttons.
    pub fn wait_for_texts(&self, chat: i64, count: usize) -> Vec<String> {
        let mut texts = Vec::new();
        let waited = self.wait_until(|state| {
            texts = texts_in(&state.calls, chat);
            texts.len() >= count
        });
        assert!(waited, "chat {chat} got {texts:?}, expected {count} texts");
        texts
    }

    /// Waits (up to 30 s) until `chat` has received `count` messages.
    pub fn wait_for_messages(&self, chat: i64, count: usize) -> Vec<String> {
        let mut messages = Vec::new();
        let waited = self.wait_until(|state| {
            messages = messages_in(&state.calls, chat);
            messages.len() >= count
        });
        assert!(waited, "chat {chat} got {messages:?}, expected {count} messages");
        messages
    }

    /// Waits (up to 30 s) for a call of `method` for `chat`.
    pub fn wait_for_call(&self, method: &str, chat: i64) {
        let waited = self.wait_until(|state| {
            state
                .calls
                .iter()
                .any(|c| c.method == method && c.chat_id == chat)
        });
        assert!(waited, "no {method} for chat {chat}: {:#?}", self.calls());
    }

    /// Waits (up to 30 s) until `done` says yes of the state so far, woken
    /// by each call as it is recorded; whether it did.
    fn wait_until(&self, mut done: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut state = self.state.lock().unwrap();
        while !done(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.recorded.wait_timeout(state, left).unwrap().0;
        }
        true
    }

    /// Waits (up to 30 s) until every queued update has been confirmed by a
    /// later offset: the bot confirms on its next poll, which may come after
    /// the reply; whether they were.
    pub fn wait_all_confirmed(&self) -> bool {
        self.wait_until(|state| state.pending.is_empty())
    }
}

/// The texts delivered to `chat` among `calls`, in order (those with
/// inline buttons, prompts, left out).
impl Call {
    /// Its text as the person reads it in the app: for `parse_mode` HTML,
    /// the tags dropped and the entities read (the raw text is `text`).
    pub fn as_read(&self) -> Option<String> {
        let text = self.text.as_deref()?;
        if self.parse_mode.as_deref() != Some("HTML") {
            return Some(text.to_owned());
        }
        let mut read = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            read.push_str(&rest[..open]);
            rest = rest[open..]
                .find('>')
                .map_or("", |close| &rest[open + close + 1..]);
        }
        read.push_str(rest);
        Some(
            read.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&"),
        )
    }
}

fn texts_in(calls: &[Call], chat: i64) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "sendMessage" && c.chat_id == chat && !c.failed)
        .filter_map(Call::as_read)
        .collect()
}

fn messages_in(calls: &[Call], chat: i64) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "sendMessage" && c.chat_id == chat && !c.failed && c.buttons.is_empty())
        .filter_map(Call::as_read)
        .collect()
}

async fn respond(request: crate::loopback::Request, state: &Mutex<State>, arrived: &Notify) -> String {
    // teloxide writes method names capitalised (`GetUpdates`); Telegram
    // matches them case-insensitively.
    if let Some(rest) = request.path().strip_prefix("/file/bot") {
        // A download: `/file/bot<token>/<file_path>`.
        // teloxide sends the file path as one segment, its `/` escaped.
        let path = rest
            .split_once('/')
            .map_or("", |(_, path)| path)
            .replace("%2F", "/");
        let state = state.lock().unwrap();
        return match state.files.values().find(|(p, _)| *p == path) {
            Some((_, contents)) => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{contents}",
                contents.len()
            ),
            None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
    }
    let method = canonical(request.path().rsplit('/').next().unwrap_or_default());
    let body: Value = match request.header("content-type") {
        Some(kind) if kind.starts_with("multipart/form-data") => form(kind, &request.body),
        _ => serde_json::from_slice(&request.body).unwrap_or(Value::Null),
    };
    let (status, response) = answer(&method, &body, state, arrived).await;
    let response = response.to_string();
    let reason = if status == 200 { "OK" } else { "Error" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{response}",
        response.len()
    )
}

/// The record of a call of `method` with `body`.
fn call(method: &str, body: &Value) -> Call {
    let buttons = body["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .map(|b| {
            let text = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
            (text("text"), text("callback_data"))
        })
        .collect();
    let file = ["document", "photo"].iter().find_map(|field| {
        let part = &body[*field];
        let name = part["file_name"].as_str()?.to_owned();
        let bytes = part["bytes"]
            .as_array()?
            .iter()
            .map(|b| b.as_u64().unwrap_or(0) as u8)
            .collect();
        Some((name, bytes))
    });
    Call {
        method: method.to_owned(),
        draft_id: body["draft_id"].as_i64(),
        file,
        chat_id: body["chat_id"].as_i64().unwrap_or_default(),
        text: body["text"].as_str().map(str::to_owned),
        parse_mode: body["parse_mode"].as_str().map(str::to_owned),
        message_id: body["message_id"].as_i64(),
        buttons,
        callback_query_id: body["callback_query_id"].as_str().map(str::to_owned),
        failed: false,
        at: Instant::now(),
    }
}

/// Why Telegram would refuse `text` as HTML: a tag it does not know, one
/// left open or closed out of turn, or an `&` that starts no entity.
fn html_error(text: &str) -> Option<String> {
    const TAGS: [&str; 16] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "span",
        "tg-emoji",
    ];
    let mut open = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['<', '&']) {
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix('&') {
            if !["lt;", "gt;", "amp;", "quot;"]
                .iter()
                .any(|e| after.starts_with(e))
            {
                let shown: String = tail.chars().take(8).collect();
                return Some(format!("unsupported entity at \"{shown}\""));
            }
            rest = after;
            continue;
        }
        let end = tail.find('>')?;
        let tag = &tail[1..end];
        match tag.strip_prefix('/') {
            Some(name) => {
                if open.pop() != Some(name.to_owned()) {
                    return Some(format!("unexpected end tag \"{name}\""));
                }
            }
            None => {
                let name = tag.split_whitespace().next().unwrap_or_default().to_owned();
                if !TAGS.contains(&name.as_str()) {
                    return Some(format!("unsupported start tag \"{name}\""));
                }
                open.push(name);
            }
        }
        rest = &tail[end + 1..];
    }
    open.pop()
        .map(|name| format!("can't find end tag corresponding to start tag \"{name}\""))
}

/// A `multipart/form-data` body as JSON: a text field as its value (a
/// number if it reads as one), a file as `{file_name, bytes}`, under the
/// field that names it.
fn form(content_type: &str, body: &[u8]) -> Value {
    let Some(boundary) = content_type.split("boundary=").nth(1) else {
        return Value::Null;
    };
    let boundary = format!("--{}", boundary.trim_matches('"'));
    let mut fields = serde_json::Map::new();
    let mut rest = body;
    while let Some(start) = find(rest, boundary.as_bytes()) {
        rest = &rest[start + boundary.len()..];
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{boundary}").as_bytes()).unwrap_or(content.len());
        let value = &content[..end];
        let attribute = |name: &str| {
            let key = format!("{name}=\"");
            head.split(&key)
                .nth(1)
                .and_then(|v| v.split('"').next())
                .map(str::to_owned)
        };
        if let Some(name) = attribute("name") {
            let field = match attribute("filename") {
                Some(file_name) => json!({"file_name": file_name, "bytes": value}),
                None => {
                    let text = String::from_utf8_lossy(value).to_string();
                    text.parse::<i64>().map_or_else(|_| json!(text), |n| json!(n))
                }
            };
            fields.insert(name, field);
        }
        rest = &content[end..];
    }
    // A field `attach://NAME` is the file in the part NAME (how teloxide,
    // like the Bot API's docs, sends an upload).
    let named: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.strip_prefix("attach://")?.to_owned())))
        .collect();
    for (field, part) in named {
        if let Some(file) = fields.remove(&part) {
            fields.insert(field, file);
        }
    }
    Value::Object(fields)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A Chat object for `id`: a group for a negative id, else a private chat.
fn chat_object(id: i64, name: &str) -> Value {
    match id < 0 {
        true => json!({"id": id, "type": "group", "title": "Team"}),
        false => json!({"id": id, "type": "private", "first_name": name}),
    }
}

fn canonical(method: &str) -> String {
    let known = [
        "getUpdates",
        "getMe",
        "sendMessage",
        "sendChatAction",
        "editMessageText",
        "answerCallbackQuery",
        "getWebhookInfo",
        "getFile",
        "sendMessageDraft",
        "deleteMessage",
        "sendDocument",
        "sendPhoto",
    ];
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_owned(), |k| (*k).to_owned())
}

async fn answer(method: &str, body: &Value, state: &Mutex<State>, arrived: &Notify) -> (u16, Value) {
    {
        let mut state = state.lock().unwrap();
        if let Some(index) = state.failures.iter().position(|(m, _, _)| m == method) {
            let (_, status, failure) = state.failures.remove(index).unwrap();
            state.calls.push(Call {
                failed: true,
                ..call(method, body)
            });
            return (status, failure);
        }
    }
    if method == "getUpdates" {
        if let Some(kinds) = body["allowed_updates"].as_array() {
            let kinds = kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
            state.lock().unwrap().allowed_updates = Some(kinds);
        }
        let offset = body["offset"].as_i64().unwrap_or(0);
        let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(10));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = arrived.notified();
            {
                let mut state = state.lock().unwrap();
                // Telegram drops what the bot did not ask for.
                let allowed = state.allowed_updates.clone();
                state.pending.retain(|u| {
                    u["update_id"].as_i64().unwrap() >= offset
                        && allowed
                            .as_ref()
                            .is_none_or(|kinds| kinds.iter().any(|k| u.get(k).is_some()))
                });
                if !state.pending.is_empty() {
                    return (200, json!({"ok": true, "result": state.pending.clone()}));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return (200, json!({"ok": true, "result": []}));
            }
        }
    }
    let mut state = state.lock().unwrap();
    let chat_id = body["chat_id"].as_i64().unwrap_or_default();
    let text = body["text"].as_str().map(str::to_owned);
    match method {
        "getMe" => (
            200,
            json!({"ok": true, "result": {"id": 42, "is_bot": true, "first_name": "Bot", "username": "test_bot",
                "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
                "has_main_web_app": false}}),
        ),
        "getFile" => {
            state.calls.push(call(method, body));
            let file_id = body["file_id"].as_str().unwrap_or_default();
            match state.files.get(file_id) {
                Some((path, contents)) => (
                    200,
                    json!({"ok": true, "result": {"file_id": file_id, "file_unique_id": "u",
                        "file_size": contents.len(), "file_path": path}}),
                ),
                None => (
                    400,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                ),
            }
        }
        "sendChatAction" | "answerCallbackQuery" => {
            state.calls.push(call(method, body));
            (200, json!({"ok": true, "result": true}))
        }
        "sendMessageDraft" | "editMessageText" | "sendMessage"
            if body["parse_mode"] == "HTML" && html_error(text.as_deref().unwrap_or_default()).is_some() =>
        {
            let error = html_error(text.as_deref().unwrap_or_default()).unwrap();
            state.calls.push(Call {
                failed: true,
                ..call(method, body)
            });
            (
                400,
                json!({"ok": false, "error_code": 400, "description": format!("Bad Request: can't parse entities: {error}")}),
            )
        }
        "sendMessageDraft" if chat_id <= 0 || body["draft_id"].as_i64().unwrap_or(0) == 0 => {
            state.calls.push(Call {
                failed: true,
                ..call(method, body)
            });
            (
                400,
                json!({"ok": false, "error_code": 400, "description": "Bad Request: drafts can be sent only to private chats, with a non-zero draft_id"}),
            )
        }
        "sendMessageDraft" | "deleteMessage" => {
            state.calls.push(call(method, body));
            (200, json!({"ok": true, "result": true}))
        }
        "sendDocument" | "sendPhoto" => {
            state.next_message_id += 1;
            let message_id = state.next_message_id;
            let recorded = Call {
                message_id: Some(message_id),
                ..call(method, body)
            };
            let (name, size) = recorded
                .file
                .as_ref()
                .map(|(name, bytes)| (name.clone(), bytes.len()))
                .unwrap_or_default();
            state.calls.push(recorded);
            let date = chrono::Utc::now().timestamp();
            let file =
                json!({"file_id": format!("sent-{message_id}"), "file_unique_id": "s", "file_size": size});
            let mut result =
                json!({"message_id": message_id, "date": date, "chat": chat_object(chat_id, "User")});
            match method {
                "sendPhoto" => {
                    result["photo"] = json!([{"width": 1, "height": 1, "file_id": file["file_id"],
                    "file_unique_id": "s", "file_size": size}])
                }
                _ => {
                    let mut document = file;
                    document["file_name"] = json!(name);
                    result["document"] = document;
                }
            }
            (200, json!({"ok": true, "result": result}))
        }
        "editMessageText" => {
            state.calls.push(call(method, body));
            let date = chrono::Utc::now().timestamp();
            (
                200,
                json!({"ok": true, "result": {"message_id": body["message_id"], "date": date, "text": text,
                    "chat": chat_object(chat_id, "User")}}),
            )
        }
        "sendMessage" => {
            state.next_message_id += 1;
            let message_id = state.next_message_id;
            state.calls.push(Call {
                message_id: Some(message_id),
                ..call(method, body)
            });
            let date = chrono::Utc::now().timestamp();
            (
                200,
                json!({"ok": true, "result": {"message_id": message_id, "date": date, "text": text,
                    "chat": chat_object(chat_id, "User")}}),
            )
        }
        _ => (
            404,
            json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}),
        ),
    }
}
