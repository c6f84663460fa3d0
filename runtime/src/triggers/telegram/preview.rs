//! Claude's text shown in the chat while it is being written, for a chat
//! plugin that streams (`claude.ask-streamed`): in a private chat as a
//! draft (`sendMessageDraft`: animated, ephemeral, kept by the reply that
//! follows), elsewhere — or where drafts are refused — as a placeholder
//! message edited in place and deleted before the reply goes out. The text
//! is shown anew at most every `stream_every` (3 s at least in a group),
//! only its latest state, cut to the last message's worth. A preview that
//! fails is given up on, never retried: the reply that follows is what
//! counts, and it is sent as it always is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use teloxide::types::ParseMode;
use teloxide::{ApiError, RequestError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::updates;
use crate::capabilities::claude::draft::DraftView;
use crate::capabilities::notify::split::{split, MAX_MESSAGE};
use crate::capabilities::notify::telegram::TelegramSender;
use crate::capabilities::notify::telegram_html;
use crate::config::GROUP_STREAM_EVERY;
use crate::db::Database;

/// The preview of one message's answer, shown until [`Preview::finish`].
pub struct Preview {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    placeholder: Arc<Mutex<Option<i32>>>,
}

/// Where the text is shown.
#[derive(Clone, Copy)]
enum Shown {
    Draft,
    Placeholder(Option<i32>),
}

/// Where a preview goes and how it is shown.
pub struct Target {
    /// The chat.
    pub chat: i64,
    /// The update being answered: the draft's id, and the row that notes
    /// the placeholder.
    pub update_id: i64,
    /// The least time between two changes shown.
    pub every: Duration,
    /// Whether the text is Markdown, shown as Telegram HTML.
    pub markdown: bool,
}

impl Preview {
    /// Starts showing `view` as `target` says, through `sender`; a
    /// placeholder posted is noted in `db` with the update, so that one a
    /// crash left behind is removed after the restart.
    pub fn start(sender: Arc<TelegramSender>, db: Database, target: Target, view: DraftView) -> Preview {
        let (stop, stopped) = oneshot::channel();
        let placeholder = Arc::new(Mutex::new(None));
        let task = tokio::spawn(show(sender, db, target, view, stopped, placeholder.clone()));
        Preview {
            stop,
            task,
            placeholder,
        }
    }

    /// Stops showing (after the request in flight, if any); returns the
    /// placeholder message to remove, if one was posted.
    pub async fn finish(self) -> Option<i32> {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!("the preview task failed: {e}");
        }
        *self.placeholder.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn show(
    sender: Arc<TelegramSender>,
    db: Database,
    target: Target,
    mut view: DraftView,
    mut stopped: oneshot::Receiver<()>,
    placeholder: Arc<Mutex<Option<i32>>>,
) {
    let Target {
        chat,
        update_id,
        every,
        mut markdown,
    } = target;
    let private = chat > 0;
    let every = if private {
        every
    } else {
        every.max(GROUP_STREAM_EVERY)
    };
    let mut shown = if private {
        Shown::Draft
    } else {
        Shown::Placeholder(None)
    };
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            changed = view.changed() => if changed.is_err() { return },
        }
        let text = view.borrow_and_update().clone();
        if text.trim().is_empty() {
            continue;
        }
        let (piece, mode) = last_piece(&text, markdown);
        let sent = match shown {
            Shown::Draft => sender.show_draft(chat, update_id, &piece, mode).await,
            Shown::Placeholder(None) => match sender.post_once(chat, &piece, mode).await {
                Ok(id) => {
                    shown = Shown::Placeholder(Some(id));
                    *placeholder.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
                    if let Err(e) = updates::set_preview(&db, update_id, Some(id)).await {
                        tracing::error!(update = update_id, "noting the preview message failed: {e:#}");
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Shown::Placeholder(Some(id)) => sender.edit_once(chat, id, &piece, mode).await,
        };
        let wait = match sent {
            Ok(()) | Err(RequestError::Api(ApiError::MessageNotModified)) => every,
            Err(RequestError::RetryAfter(after)) => after.duration().max(every),
            Err(RequestError::Api(ApiError::CantParseEntities(why))) if markdown => {
                tracing::debug!(chat, "the preview's HTML was refused ({why}): showing plain text");
                markdown = false;
                Duration::ZERO
            }
            Err(e) if matches!(shown, Shown::Draft) => {
                tracing::info!(
                    chat,
                    "drafts refused ({e}): showing the text in a message edited in place"
                );
                shown = Shown::Placeholder(None);
                Duration::ZERO
            }
            Err(e) => {
                tracing::warn!(
                    chat,
                    "showing Claude's text failed ({e}): the reply will come whole"
                );
                return;
            }
        };
        if wait.is_zero() {
            // Try again at once with what changed: mark the text unseen.
            view.mark_changed();
            continue;
        }
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The last message's worth of `text`, as HTML if it is `markdown`.
fn last_piece(text: &str, markdown: bool) -> (String, Option<ParseMode>) {
    if markdown {
        let html = telegram_html::render(text);
        let piece = telegram_html::split(&html, MAX_MESSAGE).pop().unwrap_or_default();
        (piece, Some(ParseMode::Html))
    } else {
        (split(text, MAX_MESSAGE).pop().unwrap_or_default(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_text_shows_its_end_within_one_message() {
        let text = format!("{}\n\n**the end**", "word ".repeat(2000));
        let (plain, mode) = last_piece(&text, false);
        assert!(mode.is_none() && plain.ends_with("**the end**") && plain.chars().count() <= MAX_MESSAGE);
        let (html, mode) = last_piece(&text, true);
        assert_eq!(mode, Some(ParseMode::Html));
        assert!(html.ends_with("<b>the end</b>"), "{}", &html[html.len() - 40..]);
    }
}
