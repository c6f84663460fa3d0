//! `mission:plugin/attachments`: the files of the chat message being
//! answered, downloaded by the bot before the call (see the Telegram
//! trigger). Listing needs no grant — a call sees only its own message's
//! files —; reading the bytes needs the `attachments` grant and stops at
//! its `max_bytes`.

use std::path::PathBuf;

use super::{reply_files, Capabilities};
use crate::config::Grant;
use crate::os::regular_file;
use crate::wasm::bindings::chat::mission::plugin::attachments::{
    Attachment as WitAttachment, AttachmentKind, Host,
};
use crate::wasm::bindings::CapabilityError;

/// One file of the message, as the host keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// Its id within the message.
    pub id: u32,
    /// What Telegram says it is.
    pub kind: AttachmentKind,
    /// Its MIME type.
    pub mime_type: String,
    /// Its file name, if the sender's app gave one.
    pub file_name: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// What a voice note or audio says, if transcribed.
    pub transcript: Option<String>,
    /// Where the host keeps it.
    pub path: PathBuf,
}

impl Capabilities {
    /// The message's attachments with `ids`, or the `denied` error naming
    /// one that is not among them.
    pub(crate) fn attachments(&self, ids: &[u32]) -> Result<Vec<Attachment>, CapabilityError> {
        ids.iter()
            .map(|id| {
                self.context
                    .io
                    .attachments
                    .iter()
                    .find(|a| a.id == *id)
                    .cloned()
                    .ok_or_else(|| {
                        CapabilityError::Denied(format!("attachment {id} is not one of this message's"))
                    })
            })
            .collect()
    }
}

impl Host for Capabilities {
    async fn files(&mut self) -> wasmtime::Result<Vec<WitAttachment>> {
        Ok(self
            .context
            .io
            .attachments
            .iter()
            .map(|a| WitAttachment {
                id: a.id,
                kind: a.kind,
                mime_type: a.mime_type.clone(),
                file_name: a.file_name.clone(),
                size: a.size,
                transcript: a.transcript.clone(),
            })
            .collect())
    }

    async fn read(&mut self, id: u32) -> wasmtime::Result<Result<Vec<u8>, CapabilityError>> {
        if let Err(denied) = self.check(Grant::Attachments) {
            return Ok(Err(denied));
        }
        let attachment = match self.attachments(&[id]) {
            Ok(mut found) => found.remove(0),
            Err(denied) => return Ok(Err(denied)),
        };
        if attachment.size > self.config.attachment_bytes {
            return Ok(Err(CapabilityError::OverBudget(format!(
                "attachment {id} has {} bytes; plugins.{}.attachments.max_bytes allows {}",
                attachment.size, self.config.name, self.config.attachment_bytes
            ))));
        }
        let path = attachment.path.clone();
        let cap = self.config.attachment_bytes;
        let read = tokio::task::spawn_blocking(move || regular_file::read(&path, cap)).await?;
        Ok(read.map_err(|e| {
            self.failed(
                "reading the attachment",
                anyhow::anyhow!("{}: {e}", attachment.path.display()),
            )
        }))
    }

    async fn attach(
        &mut self,
        file_name: String,
        mime_type: String,
        contents: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CapabilityError>> {
        let reply_files = match self.reply_files() {
            Ok(reply_files) => reply_files,
            Err(e) => return Ok(Err(e)),
        };
        let cap = self.config.attachment_bytes;
        Ok(
            tokio::task::spawn_blocking(move || reply_files.add(&file_name, &mime_type, &contents, cap))
                .await?,
        )
    }

    async fn attach_written(&mut self, path: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        let reply_files = match self.reply_files() {
            Ok(reply_files) => reply_files,
            Err(e) => return Ok(Err(e)),
        };
        let Some(workdir) = self.services.claude.workdir() else {
            return Ok(Err(CapabilityError::Unavailable(
                "no [claude] section in mission.toml, so no working directory".into(),
            )));
        };
        let cap = self.config.attachment_bytes;
        let attached = tokio::task::spawn_blocking(move || {
            let contents = reply_files::read_written(&workdir, &path, cap)?;
            reply_files.add(&path, reply_files::mime_type_of(&path), &contents, cap)
        })
        .await?;
        if let Err(e) = &attached {
            tracing::warn!(plugin = %self.config.name, "attaching a file Claude wrote failed: {e}");
        }
        Ok(attached)
    }
}

impl Capabilities {
    /// Where this call's reply files go, once the grant is checked.
    fn reply_files(&self) -> Result<reply_files::ReplyFiles, CapabilityError> {
        self.check(Grant::Attachments)?;
        self.context
            .io
            .reply_files
            .clone()
            .ok_or_else(|| CapabilityError::Unavailable("this call's reply cannot carry files".into()))
    }
}
