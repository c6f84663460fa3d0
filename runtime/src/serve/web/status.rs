//! What the status page shows, gathered from the host and the SQLite file
//! in one pass: schedules with their next run and recent runs, the latest
//! runs, plugins, the Telegram bot and Claude spend.

use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::Serialize;

use super::chart::{self, DurationChart};
use super::StatusSource;
use crate::approvals;
use crate::host::tool_calls;

use crate::capabilities::claude::spend::report::{month_report, CreditReport};
use crate::config::units::span;
use crate::host::runs::{self, RunOutcome, RunRecord};
use crate::os::zone::host_zone;
use crate::plugin::call::HandlerRole;
use crate::plugin::loads::{self, LoadOutcome};
use crate::serve::control;
use crate::triggers::schedule;
use crate::triggers::telegram::chat_calls::shadow_report;
use crate::triggers::watch::seen::records as watch_records;
use crate::triggers::webhooks::deliveries;

/// How many runs each schedule's strip shows.
const STRIP_RUNS: u32 = 20;
/// How many runs the recent-runs table shows.
const RECENT_RUNS: u32 = 25;
/// The most runs per schedule the duration chart reads.
const CHART_RUNS: u32 = 2000;

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
    /// The bot, if configured.
    pub telegram: Option<TelegramStatus>,
    /// Claude spend, if configured.
    pub claude: Option<ClaudeStatus>,
    /// The webhooks' latest deliveries, if configured.
    pub webhooks: Option<WebhooksStatus>,
    /// The watches, by name.
    pub watches: Vec<WatchStatus>,
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

/// One schedule's line.
#[derive(Debug, Serialize)]
pub struct ScheduleStatus {
    /// Its name.
    pub name: String,
    /// The plugin it runs.
    pub plugin: String,
    /// Its cron expression or interval.
    pub when: String,
    /// The zone the cron is read in.
    pub zone: String,
    /// The next run, in the schedule's own zone and named with it; none if
    /// paused or never.
    pub next: Option<String>,
    /// How long until then: `in 3h 12m`.
    pub next_in: Option<String>,
    /// Paused by `mission pause` or the page.
    pub paused: bool,
    /// Its latest run.
    pub last: Option<RunStatus>,
    /// Its recent runs, oldest first, for the strip of bars.
    pub strip: Vec<RunStatus>,
    /// Its run durations over 30 days (up to [`CHART_RUNS`] runs).
    pub durations: Option<DurationChart>,
    /// Its failure streak: `4 failed runs since Tue 22:00`.
    pub streak: Option<String>,
}

impl ScheduleStatus {
    /// Whether its latest run failed.
    pub fn failing(&self) -> bool {
        self.last.as_ref().is_some_and(|r| r.failed)
    }
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The run's id.
    pub id: i64,
    /// The schedule it ran for, or the plugin if none.
    pub what: String,
    /// When it started, host time.
    pub started_at: String,
    /// How long it took: `1.4 s`; empty while running.
    pub took: String,
    /// Height of its bar in the strip, 10 to 100 (longer runs are taller).
    pub bar: u32,
    /// How it ended.
    pub outcome: String,
    /// Whether it ended badly.
    pub failed: bool,
    /// Its error, if it failed.
    pub error: Option<String>,
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

/// The bot.
#[derive(Debug, Serialize)]
pub struct TelegramStatus {
    /// Whether it polls (its token is set).
    pub polling: bool,
    /// The plugin that answers.
    pub handler: String,
    /// When the last message came, host time.
    pub last_message_at: Option<String>,
    /// Updates stored and not yet handled.
    pub pending: u64,
    /// The shadow handlers, with their last day's figures.
    pub shadows: Vec<ShadowStatus>,
    /// The latest tool-use approvals.
    pub approvals: Vec<ApprovalStatus>,
}

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

/// One watch as the page shows it.
#[derive(Debug, Serialize)]
pub struct WatchStatus {
    /// Its name.
    pub name: String,
    /// What it watches: the directories, with the pattern.
    pub what: String,
    /// The plugin it runs.
    pub plugin: String,
    /// When it last took stock, host time, and how many files it saw.
    pub seen: Option<String>,
    /// Its runs in all, and how the latest ended.
    pub runs: String,
    /// Whether the latest run failed.
    pub failed: bool,
    /// Why it is not watching and since when, if it is not (a directory
    /// gone).
    pub broken: Option<String>,
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

/// A shadow handler over the last day.
#[derive(Debug, Serialize)]
pub struct ShadowStatus {
    /// The plugin.
    pub plugin: String,
    /// Messages it was given.
    pub messages: u64,
    /// Its median latency.
    pub p50_ms: u64,
    /// Calls that failed or timed out.
    pub failed: u64,
}

/// One tool use asked about.
#[derive(Debug, Serialize)]
pub struct ApprovalStatus {
    /// When, host time.
    pub asked_at: String,
    /// The tool.
    pub tool: String,
    /// What it would do.
    pub summary: String,
    /// What came of it.
    pub outcome: String,
    /// Whether the tool ran.
    pub allowed: bool,
    /// Who decided, for a press.
    pub by: Option<String>,
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

/// Gathers the page as of `now`.
pub async fn gather(host: &dyn StatusSource, now: DateTime<Utc>) -> anyhow::Result<Status> {
    let db = host.db();
    let config = host.config();
    let mut schedules = Vec::new();
    // Read here rather than through the host, which logs each refused file:
    // the page shows them instead, without a log line every refresh.
    let (files, refused) = schedule::load_all(&config, host_zone());
    let streaks = schedule::alerts::failing(db).await?;
    for s in files {
        let paused = schedule::state::is_paused(db, &s.name).await?;
        let next = (!paused).then(|| s.timing.next_after(now, s.zone)).flatten();
        let mut strip: Vec<RunStatus> = runs::recent(db, Some(&s.name), STRIP_RUNS)
            .await?
            .iter()
            .map(|run| run_status(run, Some(s.zone)))
            .collect();
        strip.reverse();
        let month = now - chrono::Duration::days(chart::DAYS);
        let durations = runs::durations(db, &s.name, month, CHART_RUNS).await?;
        let streak = streaks.iter().find(|f| f.schedule == s.name).map(|f| {
            let since = f.since.with_timezone(&s.zone).format("%a %H:%M %Z");
            format!(
                "{} failed run{} since {since}",
                f.failures,
                if f.failures == 1 { "" } else { "s" }
            )
        });
        schedules.push(ScheduleStatus {
            name: s.name.clone(),
            plugin: s.plugin.clone(),
            when: s.timing.to_string(),
            zone: s.zone.name().to_owned(),
            next: next.map(|t| in_zone(t, s.zone)),
            next_in: next.map(|t| format!("in {}", span((t - now).to_std().unwrap_or_default()))),
            paused,
            last: strip.last().cloned(),
            strip,
            durations: chart::chart(&durations, now, |ms| seconds(Duration::from_millis(ms))),
            streak,
        });
    }
    let recent = runs::recent(db, None, RECENT_RUNS)
        .await?
        .iter()
        .map(|run| run_status(run, None))
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
    let loading = match host.loading() {
        true => config
            .plugins
            .iter()
            .map(|p| p.name.to_string())
            .filter(|name| !plugins.iter().any(|loaded| &loaded.name == name))
            .collect(),
        false => Vec::new(),
    };
    let telegram = match &config.telegram {
        Some(telegram) => {
            let (last, pending): (Option<i64>, u64) = db
                .call(|c| {
                    c.query_row(
                        "SELECT max(received_at), count(*) FILTER (WHERE handled_at IS NULL) FROM telegram_updates",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                })
                .await?;
            let day = shadow_report(db, now - chrono::Duration::hours(24), now).await?;
            let shadows = telegram
                .shadow
                .iter()
                .map(|name| {
                    let figures = day
                        .handlers
                        .iter()
                        .find(|h| h.plugin == name.as_str() && h.role == HandlerRole::Shadow);
                    ShadowStatus {
                        plugin: name.to_string(),
                        messages: figures.map_or(0, |f| f.messages),
                        p50_ms: figures.map_or(0, |f| f.p50_ms),
                        failed: figures.map_or(0, |f| f.errors + f.timeouts + f.over_budget),
                    }
                })
                .collect();
            let approvals = approvals::recent(db, 5)
                .await?
                .into_iter()
                .map(|a| ApprovalStatus {
                    asked_at: local(a.asked_at),
                    allowed: a.outcome.allowed(),
                    outcome: a.outcome.to_string(),
                    tool: a.tool,
                    summary: a.summary,
                    by: a.decided_by_name,
                })
                .collect();
            Some(TelegramStatus {
                polling: host.bot_connected(),
                handler: telegram.handler.to_string(),
                last_message_at: last.map(|ms| local(crate::db::datetime(ms))),
                pending,
                shadows,
                approvals,
            })
        }
        None => None,
    };
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
    let webhooks = match &config.webhooks {
        Some(webhooks) => Some(WebhooksStatus {
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
        }),
        None => None,
    };
    let seen = watch_records(db).await?;
    let watches = config
        .watches
        .iter()
        .map(|w| {
            let record = seen.iter().find(|r| r.watch == w.name);
            let paths: Vec<String> = w.paths.iter().map(|p| p.display().to_string()).collect();
            WatchStatus {
                name: w.name.clone(),
                what: match &w.pattern {
                    Some(pattern) => format!("{pattern} in {}", paths.join(", ")),
                    None => paths.join(", "),
                },
                plugin: w.plugin.to_string(),
                seen: record.map(|r| format!("{} ({} files)", local(r.seen_at), r.files)),
                runs: match record {
                    Some(r) => format!(
                        "{} run(s){}",
                        r.runs,
                        r.last_outcome
                            .as_deref()
                            .map(|o| format!(", latest {o}"))
                            .unwrap_or_default()
                    ),
                    None => "not started".to_owned(),
                },
                failed: record
                    .and_then(|r| r.last_outcome.as_deref())
                    .is_some_and(|o| o != "succeeded"),
                broken: record.and_then(|r| {
                    let since = r.broken_since.map(local).unwrap_or_default();
                    r.broken
                        .as_ref()
                        .map(|reason| format!("not watching since {since}: {reason}"))
                }),
            }
        })
        .collect();
    let heartbeat = control::last_heartbeat(db).await?;
    Ok(Status {
        generated_at: local(now),
        host_started_at: heartbeat.map(|h| local(h.started_at)),
        schedules,
        refused_schedules: refused.iter().map(|e| brief(&e.to_string(), None)).collect(),
        runs: recent,
        plugins,
        loading,
        telegram,
        claude,
        webhooks,
        watches,
        memory: Memory::now(),
    })
}

/// `run` for the page, its start in `zone` (a schedule's), else host time.
fn run_status(run: &RunRecord, zone: Option<chrono_tz::Tz>) -> RunStatus {
    let took = run
        .finished_at
        .map(|end| (end - run.started_at).to_std().unwrap_or_default());
    let failed = !matches!(run.outcome, RunOutcome::Succeeded | RunOutcome::Running);
    RunStatus {
        id: run.id,
        what: run.schedule.clone().unwrap_or_else(|| run.plugin.clone()),
        started_at: zone.map_or_else(|| local(run.started_at), |zone| in_zone(run.started_at, zone)),
        took: took.map(seconds).unwrap_or_default(),
        // 10% for an instant run, full height at a minute or more, on a
        // log scale so both short and long runs show.
        bar: took.map_or(10, |t| {
            let ms = t.as_millis().max(1) as f64;
            (10.0 + 90.0 * (ms.log10() / 60_000f64.log10()).min(1.0)).round() as u32
        }),
        outcome: run.state(),
        failed,
        error: run.error.as_deref().map(|error| brief(error, Some(run.id))),
    }
}

/// The lines of an error the page shows.
const BRIEF_LINES: usize = 3;
/// The characters of each.
const BRIEF_LINE_CHARS: usize = 200;

/// `error` cut to its first few lines, each cut short, saying where the
/// whole of it is: the page stays small whatever a plugin returned.
fn brief(error: &str, run: Option<i64>) -> String {
    let mut lines = error.lines();
    let mut shown: Vec<String> = Vec::new();
    let mut cut = false;
    for line in lines.by_ref().take(BRIEF_LINES) {
        let kept: String = line.chars().take(BRIEF_LINE_CHARS).collect();
        cut |= kept.len() < line.len();
        shown.push(kept);
    }
    cut |= lines.next().is_some();
    let mut brief = shown.join("\n");
    if cut {
        brief.push_str(&match run {
            Some(id) => format!(" … (the whole error: mission runs --id {id})"),
            None => " … (the whole error is in the host's log)".to_owned(),
        });
    }
    brief
}

/// `2026-12-01 07:00:00 CET`: a time in `zone`, which it names.
fn in_zone(time: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    time.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `2026-12-01 07:30:00`, host time.
fn local(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `1.4 s`, `250 ms`.
fn seconds(took: Duration) -> String {
    match took.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_is_shown_in_brief_with_where_the_rest_is() {
        let error = format!("{}\nsecond\nthird\nfourth", "x".repeat(5 << 20));
        let shown = brief(&error, Some(42));
        assert!(shown.len() < 300, "{} bytes", shown.len());
        assert!(shown.starts_with(&"x".repeat(200)));
        assert!(shown.contains("second\nthird …"), "{shown}");
        assert!(
            shown.ends_with("(the whole error: mission runs --id 42)"),
            "{shown}"
        );
        assert_eq!(brief("short\nand sweet", Some(1)), "short\nand sweet");
    }
}
