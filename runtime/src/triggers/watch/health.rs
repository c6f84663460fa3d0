//! Whether a watch is watching: when one of its directories is gone (or
//! cannot be watched) the watch is kept as broken in `watch_state` — why
//! and since when, for `mission watches` and the status page —, logged, and
//! told to the `[alerts]` chat; its return is told the same way. The lane
//! ([`super`]) tells each change of [`super::armed::Arming::broken`] here,
//! after a burst's `debounce`, so a directory deleted and made again at
//! once is never told.

use rusqlite::OptionalExtension;

use crate::alerts::{self, Alert};
use crate::db::Database;
use crate::triggers::Invoker;

/// Why `watch` was last kept as not watching; none if it was watching (or
/// cannot be read, which is logged).
pub async fn told(db: &Database, watch: &str) -> Option<String> {
    let name = watch.to_owned();
    let broken = db
        .call(move |c| {
            c.query_row(
                "SELECT broken FROM watch_state WHERE watch = ?1",
                [&name],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()
        })
        .await;
    broken.map(Option::flatten).unwrap_or_else(|e| {
        tracing::error!(watch, "cannot read whether the watch was watching: {e:#}");
        None
    })
}

/// Keeps, logs and tells `broken` (why `watch` is not watching; none: it
/// is) if it is not what was `told` last.
pub async fn tell(invoker: &Invoker, watch: &str, broken: Option<String>, told: &mut Option<String>) {
    if broken == *told {
        return;
    }
    match &broken {
        Some(reason) => tracing::error!(
            watch,
            reason,
            "the watch is not watching: it starts again when its directory is back"
        ),
        None => tracing::info!(watch, "the watch is watching again"),
    }
    if let Err(e) = keep(invoker.db(), watch, broken.as_deref()).await {
        tracing::error!(watch, "cannot keep whether the watch is watching: {e:#}");
    }
    // A change of reason while broken is kept, not told again.
    let text = match (&broken, &*told) {
        (Some(reason), None) => Some(broken_text(watch, reason)),
        (None, Some(_)) => Some(back_text(watch)),
        _ => None,
    };
    if let (Some(text), Some(config)) = (text, invoker.config().alerts.as_ref()) {
        let alert = Alert {
            chat: config.chat,
            text,
            schedule: None,
            urgent: false,
        };
        if let Err(e) = alerts::queue_now(invoker.db(), alert).await {
            tracing::error!(watch, "cannot queue the watch's alert: {e:#}");
        }
    }
    *told = broken;
}

/// Keeps why `watch` is not watching (none: it is), since the first time.
async fn keep(db: &Database, watch: &str, broken: Option<&str>) -> anyhow::Result<()> {
    let (watch, broken) = (watch.to_owned(), broken.map(str::to_owned));
    let now = chrono::Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "UPDATE watch_state SET broken = ?2,
                 broken_since = CASE WHEN ?2 IS NULL THEN NULL ELSE coalesce(broken_since, ?3) END
             WHERE watch = ?1",
            rusqlite::params![watch, broken, now],
        )
        .map(drop)
    })
    .await
}

/// The alert when `watch` stops watching, for `reason`.
fn broken_text(watch: &str, reason: &str) -> String {
    format!(
        "⚠️ Watch {watch} stopped watching: {reason}. New files there start no run until it is back; \
         the watch picks up again by itself."
    )
}

/// The alert when `watch` watches again.
fn back_text(watch: &str) -> String {
    format!("✅ Watch {watch} is watching again; what changed meanwhile starts a run.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_name_the_watch_and_why() {
        let text = broken_text("new-exports", "/home/a/exports is gone");
        assert!(
            text.contains("Watch new-exports stopped watching: /home/a/exports is gone."),
            "{text}"
        );
        assert!(back_text("new-exports").contains("new-exports is watching again"));
    }
}
