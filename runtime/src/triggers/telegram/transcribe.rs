//! Voice notes and audio to text through `[telegram.transcribe]`: a
//! program (whisper.cpp's `whisper-cli` behind a wrapper that converts the
//! Ogg/Opus Telegram sends, or any command that prints the text) given the
//! file's path last, run by the process capability's machinery — no shell,
//! the named environment only, its deadline, its process group killed.

use std::path::Path;

use crate::capabilities::attachments::Attachment;
use crate::capabilities::process;
use crate::config::Transcriber;
use crate::wasm::bindings::chat::mission::plugin::attachments::AttachmentKind;

/// Transcribes each voice note and audio of `attachments` in place; what
/// the user is told of each that could not be.
pub async fn all(transcriber: &Transcriber, attachments: &mut [Attachment]) -> Vec<String> {
    let mut told = Vec::new();
    for attachment in attachments {
        if !matches!(attachment.kind, AttachmentKind::Voice | AttachmentKind::Audio) {
            continue;
        }
        match transcribe(transcriber, &attachment.path).await {
            Ok(text) => attachment.transcript = Some(text),
            Err(e) => {
                tracing::warn!(file = %attachment.path.display(), "transcribing failed: {e}");
                told.push(
                    "I could not make out the voice note (the transcriber failed); please type it."
                        .to_owned(),
                );
            }
        }
    }
    told
}

/// What `transcriber` heard in the audio file at `path`, or why it failed.
async fn transcribe(transcriber: &Transcriber, path: &Path) -> Result<String, String> {
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
            String::from_utf8_lossy(&finished.stderr)
                .trim()
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
}
