//! `[alerts] digest`: one message on a cron expression (in `[alerts]
//! timezone`) — the last day's runs and failures, what fails now, what is
//! paused, the due times missed, Claude's spend and the Agent SDK credit.
//! Each due time is told once, even across a restart; one that passed
//! while the host was down is not sent late.

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alerts::{self, Alert};

use crate::capabilities::claude::spend::report::month_report;
use crate::config::alerts::AlertsConfig;
use crate::host::runs::{self, RunOutcome};
use crate::host::Host;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{alerts::failing, alerts::misses_since, state};

/// How often the time is looked at.
const TICK: Duration = Duration::from_secs(5);

/// Sends the digest at its due times until `shutdown`.
pub async fn keep_digesting(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let up_since = Utc::now();
    // The due time last queued: gathered once, not again every tick.
    let mut told = None;
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(TICK) => {}
        }
        let config = host.config();
        let Some(alerts) = config.alerts.as_ref() else {
            continue;
        };
        let Some(cron) = &alerts.digest else { continue };
        let now = Utc::now();
        let Some(due) = cron
            .previous_at_or_before(now, alerts.zone)
            .filter(|due| *due > up_since && told != Some(*due))
        else {
            continue;
        };
        let text = match compose(&host, alerts, now).await {
            Ok(text) => text,
            Err(e) => {
                tracing::error!("failed to gather the digest: {e:#}");
                continue;
            }
        };
        let alert = Alert {
            chat: alerts.chat,
            text,
            schedule: None,
            urgent: false,
        };
        match alerts::once(host.db(), format!("digest:{}", due.timestamp_millis()), 0, alert).await {
            Ok(queued) => {
                if queued {
                    tracing::info!(%due, "digest queued");
                }
                told = Some(due);
            }
            Err(e) => tracing::error!("failed to queue the digest: {e:#}"),
        }
    }
}

/// The digest as of `now`.
async fn compose(host: &Host, alerts: &AlertsConfig, now: DateTime<Utc>) -> anyhow::Result<String> {
    let db = host.db();
    let day_ago = now - chrono::Duration::hours(24);
    let mut text = format!(
        "📋 Digest, {}",
        now.with_timezone(&alerts.zone).format("%a %b %-d %H:%M %Z")
    );

    let tally = runs::tally_since(db, day_ago).await?;
    let count = |wanted: &dyn Fn(RunOutcome) -> bool| -> u32 {
        tally
            .iter()
            .filter(|(_, o, _)| wanted(*o))
            .map(|(_, _, n)| n)
            .sum()
    };
    let failed = |o: RunOutcome| {
        !matches!(
            o,
            RunOutcome::Succeeded | RunOutcome::Running | RunOutcome::Skipped
        )
    };
    let _ = write!(
        text,
        "\nRuns in 24 h: {}, {} failed, {} skipped.",
        count(&|o| o != RunOutcome::Skipped),
        count(&failed),
        count(&|o| o == RunOutcome::Skipped)
    );
    let mut failures: Vec<String> = tally
        .iter()
        .filter(|(_, o, _)| failed(*o))
        .map(|(name, outcome, n)| format!("{name} {outcome} ×{n}"))
        .collect();
    failures.truncate(10);
    if !failures.is_empty() {
        let _ = write!(text, "\nFailed: {}.", failures.join(", "));
    }
    let now_failing: Vec<_> = failing(db).await?.into_iter().filter(|f| f.told).collect();
    if !now_failing.is_empty() {
        let names: Vec<String> = now_failing
            .iter()
            .map(|f| {
                let since = f.since.with_timezone(&alerts.zone).format("%a %H:%M");
                format!("{} (since {since}, {} runs)", f.schedule, f.failures)
            })
            .collect();
        let _ = write!(text, "\nFailing now: {}.", names.join(", "));
    }
    let mut paused: Vec<String> = state::paused(db).await?.into_iter().collect();
    paused.sort();
    if !paused.is_empty() {
        let _ = write!(text, "\nPaused: {}.", paused.join(", "));
    }
    let missed = misses_since(db, day_ago).await?;
    if !missed.is_empty() {
        let lines: Vec<String> = missed
            .iter()
            .map(|(schedule, reason, n)| format!("{schedule} {n} ({})", reason.replace('_', " ")))
            .collect();
        let _ = write!(text, "\nMissed due times: {}.", lines.join(", "));
    }
    let config = host.config();
    if let Some(claude) = &config.claude {
        let report = month_report(db, claude, now, host_zone()).await?;
        let _ = write!(text, "\n{}", report.summary());
    }
    Ok(text)
}
