//! Button presses, handled in one place: under a tool-approval prompt
//! (Allow once, Allow for this conversation, Deny), under a schedule's
//! alert (Details, Run again or Run now, Pause, Mute 24 h), and under a
//! plugin's message (stored, then run by `triggers::presses`). Only an
//! allowed user, in the chat the buttons were posted in, decides; the press
//! is answered either way.

use super::TelegramBot;
use crate::alerts::buttons::{ButtonData, ButtonKind};
use crate::alerts::{self, Action};
use crate::approvals::{Choice, Press};
use crate::capabilities::notify::posts::{self, Pressed as Stored};
use crate::os::zone::host_zone;
use crate::triggers::telegram::commands::{self, Command};
use crate::triggers::telegram::updates::{ButtonPress, StoredUpdate, UpdateOutcome};

impl TelegramBot {
    /// Handles a button press: only an allowlisted user may decide, and only
    /// in the chat the buttons were posted in; the press is answered either way.
    pub(super) async fn press(&self, update: &StoredUpdate, press: &ButtonPress) -> UpdateOutcome {
        let (chat, sender) = (
            update.chat_id.unwrap_or_default(),
            update.sender_id.unwrap_or_default(),
        );
        let what = ButtonData::parse(&press.data).and_then(|data| match data.kind {
            ButtonKind::Tool => {
                Choice::from_word(data.word).map(|choice| Pressed::Approval((data.id, choice)))
            }
            ButtonKind::Alert => Action::from_word(data.word).map(|action| Pressed::Alert((data.id, action))),
            ButtonKind::Post => Some(Pressed::Post((data.id, data.word.to_owned()))),
        });
        let Some(what) = what else {
            self.answer_press(chat, press, "This button is not one of mine.".into(), false)
                .await;
            return UpdateOutcome::Ignored;
        };
        if !self.config.allowed_users.contains(&sender) {
            tracing::warn!(chat, sender, data = %press.data, "button press from a user not on the allowlist: refused");
            self.answer_press(chat, press, "You are not allowed to decide this.".into(), true)
                .await;
            return UpdateOutcome::Refused;
        }
        match what {
            Pressed::Approval((id, choice)) => {
                self.approval_press(update, (chat, sender), press, id, choice)
                    .await
            }
            Pressed::Alert((id, action)) => self.alert_press(update, chat, press, id, action).await,
            Pressed::Post((post, place)) => {
                self.post_press(update, (chat, sender), press, post, &place).await
            }
        }
    }

    /// A press under a plugin's message: stored (the post marked pressed,
    /// the press queued) before it is answered, so a stop right after it
    /// still runs the plugin once; a second press, or one past the
    /// buttons' expiry, runs nothing.
    async fn post_press(
        &self,
        update: &StoredUpdate,
        (chat, sender): (i64, u64),
        press: &ButtonPress,
        post: i64,
        place: &str,
    ) -> UpdateOutcome {
        let stored = posts::press(
            self.host.db(),
            posts::Press {
                post,
                place,
                chat,
                message: press.message_id.map(i64::from),
                user: sender as i64,
                user_name: &update.sender_name,
            },
        )
        .await;
        let (text, outcome) = match stored {
            Ok(Stored::Taken(id)) => {
                if let Err(e) = self.host.db().sync().await {
                    tracing::warn!(press = id, "syncing the press failed: {e:#}");
                }
                self.host.presses_stored().notify_one();
                tracing::info!(chat, post, press = id, by = %update.sender_name, "button pressed: its plugin runs");
                ("Done.".to_owned(), UpdateOutcome::Pressed)
            }
            Ok(Stored::AlreadyDone(by)) if by.is_empty() => {
                ("Already done.".to_owned(), UpdateOutcome::Stale)
            }
            Ok(Stored::AlreadyDone(by)) => (format!("Already done by {by}."), UpdateOutcome::Stale),
            Ok(Stored::Expired) => ("This button has expired.".to_owned(), UpdateOutcome::Stale),
            Ok(Stored::Unknown) => {
                tracing::warn!(
                    chat,
                    post,
                    "a press on no button of this chat's messages: refused"
                );
                (
                    "This button is not one of mine.".to_owned(),
                    UpdateOutcome::Refused,
                )
            }
            Err(e) => {
                tracing::error!(post, "failed to store a button press: {e:#}");
                (
                    "Sorry, I could not take that press; try again.".to_owned(),
                    UpdateOutcome::Ignored,
                )
            }
        };
        self.answer_press(chat, press, text, false).await;
        outcome
    }

    async fn approval_press(
        &self,
        update: &StoredUpdate,
        (chat, sender): (i64, u64),
        press: &ButtonPress,
        id: i64,
        choice: Choice,
    ) -> UpdateOutcome {
        let answer = |text: String, alert: bool| self.answer_press(chat, press, text, alert);
        let approvals = self.host.claude().approvals().clone();
        let pressed = approvals.press(id, chat, press.message_id, choice, sender, &update.sender_name);
        match pressed.await {
            Press::Decided(text) => {
                answer(text, false).await;
                UpdateOutcome::Decided
            }
            Press::NotWaiting => {
                answer("This request is no longer waiting for an answer.".into(), false).await;
                UpdateOutcome::Stale
            }
            Press::Elsewhere => {
                tracing::warn!(
                    chat,
                    sender,
                    approval = id,
                    "button press from another chat or message than the prompt's: refused"
                );
                answer("You are not allowed to decide this.".into(), true).await;
                UpdateOutcome::Refused
            }
        }
    }

    /// A press under alert `id`: acts on its schedule as the command would,
    /// and says so in the chat, naming who pressed; **Details** posts its
    /// run's whole error, as `/runs ID` does.
    async fn alert_press(
        &self,
        update: &StoredUpdate,
        chat: i64,
        press: &ButtonPress,
        id: i64,
        action: Action,
    ) -> UpdateOutcome {
        let (schedule, run) = match alerts::subject(self.host.db(), id).await {
            Ok(Some(subject)) if subject.chat == chat => (subject.schedule, subject.run),
            Ok(_) => {
                tracing::warn!(
                    chat,
                    alert = id,
                    "alert button pressed outside the alert's chat: refused"
                );
                self.answer_press(chat, press, "You are not allowed to decide this.".into(), true)
                    .await;
                return UpdateOutcome::Refused;
            }
            Err(e) => {
                tracing::error!(alert = id, "failed to read the alert: {e:#}");
                self.answer_press(chat, press, "Sorry, I could not read that alert.".into(), true)
                    .await;
                return UpdateOutcome::Ignored;
            }
        };
        let reply = match action {
            Action::Details => {
                let details = match run {
                    Some(run) => self.command(Command::RunDetails(run.to_string()), chat).await,
                    None => "This alert has no run to show.".to_owned(),
                };
                tracing::info!(chat, alert = id, ?action, by = %update.sender_name, "alert button pressed");
                self.answer_press(chat, press, "The whole error is in the chat.".into(), false)
                    .await;
                self.send(chat, &details, None).await;
                return UpdateOutcome::Jobs;
            }
            Action::RunAgain | Action::RunNow => self.command(Command::Run(schedule), chat).await,
            Action::Pause => self.command(Command::Pause(schedule), chat).await,
            Action::Mute => {
                let until = chrono::Utc::now() + alerts::MUTE_FOR;
                match alerts::mute(self.host.db(), &schedule, until).await {
                    Ok(()) => {
                        let zone = self
                            .host
                            .config()
                            .alerts
                            .as_ref()
                            .map_or_else(host_zone, |a| a.zone);
                        let until = until.with_timezone(&zone).format("%a %H:%M %Z");
                        format!("{schedule}'s alerts are muted until {until}.")
                    }
                    Err(e) => {
                        tracing::error!(%schedule, "failed to mute the alerts: {e:#}");
                        "Sorry, I could not mute them.".to_owned()
                    }
                }
            }
        };
        tracing::info!(chat, alert = id, ?action, by = %update.sender_name, "alert button pressed");
        self.answer_press(chat, press, reply.clone(), false).await;
        self.send(chat, &format!("{} ({})", reply, update.sender_name), None)
            .await;
        UpdateOutcome::Jobs
    }

    /// The host's answer to `command` in `chat`.
    pub(super) async fn command(&self, command: Command, chat: i64) -> String {
        let context = commands::Context {
            host: &self.host,
            handler: &self.config.handler,
            shadows: &self.config.shadow,
            started: self.started,
        };
        commands::answer(command, chat, &context).await
    }

    /// Answers `press` with `text` (`alert`: a notice the user must dismiss);
    /// a failure is logged, the press is handled either way.
    pub(super) async fn answer_press(&self, chat: i64, press: &ButtonPress, text: String, alert: bool) {
        if let Err(e) = self.sender.answer_press(&press.callback_id, &text, alert).await {
            tracing::debug!(chat, "answering a button press failed: {e}");
        }
    }
}

/// What a press is about.
enum Pressed {
    Approval((i64, Choice)),
    Alert((i64, Action)),
    /// A plugin's post and the button's place.
    Post((i64, String)),
}
