//! `mission shadow report`: the live chat handler and each shadow side by
//! side, for deciding whether a candidate should take over.

use std::process::ExitCode;

use chrono::Utc;

use super::cost::parse_since;
use super::open_db;
use crate::config::Config;
use crate::os::zone::host_zone;
use crate::triggers::telegram::chat_calls::shadow_report;

/// `mission shadow ...`
#[derive(Debug, clap::Subcommand)]
pub enum ShadowCommand {
    /// The live handler and each shadow side by side: messages, p50/p95
    /// latency, errors and timeouts, cost per message and the month at this
    /// rate, history and context given, reply length.
    Report {
        /// From this day (YYYY-MM-DD, host time zone) or this long ago
        /// (`48h`, `7d`).
        #[arg(long, default_value = "48h")]
        since: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ShadowCommand {
    /// Runs it on `config`.
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        match self {
            ShadowCommand::Report { since, json } => report(config, &since, json).await,
        }
    }
}

pub(super) async fn report(config: Config, since: &str, json: bool) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let now = Utc::now();
    let since = parse_since(since, now, host_zone())?;
    let report = shadow_report(&db, since, now).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::untrusted::terminal(&report.render()));
    }
    Ok(ExitCode::SUCCESS)
}
