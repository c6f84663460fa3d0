//! `mission approvals`: the tool uses asked about in the chat and what came
//! of each.

use std::process::ExitCode;

use super::open_db;
use crate::approvals::recent;
use crate::config::Config;

/// `mission approvals`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn list(config: Config, limit: u32, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let approvals = recent(&db, limit).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&approvals)?);
        return Ok(ExitCode::SUCCESS);
    }
    if approvals.is_empty() {
        say!("No tool use has been asked about.");
    }
    for a in approvals {
        let by = match (&a.decided_by_name, a.decided_by) {
            (Some(name), Some(id)) => format!(" by {name} ({id})"),
            _ => String::new(),
        };
        let why = a.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
        say!(
            "{}  {}  {} {}  {}{by}{why}\n    {}",
            a.asked_at.format("%Y-%m-%d %H:%M:%S UTC"),
            a.plugin,
            a.tool,
            a.chat_id.map(|c| format!("in chat {c}")).unwrap_or_default(),
            a.outcome,
            a.summary.replace('\n', "\n    ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
