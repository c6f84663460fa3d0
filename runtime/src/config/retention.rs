//! `[retention]`: how long records are kept before the host prunes them.
//!
//! ```toml
//! [retention]
//! runs = "90d"          # run records
//! run_output = "7d"     # a run's captured output (the record stays)
//! updates = "30d"       # handled Telegram updates, with their text and reply
//! history = "30d"       # conversation history and API transcripts (never
//!                       # less than the history TTL a plugin is given)
//! loads = "90d"         # plugin loads (each plugin's latest always stays)
//! http = "30d"          # outbound HTTP request records, and tool calls
//! claude_calls = "400d" # the cost ledger
//! chat_calls = "90d"    # each chat handler call measured (live and shadow)
//! approvals = "90d"     # tool uses asked about, and each decision
//! webhooks = "30d"      # webhook deliveries (with their bodies) and refusals
//! alerts = "90d"        # alerts sent, thresholds and missed runs told
//! attachments = "30d"   # files of chat messages, downloaded into attachments/
//! compile_cache = "7d"  # compiled code in the data directory's cache/ that
//!                       # no plugin loaded now uses (an old build)
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::units::HumanDuration;

const DAY: Duration = Duration::from_secs(86_400);

/// How long each kind of record is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Run records.
    pub runs: Duration,
    /// The output captured with a run.
    pub run_output: Duration,
    /// Handled Telegram updates.
    pub updates: Duration,
    /// Conversation history and the API backend's transcripts.
    pub history: Duration,
    /// Plugin load records.
    pub loads: Duration,
    /// Outbound HTTP request records.
    pub http: Duration,
    /// The Claude cost ledger.
    pub claude_calls: Duration,
    /// Chat handler calls measured.
    pub chat_calls: Duration,
    /// Tool-use approvals.
    pub approvals: Duration,
    /// Webhook deliveries and refusals.
    pub webhooks: Duration,
    /// Alerts sent, and what was told once.
    pub alerts: Duration,
    /// Files of chat messages in the data directory's `attachments/`.
    pub attachments: Duration,
    /// Compiled code no plugin loaded now uses, after its last use.
    pub compile_cache: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            runs: 90 * DAY,
            run_output: 7 * DAY,
            updates: 30 * DAY,
            history: 30 * DAY,
            loads: 90 * DAY,
            http: 30 * DAY,
            claude_calls: 400 * DAY,
            chat_calls: 90 * DAY,
            approvals: 90 * DAY,
            webhooks: 30 * DAY,
            alerts: 90 * DAY,
            attachments: 30 * DAY,
            compile_cache: 7 * DAY,
        }
    }
}

/// `[retention]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    /// Example: `runs = "90d"` (the default)
    runs: Option<HumanDuration>,
    /// Example: `run_output = "7d"` (the default)
    run_output: Option<HumanDuration>,
    /// Example: `updates = "30d"` (the default)
    updates: Option<HumanDuration>,
    /// Example: `history = "30d"` (the default)
    history: Option<HumanDuration>,
    /// Example: `loads = "90d"` (the default)
    loads: Option<HumanDuration>,
    /// Example: `http = "30d"` (the default)
    http: Option<HumanDuration>,
    /// Example: `claude_calls = "400d"` (the default)
    claude_calls: Option<HumanDuration>,
    /// Example: `chat_calls = "90d"` (the default)
    chat_calls: Option<HumanDuration>,
    /// Example: `approvals = "90d"` (the default)
    approvals: Option<HumanDuration>,
    /// Example: `webhooks = "30d"` (the default)
    webhooks: Option<HumanDuration>,
    /// Example: `alerts = "90d"` (the default; at least 31 days, so a month's
    /// threshold is told once)
    alerts: Option<HumanDuration>,
    /// Example: `attachments = "30d"` (the default)
    attachments: Option<HumanDuration>,
    /// Example: `compile_cache = "7d"` (the default)
    compile_cache: Option<HumanDuration>,
}

impl RawRetention {
    /// The validated section: every period at least an hour, and the ledger
    /// at least 31 days (the month's budget is counted from it).
    pub(crate) fn validate(self) -> Result<Retention, String> {
        let default = Retention::default();
        let pick = |field: &str, value: Option<HumanDuration>, default: Duration, least: Duration| {
            let value = value.map_or(default, |v| v.0);
            if value < least {
                return Err(format!(
                    "retention.{field}: must be at least {}",
                    HumanDuration(least)
                ));
            }
            Ok(value)
        };
        let hour = Duration::from_secs(3600);
        Ok(Retention {
            runs: pick("runs", self.runs, default.runs, hour)?,
            run_output: pick("run_output", self.run_output, default.run_output, hour)?,
            updates: pick("updates", self.updates, default.updates, hour)?,
            history: pick("history", self.history, default.history, hour)?,
            loads: pick("loads", self.loads, default.loads, hour)?,
            http: pick("http", self.http, default.http, hour)?,
            claude_calls: pick("claude_calls", self.claude_calls, default.claude_calls, 31 * DAY)?,
            chat_calls: pick("chat_calls", self.chat_calls, default.chat_calls, hour)?,
            approvals: pick("approvals", self.approvals, default.approvals, hour)?,
            webhooks: pick("webhooks", self.webhooks, default.webhooks, hour)?,
            alerts: pick("alerts", self.alerts, default.alerts, 31 * DAY)?,
            attachments: pick("attachments", self.attachments, default.attachments, hour)?,
            compile_cache: pick("compile_cache", self.compile_cache, default.compile_cache, hour)?,
        })
    }
}
