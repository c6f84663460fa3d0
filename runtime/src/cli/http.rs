//! `mission http`: the outbound HTTP requests plugins made or were refused.

use std::process::ExitCode;

use super::open_db;
use crate::capabilities::http::records;
use crate::config::Config;

/// `mission http`'s arguments.
#[derive(Debug, clap::Args)]
pub struct HttpArgs {
    /// Only this plugin's.
    #[arg(long)]
    pub plugin: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the latest `limit` requests (of `plugin`, or all), or as JSON.
pub(super) async fn list_requests(
    config: Config,
    plugin: Option<&str>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let requests = records::recent(&db, plugin, limit).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&requests)?);
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<20} {:<14} {:<6} {:<40} {:>6} {:>9} {:>7}  NOTE",
        "AT",
        "PLUGIN",
        "METHOD",
        "ORIGIN AND PATH",
        "STATUS",
        "BYTES IN",
        "MS"
    );
    for r in &requests {
        let status = r.status.map_or("-".to_owned(), |s| s.to_string());
        let note = match (r.denied, &r.error) {
            (true, Some(why)) => format!("denied: {why}"),
            (false, Some(error)) => format!("failed: {error}"),
            _ => String::new(),
        };
        say!(
            "{:<20} {:<14} {:<6} {:<40} {:>6} {:>9} {:>7}  {note}",
            r.at.format("%Y-%m-%d %H:%M:%S"),
            r.plugin,
            r.method,
            format!("{}{}", r.origin, r.path),
            status,
            r.bytes_in,
            r.ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
