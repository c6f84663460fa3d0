//! The queue of requests to the running host — `mission trigger`, `mission
//! reload`, the page's and the chat's "run now" — in SQLite, so whoever
//! asks needs only the database; `serve::control` takes them.

use chrono::Utc;

use crate::db::retention::Rule;
use crate::db::{text_enum, Database};
use std::time::Duration;

text_enum! {
    /// What a CLI command asks a running host to do.
    pub enum RequestKind {
        /// Run a schedule now (`mission trigger`); the target is the schedule.
        Trigger = "trigger",
        /// Reload plugins from disk (`mission reload`); the target is a
        /// plugin, or empty for all.
        Reload = "reload",
    }
}

/// Queues a request for the running host; returns its id.
pub async fn request(db: &Database, kind: RequestKind, target: &str) -> anyhow::Result<i64> {
    let target = target.to_owned();
    db.call(move |c| {
        c.execute(
            "INSERT INTO requests (kind, target, created_at) VALUES (?1, ?2, ?3)",
            (kind, target, Utc::now().timestamp_millis()),
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// How requests go: a day after they are answered; one not answered yet
/// stays.
pub const RETENTION: &[Rule] = &[Rule {
    table: "requests",
    kind: "requests",
    delete: "DELETE FROM requests WHERE id IN (SELECT id FROM requests
                 WHERE done_at IS NOT NULL AND done_at < ?1 LIMIT ?2)",
    keep: |_| Duration::from_secs(86_400),
    kept: |_| "1d once answered".to_owned(),
}];
