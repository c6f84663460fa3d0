//! The wake-ups' line on the status page: how many wait, and when the
//! first is due.

use serde::Serialize;

use crate::capabilities::later::wakeups;
use crate::db::{datetime, Database};
use crate::display::local;

/// The wake-ups waiting, as the page shows them.
#[derive(Debug, Serialize)]
pub struct WakeUpsStatus {
    /// How many wait.
    pub waiting: u64,
    /// When the first is due, host time.
    pub first_due: Option<String>,
}

/// The wake-ups waiting now.
pub async fn section(db: &Database) -> anyhow::Result<WakeUpsStatus> {
    let (waiting, first) = wakeups::waiting(db).await?;
    Ok(WakeUpsStatus {
        waiting,
        first_due: first.map(|at| local(datetime(at))),
    })
}
