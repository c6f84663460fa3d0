//! Presses: a press on a button of a message a plugin posted starts a run
//! of that plugin, once. The bot stores each press before it answers it
//! (`notify::posts::press`); this trigger claims each stored press, marks
//! the message with who chose what and when (its buttons removed — the run
//! may edit it again), runs the plugin with the press in its event, and
//! marks the press done. A press a stop cut short runs again at the next
//! start; one whose run finished never again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Invoker, Stopped, Trigger};
use crate::capabilities::notify::posts::{self, Claimed};
use crate::capabilities::notify::telegram_html;
use crate::capabilities::Event;
use crate::display::local;
use crate::host::runs::{RunOutcome, StartedBy};
use crate::host::TaskRun;
use crate::plugin::call::Invocation;
use crate::wasm::bindings::task::mission::plugin::event::ButtonPress;

/// How often the table is read though nothing said so.
const TABLE_CHECK: Duration = Duration::from_secs(30);

/// Runs of presses at once.
const LANES: usize = 8;

/// The presses trigger; always on (a press needs the bot, and a press
/// stored before a stop runs at the next start even without it).
pub fn trigger(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    Some(Box::new(Presses {
        invoker: invoker.clone(),
    }))
}

struct Presses {
    invoker: Invoker,
}

#[async_trait::async_trait]
impl Trigger for Presses {
    fn name(&self) -> &'static str {
        "presses"
    }

    async fn run(self: Box<Self>, mut stopped: Stopped) {
        let db = self.invoker.db().clone();
        match posts::reopen(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} press(es) cut short by the last stop run again"),
            Err(e) => tracing::error!("failed to reopen the presses cut short: {e:#}"),
        }
        let stored = self.invoker.presses_stored();
        let lanes = Arc::new(Semaphore::new(LANES));
        let mut running = JoinSet::new();
        loop {
            if lanes.available_permits() > 0 {
                if let Err(e) = self.start_waiting(&lanes, &mut running).await {
                    tracing::error!("failed to read the presses: {e:#}");
                }
            }
            tokio::select! {
                () = &mut stopped => break,
                () = stored.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(TABLE_CHECK) => {}
            }
        }
        let grace = self.invoker.config().shutdown_grace;
        super::drain(
            &mut running,
            grace,
            "press runs still going at shutdown run again at the next start",
        )
        .await;
    }
}

impl Presses {
    /// Starts a run for each press waiting, as many as there are free lanes.
    async fn start_waiting(&self, lanes: &Arc<Semaphore>, running: &mut JoinSet<()>) -> anyhow::Result<()> {
        let db = self.invoker.db();
        for id in posts::waiting(db).await? {
            if lanes.available_permits() == 0 {
                break;
            }
            let Some(claimed) = posts::claim(db, id).await? else {
                continue;
            };
            let lane = lanes.clone().acquire_owned().await?;
            let invoker = self.invoker.clone();
            running.spawn(async move {
                run_press(&invoker, claimed).await;
                drop(lane);
            });
        }
        Ok(())
    }
}

/// Marks the message, runs the plugin for `claimed`, and marks the press
/// done unless a stop cut the run short.
async fn run_press(invoker: &Invoker, claimed: Claimed) {
    mark(invoker, &claimed).await;
    let values = invoker
        .plugin(&claimed.plugin)
        .map(|p| p.config.values.clone())
        .unwrap_or_default();
    let event = ButtonPress {
        data: claimed.data.clone(),
        label: claimed.label.clone(),
        user_id: claimed.user_id,
        user_name: claimed.user_name.clone(),
        chat_id: claimed.chat,
        message_id: claimed.message,
        pressed_at: claimed.pressed_at,
    };
    let run = TaskRun {
        plugin: &claimed.plugin,
        schedule: None,
        trigger: StartedBy::Press(claimed.id),
        invocation: Invocation {
            name: claimed.plugin.clone(),
            scheduled_at: claimed.pressed_at,
            attempt: 1,
            config: values,
        },
        event: Some(Arc::new(Event::Press(event))),
        timeout: None,
        follow_ups: &[],
    };
    let outcome = match invoker.run(run).await {
        Ok(record) => record.outcome,
        Err(e) => {
            tracing::error!(
                plugin = claimed.plugin,
                press = claimed.id,
                "failed to run: {e:#}"
            );
            RunOutcome::Failed
        }
    };
    if outcome == RunOutcome::Interrupted {
        return;
    }
    if let Err(e) = posts::finish(invoker.db(), claimed.id, outcome.as_str()).await {
        tracing::error!(press = claimed.id, "failed to mark the press done: {e:#}");
    }
}

/// The message of `claimed`'s post with who chose what and when under it,
/// its buttons removed.
async fn mark(invoker: &Invoker, claimed: &Claimed) {
    let Some(telegram) = invoker.telegram() else {
        return;
    };
    let Ok(message) = i32::try_from(claimed.message) else {
        return;
    };
    let when = local(crate::db::datetime(claimed.pressed_at));
    let chose = format!("✓ {} — {}, {when}", claimed.label, claimed.user_name);
    let text = match claimed.text.html {
        true => format!("{}\n\n{}", claimed.text.text, telegram_html::escape(&chose)),
        false => format!("{}\n\n{chose}", claimed.text.text),
    };
    if let Err(e) = telegram
        .edit_post(claimed.chat, message, &text, claimed.text.html, &[])
        .await
    {
        tracing::warn!(
            chat = claimed.chat,
            message,
            "marking the pressed message failed: {e}"
        );
    }
}
