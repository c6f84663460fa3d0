//! The reading tools: what Claude may look at outright — the schedules, the
//! runs, one run whole, the webhooks and watches, this month's Claude
//! spend, the changes made. Each answers JSON, times in the schedule's
//! zone (else the host's).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::records;
use super::schedule_cache::{next_times, ScheduleCache};
use crate::capabilities::claude::spend::report;
use crate::capabilities::later::reminders::Reminder;
use crate::capabilities::later::wakeups::{self, Pending};
use crate::config::claude::HOST_TOOLS;
use crate::host::runs::{self, RunFilter, RunRecord};
use crate::host::Host;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{alerts, state, Schedule, Timing};

/// The most runs one answer lists.
const MAX_RUNS: u64 = 50;

/// `time` as a person reads it in `zone`: "Mon 9 Dec 07:00".
pub fn when(time: DateTime<Utc>, zone: Tz) -> String {
    time.with_timezone(&zone).format("%a %-d %b %H:%M").to_string()
}

/// The next few fire times of `schedule` after `now`, in its zone.
pub fn next_runs(schedule: &Schedule, now: DateTime<Utc>) -> Vec<String> {
    next_times(schedule, now)
        .into_iter()
        .map(|time| when(time, schedule.zone))
        .collect()
}

/// When `schedule` fires, in words: "at 07:00 Monday–Friday", "every 90m",
/// "only after sync-shop".
pub fn timing_in_words(schedule: &Schedule) -> String {
    match &schedule.timing {
        Timing::Cron(cron) => cron.in_words(),
        Timing::Every(_) => schedule.timing.to_string(),
        Timing::OnlyAfter => {
            let parents: Vec<&str> = schedule.after.iter().map(|a| a.schedule.as_str()).collect();
            format!("only after {}", parents.join(", "))
        }
    }
}

/// `schedules`: each schedule — when in words and its zone, the next runs,
/// paused, failing since, its last run, where it came from — and the files
/// refused.
pub async fn schedules(host: &Host, cache: &ScheduleCache) -> anyhow::Result<Value> {
    let (schedules, refused) = cache.load(&host.config());
    let failing = alerts::failing(host.db()).await?;
    let paused = state::paused(host.db()).await?;
    let names = schedules.iter().map(|s| s.name.clone()).collect();
    let mut latest = runs::latest_of(host.db(), names).await?;
    let now = Utc::now();
    let mut listed = Vec::new();
    for s in &schedules {
        let paused = paused.contains(&s.name);
        let last = latest.remove(&s.name);
        let streak = failing.iter().find(|f| f.schedule == s.name);
        listed.push(json!({
            "name": s.name,
            "plugin": s.plugin,
            "when": timing_in_words(s),
            "cron": s.timing.cron(),
            "every": s.timing.every().map(|e| crate::config::units::HumanDuration(e).to_string()),
            "timezone": s.zone.name(),
            "next": match paused {
                true => Vec::new(),
                false => cache.next_times(s, now).into_iter().map(|t| when(t, s.zone)).collect(),
            },
            "paused": paused,
            "failing_since": streak.map(|f| when(f.since, s.zone)),
            "failures_in_a_row": streak.map(|f| f.failures),
            "last_run": last.map(|r| json!({
                "id": r.id,
                "outcome": r.outcome.as_str(),
                "at": when(r.started_at, s.zone),
            })),
            "config": s.values.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<_, _>>(),
            "from_the_chat": s.origin,
        }));
    }
    let refused: Vec<Value> = refused
        .iter()
        .map(|e| json!({ "file": e.file.display().to_string(), "error": e.message }))
        .collect();
    Ok(json!({ "schedules": listed, "refused_files": refused }))
}

/// `runs`: the latest runs, of one schedule or all, failed ones only if
/// asked, newest first; each with the cause of its error.
pub async fn runs(host: &Host, input: &Map<String, Value>) -> anyhow::Result<Value> {
    let schedule = input.get("schedule").and_then(Value::as_str);
    let failed = input.get("failed").and_then(Value::as_bool).unwrap_or(false);
    let limit = input
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .clamp(1, MAX_RUNS);
    let filter = RunFilter {
        schedule: schedule.map(str::to_owned),
        failed,
        ..RunFilter::default()
    };
    let found = runs::search(host.db(), filter, limit as u32).await?;
    let zones = Zones::of_runs(host, &found);
    let listed: Vec<Value> = found
        .iter()
        .map(|r| {
            let zone = zones.of(r);
            json!({
                "id": r.id,
                "schedule": r.schedule,
                "plugin": r.plugin,
                "started_by": r.trigger.to_string(),
                "outcome": r.outcome.as_str(),
                "started": when(r.started_at, zone),
                "took_ms": r.finished_at.map(|end| (end - r.started_at).num_milliseconds()),
                "summary": r.summary,
                "cause": r.error.as_deref().map(alerts::cause),
            })
        })
        .collect();
    Ok(json!({ "runs": listed, "timezone_note": "times in each run's schedule's zone" }))
}

/// `run`: one run whole — its output and its whole error.
pub async fn run(host: &Host, input: &Map<String, Value>) -> anyhow::Result<Result<Value, String>> {
    let Some(id) = input.get("id").and_then(Value::as_i64) else {
        return Ok(Err("`id`: the run's id (a number) is required".into()));
    };
    Ok(match runs::get(host.db(), id).await? {
        Some(record) => Ok(serde_json::to_value(&record)?),
        None => Err(format!("there is no run {id}")),
    })
}

/// `webhooks`: each webhook and the plugin it runs.
pub fn webhooks(host: &Host) -> Value {
    let config = host.config();
    let hooks: Vec<Value> = config
        .webhooks
        .iter()
        .flat_map(|w| &w.hooks)
        .map(|hook| json!({ "name": hook.name, "plugin": hook.plugin.as_str(), "path": format!("/hooks/{}", hook.name) }))
        .collect();
    json!({ "webhooks": hooks })
}

/// `watches`: each watch, its directories, pattern and plugin.
pub fn watches(host: &Host) -> Value {
    let watches: Vec<Value> = host
        .config()
        .watches
        .iter()
        .map(|w| {
            json!({
                "name": w.name,
                "paths": w.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "pattern": w.pattern,
                "plugin": w.plugin.as_str(),
            })
        })
        .collect();
    json!({ "watches": watches })
}

/// `spend`: this month's Claude spend by plugin, under the budgets and
/// the credit.
pub async fn spend(host: &Host) -> anyhow::Result<Value> {
    let config = host.config();
    let Some(claude) = &config.claude else {
        return Ok(json!({ "spend": "Claude is not configured here." }));
    };
    let report = report::month_report(host.db(), claude, Utc::now(), host_zone()).await?;
    Ok(json!({ "spend": report.summary() }))
}

/// `changes`: the latest changes made through these tools.
pub async fn changes(host: &Host) -> anyhow::Result<Value> {
    let changes = records::recent(host.db(), None, 20).await?;
    Ok(json!({ "changes": changes }))
}

/// The zone a run's times are told in: its schedule's, else the host's.
struct Zones {
    schedules: Vec<(String, Tz)>,
}

impl Zones {
    /// The zones of the schedules `runs` ran for, read from their files.
    fn of_runs(host: &Host, runs: &[RunRecord]) -> Zones {
        let config = host.config();
        let mut schedules: Vec<(String, Tz)> = Vec::new();
        for name in runs.iter().filter_map(|r| r.schedule.as_ref()) {
            if schedules.iter().any(|(known, _)| known == name) {
                continue;
            }
            let file = config.schedules_dir.join(format!("{name}.toml"));
            if let Ok(s) = Schedule::load(&file, &config, host_zone()) {
                schedules.push((s.name, s.zone));
            }
        }
        Zones { schedules }
    }

    fn of(&self, run: &RunRecord) -> Tz {
        run.schedule
            .as_ref()
            .and_then(|name| self.schedules.iter().find(|(s, _)| s == name))
            .map_or_else(host_zone, |(_, zone)| *zone)
    }
}

/// The reminders waiting for `chat`, the first due first.
pub async fn reminders_in(host: &Host, chat: i64) -> anyhow::Result<Vec<(Pending, Reminder)>> {
    let mut waiting = Vec::new();
    for pending in wakeups::pending(host.db()).await? {
        if pending.plugin != HOST_TOOLS {
            continue;
        }
        let Some(stored) = wakeups::stored(host.db(), pending.id).await? else {
            continue;
        };
        if let Some(reminder) = Reminder::read(&stored.payload).filter(|r| r.chat == chat) {
            waiting.push((pending, reminder));
        }
    }
    Ok(waiting)
}

/// `reminders`: those waiting for the call's chat.
async fn reminders(host: &Host, chat: Option<i64>) -> anyhow::Result<Value> {
    let Some(chat) = chat else {
        return Ok(json!({ "reminders": [], "note": "this call serves no chat" }));
    };
    let zone = host_zone();
    let listed: Vec<Value> = reminders_in(host, chat)
        .await?
        .into_iter()
        .map(|(pending, reminder)| {
            json!({ "id": pending.id, "at": when(pending.due_at, zone), "timezone": zone.name(), "text": reminder.text })
        })
        .collect();
    Ok(json!({ "reminders": listed }))
}

/// The reading tool `tool`'s answer to `input` for a call serving `chat`:
/// its JSON, or what Claude is told was wrong with the input.
pub async fn answer(
    host: &Host,
    cache: &ScheduleCache,
    tool: &str,
    chat: Option<i64>,
    input: &Map<String, Value>,
) -> anyhow::Result<Result<Value, String>> {
    Ok(Ok(match tool {
        "reminders" => reminders(host, chat).await?,
        "schedules" => schedules(host, cache).await?,
        "runs" => runs(host, input).await?,
        "run" => return run(host, input).await,
        "webhooks" => webhooks(host),
        "watches" => watches(host),
        "spend" => spend(host).await?,
        "changes" => changes(host).await?,
        other => return Ok(Err(format!("`{other}` is not a reading tool"))),
    }))
}
