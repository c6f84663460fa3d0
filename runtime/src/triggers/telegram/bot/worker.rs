//! One worker per chat: its updates handled strictly in order, with the
//! chat's warm instance kept between them; a button press and an allowed
//! user's `/stop` at once, outside the queue (the turn they act on is in it).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::message::{chat_message, Handled};
use super::shadows::ShadowTurn;
use super::TelegramBot;
use crate::config::InstanceMode;
use crate::triggers::telegram::commands::Command;
use crate::triggers::telegram::updates::{self, StoredUpdate, UpdateOutcome};

impl TelegramBot {
    /// Queues `update` behind the earlier ones of its chat; a button press
    /// is handled at once.
    pub(super) fn dispatch(
        self: &Arc<Self>,
        chats: &mut HashMap<i64, mpsc::UnboundedSender<StoredUpdate>>,
        workers: &mut JoinSet<()>,
        update: StoredUpdate,
    ) {
        if let Some(press) = update.press.clone() {
            let bot = self.clone();
            workers.spawn(async move {
                let id = update.update_id;
                let outcome = bot.press(&update, &press).await;
                if let Err(e) = updates::mark_handled(bot.host.db(), id, outcome, false).await {
                    tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                }
            });
            return;
        }
        let chat = update.chat_id.unwrap_or_default();
        let allowed = update
            .sender_id
            .is_some_and(|s| self.config.allowed_users.contains(&s));
        if allowed && update.text.as_deref().and_then(Command::parse) == Some(Command::Stop) {
            let bot = self.clone();
            workers.spawn(async move {
                let reply = bot.command(Command::Stop, chat).await;
                tracing::info!(chat, "/stop: {reply}");
                bot.send(chat, &reply, None).await;
                let id = update.update_id;
                if let Err(e) = updates::mark_handled(bot.host.db(), id, UpdateOutcome::Stopped, false).await
                {
                    tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                }
            });
            return;
        }
        let queue = chats.entry(chat).or_insert_with(|| {
            let (sender, mut queue) = mpsc::unbounded_channel::<StoredUpdate>();
            let bot = self.clone();
            workers.spawn(async move {
                let mut warm = None;
                loop {
                    let next = match (&warm, bot.config.instance) {
                        (Some(_), InstanceMode::Warm) => {
                            match tokio::time::timeout(bot.config.warm_idle, queue.recv()).await {
                                Ok(next) => next,
                                Err(_idle) => {
                                    tracing::debug!(chat, "dropping the idle warm instance");
                                    warm = None;
                                    continue;
                                }
                            }
                        }
                        _ => queue.recv().await,
                    };
                    let Some(update) = next else { return };
                    let id = update.update_id;
                    let shadows = !bot.config.shadow.is_empty();
                    let for_shadows = if shadows { chat_message(&update) } else { None };
                    let slot = (bot.config.instance == InstanceMode::Warm).then_some(&mut warm);
                    let Handled { outcome, attachments } = bot.handle(update, slot).await;
                    // A NoReply was marked in the commit that recorded the answer.
                    if outcome != UpdateOutcome::NoReply {
                        if let Err(e) = updates::mark_handled(bot.host.db(), id, outcome, shadows).await {
                            tracing::error!(update = id, "failed to mark the update handled: {e:#}");
                        }
                    }
                    if let (true, Some(message)) = (outcome.goes_to_shadows(), for_shadows) {
                        bot.shadow(ShadowTurn {
                            message,
                            attachments,
                            update_id: id,
                            shadows: bot.config.shadow.clone(),
                        });
                    }
                }
            });
            sender
        });
        let _ = queue.send(update);
    }
}
