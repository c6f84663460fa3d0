//! `GET /metrics`: the host's [counters](crate::metrics) and, read at
//! scrape time, what waits (webhook deliveries, tool approvals, `later`
//! wake-ups), when each schedule last succeeded (so a "did not run" alert
//! can be written in Prometheus), the Agent SDK credit left, and the
//! process itself (resident memory, open files, start time, version): in
//! the OpenMetrics text format to a scraper that asks for it (Prometheus
//! does), else in the classic text format (`promtool`, `curl`).

use chrono::Utc;
use prometheus_client::encoding::{text, EncodeLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::StatusSource;
use crate::approvals::records as approvals;
use crate::capabilities::claude::spend::credit;
use crate::capabilities::later::wakeups;
use crate::host::runs;
use crate::os::usage;
use crate::os::zone::host_zone;
use crate::serve::control;
use crate::triggers::webhooks::deliveries;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic Prometheus text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A gauge of seconds or dollars.
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// A schedule's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

/// The binary's version label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// The schedules' names: their files' (`NAME.toml`), read from the
/// directory alone, since parsing fifty files would be most of a scrape.
fn schedule_names(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_owned)
        })
        .collect()
}

/// Everything `/metrics` shows, rendered.
pub async fn render(host: &dyn StatusSource) -> anyhow::Result<String> {
    let db = host.db();
    let config = host.config();
    let mut registry = Registry::with_prefix("mission");

    let names = schedule_names(&config.schedules_dir);
    let last_success = Family::<ScheduleLabel, FloatGauge>::default();
    for (schedule, at) in runs::last_successes(db, names).await? {
        last_success
            .get_or_create(&ScheduleLabel { schedule })
            .set(at as f64 / 1000.0);
    }
    registry.register_with_unit(
        "schedule_last_success_timestamp",
        "When each schedule's latest successful run ended (Unix time)",
        Unit::Seconds,
        last_success,
    );

    let gauge = |value: u64| {
        let gauge = Gauge::<i64>::default();
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        gauge
    };
    registry.register(
        "webhook_deliveries_waiting",
        "Webhook deliveries stored and waiting for their run",
        gauge(deliveries::waiting(db).await?),
    );
    registry.register(
        "approvals_waiting",
        "Tool uses waiting for a person's decision",
        gauge(approvals::waiting(db).await?),
    );
    registry.register(
        "later_wakeups_pending",
        "Wake-ups plugins asked for with `later` that wait",
        gauge(wakeups::waiting(db).await?.0),
    );
    if let Some(settings) = config.claude.as_ref().and_then(|c| c.credit.as_ref()) {
        let status = credit::status(db, settings, Utc::now(), host_zone()).await?;
        let left = FloatGauge::default();
        left.set(status.left_usd());
        registry.register(
            "claude_credit_left_usd",
            "The Agent SDK credit left this period, in US dollars",
            left,
        );
    }

    if let Some(resident) = usage::resident_bytes() {
        registry.register_with_unit(
            "process_resident_memory",
            "The host's resident memory",
            Unit::Bytes,
            gauge(resident),
        );
    }
    if let Some(open) = usage::open_files() {
        registry.register(
            "process_open_fds",
            "The host's open files, sockets and pipes",
            gauge(open),
        );
    }
    if let Some(heartbeat) = control::last_heartbeat(db).await? {
        let started = FloatGauge::default();
        started.set(heartbeat.started_at.timestamp_millis() as f64 / 1000.0);
        registry.register_with_unit(
            "process_start_time",
            "When the host started (Unix time)",
            Unit::Seconds,
            started,
        );
    }
    // A gauge of 1, not an OpenMetrics info: the classic text format's
    // tools (promtool) know no info type.
    let build = Family::<VersionLabel, Gauge>::default();
    build
        .get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })
        .set(1);
    registry.register("build_info", "The mission binary serving, by version", build);

    let mut out = String::new();
    text::encode_registry(&mut out, crate::metrics::get().registry())?;
    text::encode(&mut out, &registry)?;
    Ok(out)
}

/// `openmetrics` in the classic text format: a counter's family is named
/// as its samples are (with `_total`), and the OpenMetrics-only lines
/// (`# UNIT`, `# EOF`) go.
pub fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let described = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match described {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) { "_total" } else { "" };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_format_names_counter_families_by_their_samples() {
        let openmetrics = "# HELP mission_runs Runs ended.\n# TYPE mission_runs counter\n\
            mission_runs_total{plugin=\"a\"} 2\n\
            # HELP mission_up_seconds Up.\n# TYPE mission_up_seconds gauge\n# UNIT mission_up_seconds seconds\n\
            mission_up_seconds 5\n# EOF\n";
        assert_eq!(
            classic(openmetrics),
            "# HELP mission_runs_total Runs ended.\n# TYPE mission_runs_total counter\n\
             mission_runs_total{plugin=\"a\"} 2\n\
             # HELP mission_up_seconds Up.\n# TYPE mission_up_seconds gauge\nmission_up_seconds 5\n"
        );
    }
}
