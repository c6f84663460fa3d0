//! `mission webhooks`: each delivery received, refused or run, newest
//! first, with the runs it started; then the refused requests of the last
//! day counted by webhook and reason (only a sample of them is listed).

use std::process::ExitCode;

use super::open_db;
use crate::config::Config;
use crate::triggers::webhooks::deliveries;
use crate::triggers::webhooks::intake::REFUSALS_KEPT_PER_MINUTE;

/// `mission webhooks`'s arguments.
#[derive(Debug, clap::Args)]
pub struct WebhooksArgs {
    /// Only this webhook's.
    pub webhook: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn list(
    config: Config,
    webhook: Option<String>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let db = open_db(&config)?;
    let deliveries = deliveries::recent(&db, webhook.as_deref(), limit).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&deliveries)?);
        return Ok(ExitCode::SUCCESS);
    }
    let refused = deliveries::refusal_counts(&db, chrono::Utc::now() - chrono::Duration::days(1)).await?;
    let refused: Vec<_> = refused
        .into_iter()
        .filter(|r| webhook.as_ref().is_none_or(|w| *w == r.webhook))
        .collect();
    if deliveries.is_empty() {
        say!("No webhook delivery has been received.");
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<6} {:<16} {:<24} {:<20} {:>6} {:<9} {:>8} {:>9}  DETAIL",
        "ID",
        "WEBHOOK",
        "DELIVERY",
        "RECEIVED",
        "STATUS",
        "STATE",
        "BYTES",
        "ACK MS"
    );
    for d in deliveries {
        let detail = match (d.state.as_str(), d.outcome) {
            ("refused", _) => d.verified.clone(),
            ("duplicate", _) => "a redelivery: nothing ran".to_owned(),
            (_, Some(outcome)) => format!("{outcome} after {} run(s): {}", d.runs.len(), runs(&d.runs)),
            (_, None) => format!("{} run(s) so far: {}", d.runs.len(), runs(&d.runs)),
        };
        say!(
            "{:<6} {:<16} {:<24} {:<20} {:>6} {:<9} {:>8} {:>9}  {detail}",
            d.id,
            d.webhook,
            d.delivery_id.chars().take(24).collect::<String>(),
            d.received_at.format("%Y-%m-%d %H:%M:%S"),
            d.status,
            d.state,
            d.bytes,
            d.ack_ms.map_or("-".to_owned(), |ms| format!("{ms:.1}")),
        );
    }
    if !refused.is_empty() {
        say!("\nRefused in the last 24 hours (at most {REFUSALS_KEPT_PER_MINUTE} a minute per webhook are listed above):");
        for r in refused {
            say!(
                "  {:<16} {:>8} × {} ({}), the latest {}",
                r.webhook,
                r.count,
                r.reason.describe(),
                r.reason.status(),
                r.last_at.format("%Y-%m-%d %H:%M:%S")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `mission runs --id N` for each.
fn runs(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter()
        .map(|id| format!("#{id}"))
        .collect::<Vec<_>>()
        .join(" ")
}
