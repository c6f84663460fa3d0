//! The reading tools: what Claude may look at outright — the schedules, the
//! runs, one run whole, the webhooks and watches, this month's Claude
//! spend, the changes made. Each answers JSON, times in the schedule's
//! zone (else the host's).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::records;
use crate::capabilities::claude::spend::report;
use crate::host::runs::{self, RunOutcome, RunRecord};
use crate::host::Host;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{self, alerts, state, Schedule, Timing};

/// The most runs one answer lists.
const MAX_RUNS: u64 = 50;

/// The next fire times a schedule is shown with.
const NEXT_RUNS: usize = 3;

/// `time` as a person reads it in `zone`: "Mon 9 Dec 07:00".
pub fn when(time: DateTime<Utc>, zone: Tz) -> String {
    time.with_timezone(&zone).format("%a %-d %b %H:%M").to_string()
}

/// The next `NEXT_RUNS` fire times of `schedule` after `now`, in its zone.
pub fn next_runs(schedule: &Schedule, now: DateTime<Utc>) -> Vec<String> {
    let mut at = now;
    let mut next = Vec::new();
    while next.len() < NEXT_RUNS {
        let Some(time) = schedule.timing.next_after(at, schedule.zone) else {
            break;
        };
        next.push(when(time, schedule.zone));
        at = time;
    }
    next
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
pub async fn schedules(host: &Host) -> anyhow::Result<Value> {
    let (schedules, refused) = schedule::load_all(&host.config(), host_zone());
    let failing = alerts::failing(host.db()).await?;
    let now = Utc::now();
    let mut listed = Vec::new();
    for s in &schedules {
        let paused = state::is_paused(host.db(), &s.name).await?;
        let last = runs::recent(host.db(), Some(&s.name), 1).await?.pop();
        let streak = failing.iter().find(|f| f.schedule == s.name);
        listed.push(json!({
            "name": s.name,
            "plugin": s.plugin,
            "when": timing_in_words(s),
            "cron": s.timing.cron(),
            "every": s.timing.every().map(|e| crate::config::units::HumanDuration(e).to_string()),
            "timezone": s.zone.name(),
            "next": if paused { Vec::new() } else { next_runs(s, now) },
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
    let zones = Zones::new(host);
    let read = if failed { 500 } else { limit as u32 };
    let listed: Vec<Value> = runs::recent(host.db(), schedule, read)
        .await?
        .iter()
        .filter(|r| !failed || (!r.succeeded() && r.outcome != RunOutcome::Running))
        .take(limit as usize)
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
    fn new(host: &Host) -> Zones {
        let (schedules, _) = schedule::load_all(&host.config(), host_zone());
        Zones {
            schedules: schedules.into_iter().map(|s| (s.name, s.zone)).collect(),
        }
    }

    fn of(&self, run: &RunRecord) -> Tz {
        run.schedule
            .as_ref()
            .and_then(|name| self.schedules.iter().find(|(s, _)| s == name))
            .map_or_else(host_zone, |(_, zone)| *zone)
    }
}

/// The reading tool `tool`'s answer to `input`: its JSON, or what Claude is
/// told was wrong with the input.
pub async fn answer(
    host: &Host,
    tool: &str,
    input: &Map<String, Value>,
) -> anyhow::Result<Result<Value, String>> {
    Ok(Ok(match tool {
        "schedules" => schedules(host).await?,
        "runs" => runs(host, input).await?,
        "run" => return run(host, input).await,
        "webhooks" => webhooks(host),
        "watches" => watches(host),
        "spend" => spend(host).await?,
        "changes" => changes(host).await?,
        other => return Ok(Err(format!("`{other}` is not a reading tool"))),
    }))
}
