//! Voice notes and audio to text through `[telegram.transcribe]`: either a
//! program (whisper.cpp's `whisper-cli` behind a wrapper that converts the
//! Ogg/Opus Telegram sends, or any command that prints the text) given the
//! file's path last, run by the process capability's machinery — no shell,
//! the named environment only, its deadline, its process group killed —; or
//! an OpenAI-compatible `/v1/audio/transcriptions` endpoint, sent the file
//! as multipart form data by the host's own request path, the key read from
//! the host's environment and never shown to a plugin.

use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;

use crate::capabilities::attachments::Attachment;
use crate::capabilities::http::host_request::{send_from_host, HostRequest};
use crate::capabilities::process;
use crate::config::{TranscribeEndpoint, TranscribeProgram, Transcriber};
use crate::db::Database;
use crate::wasm::bindings::chat::mission::plugin::attachments::AttachmentKind;

/// Transcribes each voice note and audio of `attachments` in place; one
/// that could not be is left out (the plugin, and Claude, would only get
/// sound they cannot hear), and what the user is told of it returned.
pub async fn all(transcriber: &Transcriber, db: &Database, attachments: &mut Vec<Attachment>) -> Vec<String> {
    let mut told = Vec::new();
    let mut unheard = Vec::new();
    for attachment in attachments.iter_mut() {
        if !matches!(attachment.kind, AttachmentKind::Voice | AttachmentKind::Audio) {
            continue;
        }
        let heard = match transcriber {
            Transcriber::Program(program) => run_program(program, &attachment.path).await,
            Transcriber::Endpoint(endpoint) => post_to_endpoint(endpoint, db, attachment).await,
        };
        match heard {
            Ok(text) => attachment.transcript = Some(text),
            Err(e) => {
                tracing::warn!(file = %attachment.path.display(), "transcribing failed: {e}");
                unheard.push(attachment.id);
                told.push(
                    "I could not make out the voice note (the transcriber failed); please type it."
                        .to_owned(),
                );
            }
        }
    }
    attachments.retain(|a| !unheard.contains(&a.id));
    told
}

/// What the program heard in the audio file at `path`, or why it failed.
async fn run_program(transcriber: &TranscribeProgram, path: &Path) -> Result<String, String> {
    let mut args = transcriber.args.clone();
    args.push(path.display().to_string());
    let limits = &transcriber.limits;
    let finished = process::run(limits, &transcriber.program, &args, None, limits.timeout)
        .await
        .map_err(|e| format!("cannot run {}: {e}", transcriber.program.display()))?;
    let stdout = String::from_utf8_lossy(&finished.stdout).trim().to_owned();
    match (finished.timed_out, finished.exit_code) {
        (true, _) => Err(format!("it ran past its {:?}", limits.timeout)),
        (false, Some(0)) if !stdout.is_empty() => Ok(stdout),
        (false, Some(0)) => Err("it printed nothing".into()),
        (false, code) => Err(format!(
            "it exited {}: {}",
            code.map_or("on a signal".into(), |c| c.to_string()),
            excerpt(&finished.stderr)
        )),
    }
}

/// The endpoint's answer: `response_format = json`.
#[derive(Deserialize)]
struct Transcription {
    text: String,
}

/// What the endpoint heard in `attachment`, or why it failed.
async fn post_to_endpoint(
    endpoint: &TranscribeEndpoint,
    db: &Database,
    attachment: &Attachment,
) -> Result<String, String> {
    let mut headers = Vec::new();
    if let Some(key_env) = &endpoint.key_env {
        let key = std::env::var(key_env)
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("telegram.transcribe.key_env: `{key_env}` is not set"))?;
        let value = http::HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
            format!("telegram.transcribe.key_env: `{key_env}` holds a character a header cannot")
        })?;
        headers.push((http::header::AUTHORIZATION, value));
    }
    let audio = tokio::fs::read(&attachment.path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", attachment.path.display()))?;
    let form = Form::new()
        .field("model", endpoint.model.as_bytes(), None)
        .field("response_format", b"json", None)
        .field(
            "file",
            &audio,
            Some((&file_name_of(attachment), &attachment.mime_type)),
        );
    let content_type = http::HeaderValue::try_from(form.content_type()).expect("an ASCII boundary");
    headers.push((http::header::CONTENT_TYPE, content_type));
    let request = HostRequest {
        method: http::Method::POST,
        url: &endpoint.url,
        headers,
        body: form.finish(),
        timeout: endpoint.timeout,
    };
    let response = send_from_host(db, request).await?;
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "{} answered {}: {}",
            endpoint.url,
            response.status,
            excerpt(&response.body)
        ));
    }
    let heard: Transcription = serde_json::from_slice(&response.body).map_err(|e| {
        format!(
            "{} answered what is not {{\"text\": ...}} ({e}): {}",
            endpoint.url,
            excerpt(&response.body)
        )
    })?;
    match heard.text.trim() {
        "" => Err(format!("{} heard nothing", endpoint.url)),
        text => Ok(text.to_owned()),
    }
}

/// The file name sent with the audio: the endpoint tells the format by its
/// extension (a voice note is Ogg/Opus and comes without a name).
fn file_name_of(attachment: &Attachment) -> String {
    match &attachment.file_name {
        Some(name) => name.replace(['"', '\r', '\n'], "_"),
        None if attachment.mime_type == "audio/ogg" => "voice.ogg".to_owned(),
        None => format!(
            "audio.{}",
            attachment.mime_type.rsplit('/').next().unwrap_or("bin")
        ),
    }
}

/// The start of an error text, on one line.
fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim()
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A `multipart/form-data` body (RFC 7578), built in memory.
struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    fn new() -> Form {
        let boundary = format!(
            "mission-control-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        Form {
            boundary,
            body: Vec::new(),
        }
    }

    /// Adds field `name` holding `value`, as a file if `file` names it and
    /// its MIME type.
    fn field(mut self, name: &str, value: &[u8], file: Option<(&str, &str)>) -> Form {
        let head = match file {
            Some((file_name, mime_type)) => format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {mime_type}\r\n\r\n",
                self.boundary
            ),
            None => format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n",
                self.boundary
            ),
        };
        self.body.extend_from_slice(head.as_bytes());
        self.body.extend_from_slice(value);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    fn finish(mut self) -> Bytes {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        Bytes::from(self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_holds_each_field_between_boundaries_and_the_file_with_its_name_and_type() {
        let form = Form::new().field("model", b"whisper-1", None).field(
            "file",
            b"OggS\x00\x01",
            Some(("voice.ogg", "audio/ogg")),
        );
        let boundary = form.boundary.clone();
        assert_eq!(
            form.content_type(),
            format!("multipart/form-data; boundary={boundary}")
        );
        let body = form.finish();
        let mut expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"voice.ogg\"\r\nContent-Type: audio/ogg\r\n\r\n"
        )
        .into_bytes();
        expected.extend_from_slice(b"OggS\x00\x01\r\n");
        expected.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        assert_eq!(body.as_ref(), expected.as_slice());
    }

    #[test]
    fn a_nameless_voice_note_is_sent_as_ogg_and_a_quote_cannot_end_the_file_name() {
        let mut attachment = Attachment {
            id: 1,
            kind: AttachmentKind::Voice,
            mime_type: "audio/ogg".into(),
            file_name: None,
            size: 3,
            transcript: None,
            path: "/tmp/x".into(),
        };
        assert_eq!(file_name_of(&attachment), "voice.ogg");
        attachment.mime_type = "audio/mpeg".into();
        assert_eq!(file_name_of(&attachment), "audio.mpeg");
        attachment.file_name = Some("a\"b\r\n.mp3".into());
        assert_eq!(file_name_of(&attachment), "a_b__.mp3");
    }
}
