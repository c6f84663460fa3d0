//! `mission later`: the wake-ups plugins asked for with `later` that are
//! still waiting, the one due first first.

use std::process::ExitCode;

use super::open_db;
use crate::capabilities::later::wakeups;
use crate::config::units::ByteSize;
use crate::config::Config;
use crate::display::local;

/// `mission later`'s arguments.
#[derive(Debug, clap::Args)]
pub struct LaterArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn list(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let waiting = wakeups::pending(&db).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&waiting)?);
        return Ok(ExitCode::SUCCESS);
    }
    if waiting.is_empty() {
        say!("No wake-up is waiting.");
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<8} {:<20} {:<20} {:>9}  ASKED",
        "ID",
        "PLUGIN",
        "DUE",
        "PAYLOAD"
    );
    for w in waiting {
        let asked = match w.created_by_run {
            Some(run) => format!("{} by run {run}", local(w.created_at)),
            None => local(w.created_at),
        };
        say!(
            "{:<8} {:<20} {:<20} {:>9}  {asked}",
            w.id,
            w.plugin,
            local(w.due_at),
            ByteSize(w.payload_bytes).to_string(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
