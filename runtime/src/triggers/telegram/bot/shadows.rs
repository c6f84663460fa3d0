//! The shadow handlers: each message the live handler answered, handed to
//! every shadow in a queue of its own per chat, after the live reply; what
//! they were owed at a restart handed on first.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::message::chat_message;
use super::TelegramBot;
use crate::capabilities::attachments::Attachment;
use crate::config::PluginName;
use crate::plugin::call::{HandlerRole, Message};
use crate::triggers::telegram::chat_calls::{self, ChatCall};
use crate::triggers::telegram::files;
use crate::triggers::telegram::updates::{self};
use crate::triggers::Invoker;

/// A message for the shadow handlers named.
pub(super) struct ShadowTurn {
    pub message: Message,
    /// Its files, as the live handler was given them.
    pub attachments: Arc<Vec<Attachment>>,
    pub update_id: i64,
    pub shadows: Vec<PluginName>,
}

impl TelegramBot {
    /// Queues `turn` for its shadow handlers, behind the chat's earlier
    /// ones; they are handed it side by side, their replies dropped; then
    /// their calls are recorded, and the update no longer owed to them, in
    /// one commit.
    pub(super) fn shadow(&self, turn: ShadowTurn) {
        let chat = turn.message.chat_id;
        let mut queues = self.shadow_queues.lock().unwrap_or_else(|p| p.into_inner());
        let queue = queues.entry(chat).or_insert_with(|| {
            let (sender, mut queue) = mpsc::unbounded_channel::<ShadowTurn>();
            let host = self.host.clone();
            tokio::spawn(async move {
                while let Some(turn) = queue.recv().await {
                    let update_id = turn.update_id;
                    let mut calls = JoinSet::new();
                    for shadow in &turn.shadows {
                        calls.spawn(shadow_call(
                            host.clone(),
                            shadow.clone(),
                            turn.message.clone(),
                            turn.attachments.clone(),
                            update_id,
                        ));
                    }
                    let calls = calls.join_all().await;
                    let recorded = host
                        .db()
                        .call(move |c| {
                            let transaction = c.transaction()?;
                            for call in &calls {
                                chat_calls::insert(&transaction, call)?;
                            }
                            updates::shadows_done_in(&transaction, update_id)?;
                            transaction.commit()
                        })
                        .await;
                    if let Err(e) = recorded {
                        tracing::error!(
                            update = update_id,
                            "failed to record the shadow handlers' calls: {e:#}"
                        );
                    }
                }
            });
            sender
        });
        let _ = queue.send(turn);
    }

    /// Hands the shadow handlers the messages a restart kept from them,
    /// each to those not handed it yet; with no shadow configured now,
    /// forgets them.
    pub(super) async fn resume_shadows(&self) {
        let db = self.host.db();
        if self.config.shadow.is_empty() {
            if let Err(e) = updates::forget_shadows_owed(db).await {
                tracing::error!("failed to clear the messages owed to shadow handlers: {e:#}");
            }
            return;
        }
        let owed = match updates::owed_to_shadows(db).await {
            Ok(owed) => owed,
            Err(e) => {
                tracing::error!("failed to read the messages owed to shadow handlers: {e:#}");
                return;
            }
        };
        if !owed.is_empty() {
            tracing::info!(
                count = owed.len(),
                "handing the shadow handlers the messages a restart kept from them"
            );
        }
        let dir = self.host.config().data_dir.join("attachments");
        for (update, handed) in owed {
            let Some(message) = chat_message(&update) else {
                continue;
            };
            let shadows = self
                .config
                .shadow
                .iter()
                .filter(|shadow| !handed.iter().any(|h| h == shadow.as_str()))
                .cloned()
                .collect();
            // The files the live handler was given are still on disk (not
            // their transcripts, which are made again only for the live).
            let attachments = files::on_disk(&dir, update.update_id, &update.files);
            self.shadow(ShadowTurn {
                message,
                attachments: Arc::new(attachments),
                update_id: update.update_id,
                shadows,
            });
        }
    }
}

/// Hands `message` (update `update_id`) and its `attachments` to the
/// shadow handler `shadow`, with the shadow's own config; returns the
/// call's record.
async fn shadow_call(
    host: Invoker,
    shadow: PluginName,
    mut message: Message,
    attachments: Arc<Vec<Attachment>>,
    update_id: i64,
) -> ChatCall {
    let (name, chat, role) = (shadow.as_str(), message.chat_id, HandlerRole::Shadow);
    message.config = host
        .plugin(name)
        .map(|p| p.config.values.clone())
        .unwrap_or_default();
    let call = match host.shadow_chat(name, &message, attachments).await {
        Ok(report) => ChatCall::of(&report, name, role, chat, Some(update_id)),
        Err(e) => ChatCall::unmade(name, role, chat, Some(update_id), format!("{e:#}")),
    };
    if call.outcome != chat_calls::ChatCallOutcome::Ok {
        let error = call.error.as_deref().unwrap_or_default();
        tracing::info!(
            shadow = name,
            chat,
            outcome = call.outcome.as_str(),
            "shadow handler did not answer cleanly: {error}"
        );
    }
    call
}
