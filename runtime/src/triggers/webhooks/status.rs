//! The webhooks' section of the status page: where the listener is, the
//! latest deliveries with what became of each, and the last day's refusals
//! counted by webhook and reason.

use serde::Serialize;

use super::deliveries;
use crate::config::webhooks::WebhooksConfig;
use crate::db::Database;
use crate::display::{brief, local};
use crate::host::runs::RunOutcome;

/// The webhook listener and its latest deliveries.
#[derive(Debug, Serialize)]
pub struct WebhooksStatus {
    /// Where it listens.
    pub listen: String,
    /// The latest deliveries, newest first.
    pub deliveries: Vec<DeliveryStatus>,
    /// Requests refused over the last day, counted by webhook and reason
    /// (only a sample of them is among the deliveries).
    pub refused: Vec<RefusedStatus>,
}

/// Requests refused to one webhook for one reason, as the page shows them.
#[derive(Debug, Serialize)]
pub struct RefusedStatus {
    /// The webhook.
    pub webhook: String,
    /// Why, and the status answered.
    pub reason: String,
    /// How many over the last day.
    pub count: u64,
    /// The latest, host time.
    pub last: String,
}

/// One delivery as the page shows it.
#[derive(Debug, Serialize)]
pub struct DeliveryStatus {
    /// The webhook.
    pub webhook: String,
    /// The sender's delivery id.
    pub delivery_id: String,
    /// When it came, host time.
    pub received_at: String,
    /// The status answered.
    pub status: u16,
    /// What became of it: its run's outcome, waiting, a duplicate, or why
    /// it was refused.
    pub result: String,
    /// Whether it was refused or its run failed.
    pub failed: bool,
    /// The body's size.
    pub bytes: u64,
}

/// The webhooks configured as `webhooks`, with their latest deliveries.
pub async fn section(db: &Database, webhooks: &WebhooksConfig) -> anyhow::Result<WebhooksStatus> {
    Ok(WebhooksStatus {
        listen: webhooks.listen.to_string(),
        deliveries: deliveries::recent(db, None, 10)
            .await?
            .into_iter()
            .map(|d| {
                let (result, failed) = match (d.state.as_str(), d.outcome) {
                    ("refused", _) => (brief(&d.verified, None), true),
                    ("duplicate", _) => ("duplicate: nothing ran".to_owned(), false),
                    (_, Some(outcome)) => (
                        format!(
                            "{outcome} ({} run{})",
                            d.runs.len(),
                            if d.runs.len() == 1 { "" } else { "s" }
                        ),
                        outcome != RunOutcome::Succeeded,
                    ),
                    (_, None) => ("waiting to run".to_owned(), false),
                };
                DeliveryStatus {
                    webhook: d.webhook,
                    delivery_id: d.delivery_id,
                    received_at: local(d.received_at),
                    status: d.status,
                    result,
                    failed,
                    bytes: d.bytes,
                }
            })
            .collect(),
        refused: deliveries::refusal_counts(db, chrono::Utc::now() - chrono::Duration::days(1))
            .await?
            .into_iter()
            .map(|r| RefusedStatus {
                webhook: r.webhook,
                reason: format!("{} ({})", r.reason.describe(), r.reason.status()),
                count: r.count,
                last: local(r.last_at),
            })
            .collect(),
    })
}
