//! What the status page shows, gathered from the host and the SQLite file
//! in one pass: each trigger's own section (schedules, the bot, webhooks,
//! watches, wake-ups: `triggers::NAME::status`), the latest runs, the
//! plugins and Claude spend.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StatusSource;
use crate::capabilities::claude::spend::report::{month_report, CreditReport};
use crate::display::{brief, local};
use crate::host::runs::{self, RunStatus};
use crate::host::tool_calls;
use crate::os::zone::host_zone;
use crate::plugin::loads::{self, LoadOutcome};
use crate::serve::{control, mission_tools};
use crate::triggers::schedule::status::ScheduleStatus;
use crate::triggers::telegram::status::TelegramStatus;
use crate::triggers::wakeups::status::WakeUpsStatus;
use crate::triggers::watch::status::WatchStatus;
use crate::triggers::webhooks::status::WebhooksStatus;
use crate::triggers::{schedule, telegram, wakeups, watch, webhooks};

/// How many runs the recent-runs table shows.
const RECENT_RUNS: u32 = 25;

/// Everything on the page.
#[derive(Debug, Serialize)]
pub struct Status {
    /// When this was gathered, host time.
    pub generated_at: String,
    /// Since when the host runs.
    pub host_started_at: Option<String>,
    /// The schedules, by name.
    pub schedules: Vec<ScheduleStatus>,
    /// Schedule files that are refused, with why.
    pub refused_schedules: Vec<String>,
    /// The latest runs, newest first.
    pub runs: Vec<RunStatus>,
    /// The plugins, by name.
    pub plugins: Vec<PluginStatus>,
    /// While the host starts: the configured plugins not loaded yet.
    pub loading: Vec<String>,
    /// Once it has started: the configured plugins that do not serve, and why.
    pub not_serving: Vec<NotServing>,
    /// The bot, if configured.
    pub telegram: Option<TelegramStatus>,
    /// Claude spend, if configured.
    pub claude: Option<ClaudeStatus>,
    /// The webhooks' latest deliveries, if configured.
    pub webhooks: Option<WebhooksStatus>,
    /// The watches, by name.
    pub watches: Vec<WatchStatus>,
    /// The wake-ups waiting.
    pub wakeups: WakeUpsStatus,
    /// The latest changes made through the host's own tools, newest first.
    pub changes: Vec<ChangeStatus>,
    /// The host's memory.
    pub memory: Memory,
}

/// The host process's memory, as far as this system tells it.
#[derive(Debug, Serialize)]
pub struct Memory {
    /// Resident set size in bytes (Linux).
    pub rss_bytes: Option<u64>,
    /// Bytes the allocator has handed out and not had back (glibc): what
    /// the host holds, as against what fragmentation adds to the RSS.
    pub heap_in_use_bytes: Option<u64>,
}

impl Memory {
    /// This process's memory now.
    pub fn now() -> Memory {
        let rss_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            });
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallinfo2 only reads the allocator's counters.
        let heap_in_use_bytes = {
            let info = unsafe { libc::mallinfo2() };
            Some((info.uordblks + info.hblkhd) as u64)
        };
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let heap_in_use_bytes = None;
        Memory {
            rss_bytes,
            heap_in_use_bytes,
        }
    }

    /// `RSS 38.2 MB, heap in use 12.0 MB`, or what of it is known.
    pub fn summary(&self) -> Option<String> {
        let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
        match (self.rss_bytes, self.heap_in_use_bytes) {
            (Some(rss), Some(heap)) => Some(format!("RSS {}, heap in use {}", mb(rss), mb(heap))),
            (Some(rss), None) => Some(format!("RSS {}", mb(rss))),
            (None, Some(heap)) => Some(format!("heap in use {}", mb(heap))),
            (None, None) => None,
        }
    }
}

/// One plugin's line.
#[derive(Debug, Serialize)]
pub struct PluginStatus {
    /// Its name.
    pub name: String,
    /// `task` or `chat`.
    pub world: String,
    /// The first 12 hex digits of the serving version's hash.
    pub hash: String,
    /// When the serving version was loaded, host time.
    pub loaded_at: String,
    /// The latest reload (or load) and when: `reloaded 10:42:03`.
    pub last_reload: Option<String>,
    /// Why the latest new version was refused, if it was.
    pub refused: Option<String>,
}

/// A configured plugin that does not serve.
#[derive(Debug, Serialize)]
pub struct NotServing {
    /// Its name.
    pub name: String,
    /// Why: its file is not there yet (still being built, or never), or
    /// why its load was refused.
    pub why: String,
}

/// Claude spend.
#[derive(Debug, Serialize)]
pub struct ClaudeStatus {
    /// Spent today, dollars.
    pub today_usd: f64,
    /// Spent this month.
    pub month_usd: f64,
    /// This month at the last seven days' rate.
    pub projected_month_usd: f64,
    /// `[claude.budget] monthly_usd`.
    pub monthly_budget_usd: Option<f64>,
    /// Projected share of the monthly budget, percent.
    pub projected_percent: Option<u32>,
    /// Share of prompt tokens read from the cache this month, percent.
    pub cache_hit_percent: u32,
    /// The Agent SDK credit, if tracked.
    pub credit: Option<CreditReport>,
    /// The latest calls Claude made of plugins' tools, newest first.
    pub tool_calls: Vec<ToolCallStatus>,
}

/// One call of a plugin's tool, as the page shows it.
#[derive(Debug, Serialize)]
pub struct ToolCallStatus {
    /// When, host time.
    pub at: String,
    /// The plugin whose Claude called it.
    pub caller: String,
    /// `PLUGIN.TOOL`.
    pub tool: String,
    /// `ok`, `error`, `denied`, `trapped`, `timed_out`, `out_of_memory`.
    pub outcome: String,
    /// How long it took.
    pub ms: u64,
}

/// One change made through the host's own tools, as the page shows it.
#[derive(Debug, Serialize)]
pub struct ChangeStatus {
    /// When, host time.
    pub at: String,
    /// The tool: `create_schedule`, `pause`…
    pub tool: String,
    /// The schedule.
    pub target: String,
    /// Who pressed for it, or that the config allowed it outright.
    pub by: String,
}

/// Gathers the page as of `now`.
pub async fn gather(host: &dyn StatusSource, now: DateTime<Utc>) -> anyhow::Result<Status> {
    let db = host.db();
    let config = host.config();
    let recent = runs::recent(db, None, RECENT_RUNS)
        .await?
        .iter()
        .map(|run| RunStatus::of(run, None))
        .collect();
    let mut plugins = Vec::new();
    for plugin in host.plugins() {
        let (last, _) = loads::latest(db, plugin.name().as_str()).await?;
        plugins.push(PluginStatus {
            name: plugin.name().to_string(),
            world: plugin.config.world.to_string(),
            hash: plugin.hash.short().to_owned(),
            loaded_at: local(plugin.loaded_at),
            last_reload: last.as_ref().map(|l| format!("{} {}", l.outcome, local(l.at))),
            refused: last
                .filter(|l| matches!(l.outcome, LoadOutcome::Refused | LoadOutcome::Missing))
                .and_then(|l| l.error)
                .map(|error| brief(&error, None)),
        });
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    let missing = config
        .plugins
        .iter()
        .filter(|p| !plugins.iter().any(|loaded| loaded.name == p.name.as_str()));
    let (mut loading, mut not_serving) = (Vec::new(), Vec::new());
    let still_loading = host.loading();
    for plugin in missing {
        let name = plugin.name.to_string();
        if still_loading {
            loading.push(name);
            continue;
        }
        let why = if plugin.wasm.exists() {
            let (last, _) = loads::latest(db, &name).await?;
            last.and_then(|l| l.error)
                .map_or_else(|| "not loaded".to_owned(), |error| brief(&error, None))
        } else {
            format!("not built yet: {} does not exist", plugin.wasm.display())
        };
        not_serving.push(NotServing { name, why });
    }
    let (schedules, refused_schedules) = schedule::status::section(db, &config, now).await?;
    let telegram = match &config.telegram {
        Some(bot) => Some(telegram::status::section(db, bot, host.bot_connected(), now).await?),
        None => None,
    };
    let webhooks = match &config.webhooks {
        Some(configured) => Some(webhooks::status::section(db, configured).await?),
        None => None,
    };
    let watches = watch::status::section(db, &config.watches).await?;
    let wakeups = wakeups::status::section(db).await?;
    let changes = mission_tools::records::recent(db, None, 10)
        .await?
        .into_iter()
        .map(|c| ChangeStatus {
            at: local(c.at),
            tool: c.tool,
            target: c.target,
            by: c.by_name.unwrap_or_else(|| "allowed outright".to_owned()),
        })
        .collect();
    let claude = match &config.claude {
        Some(claude) => {
            let report = month_report(db, claude, now, host_zone()).await?;
            Some(ClaudeStatus {
                today_usd: report.today_usd,
                month_usd: report.month_usd,
                projected_month_usd: report.projected_month_usd,
                monthly_budget_usd: report.monthly_budget_usd,
                projected_percent: report
                    .monthly_budget_usd
                    .filter(|b| *b > 0.0)
                    .map(|b| (report.projected_month_usd / b * 100.0).round() as u32),
                cache_hit_percent: (report.total.cache_hit_rate * 100.0).round() as u32,
                credit: report.credit,
                tool_calls: tool_calls::recent(db, 10)
                    .await?
                    .into_iter()
                    .map(|c| ToolCallStatus {
                        at: local(c.at),
                        caller: c.caller,
                        tool: format!("{}.{}", c.plugin, c.tool),
                        outcome: c.outcome,
                        ms: c.ms,
                    })
                    .collect(),
            })
        }
        None => None,
    };
    let heartbeat = control::last_heartbeat(db).await?;
    Ok(Status {
        generated_at: local(now),
        host_started_at: heartbeat.map(|h| local(h.started_at)),
        schedules,
        refused_schedules,
        runs: recent,
        plugins,
        loading,
        not_serving,
        telegram,
        claude,
        webhooks,
        watches,
        wakeups,
        changes,
        memory: Memory::now(),
    })
}
