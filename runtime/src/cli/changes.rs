//! `mission changes`: the changes made through the host's own tools,
//! newest first — the tool, the schedule, who pressed for it, and (with
//! `--id`) the text before and after.

use std::process::ExitCode;

use super::open_db;
use crate::config::Config;
use crate::display::local;
use crate::serve::mission_tools::records;

/// `mission changes`' arguments.
#[derive(Debug, clap::Args)]
pub struct ChangesArgs {
    /// Only the changes to this schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// One change whole, with its text before and after.
    #[arg(long)]
    pub id: Option<i64>,
    /// How many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl ChangesArgs {
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        let db = open_db(&config)?;
        let limit = if self.id.is_some() { u32::MAX } else { self.limit };
        let mut changes = records::recent(&db, self.schedule.as_deref(), limit).await?;
        if let Some(id) = self.id {
            changes.retain(|c| c.id == id);
            if changes.is_empty() {
                anyhow::bail!("there is no change {id} (see `mission changes`)");
            }
        }
        if self.json {
            say!("{}", serde_json::to_string_pretty(&changes)?);
            return Ok(ExitCode::SUCCESS);
        }
        if changes.is_empty() {
            say!("No change was made through the host's own tools.");
            return Ok(ExitCode::SUCCESS);
        }
        for change in &changes {
            let by = change
                .by_name
                .as_deref()
                .map_or("allowed outright by the config".to_owned(), |name| {
                    format!("pressed by {name}")
                });
            say!(
                "#{} {} {} `{}` for {}, {by}",
                change.id,
                local(change.at),
                change.tool,
                change.target,
                change.caller
            );
            if self.id.is_some() {
                say!("{}", change.summary);
                if let Some(before) = &change.before {
                    say!("--- before\n{before}");
                }
                if let Some(after) = &change.after {
                    say!("--- after\n{after}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
