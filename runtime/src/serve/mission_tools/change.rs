//! The acting and changing tools: what a call would do, planned and checked
//! (an unknown schedule, a bad cron, a taken name: refused here, before
//! anyone is asked); the card that says so in words a person checks at a
//! glance; the press; the change made, and recorded.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::reading::{next_runs, reminders_in, timing_in_words, when};
use super::records::{self, ChangeRecord};
use super::schedule_files::{self, Planned};
use crate::approvals::{Approver, Asking, ToolUse};
use crate::capabilities::later::reminders::Reminder;
use crate::capabilities::later::wakeups::{self, Added, NewWakeUp};
use crate::config::claude::HOST_TOOLS;
use crate::host::requests::{self, RequestKind};
use crate::host::tool_calls::ToolRequest;
use crate::host::Host;
use crate::os::zone::host_zone;
use crate::triggers::schedule::{self, state, Schedule};

/// The most reminders that wait at once.
const MAX_REMINDERS: u32 = 1000;

/// The most of a card the chat is shown, in characters.
const MAX_CARD: usize = 3000;

/// How long a change waits for a press at most without a Claude timeout to
/// go by; the approval timeout (or a task's `approval_wait`) is shorter.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A change planned and checked, not made yet.
enum Change {
    /// Run the schedule now.
    RunNow(Schedule),
    /// Pause it (true) or resume it.
    Pause(Schedule, bool),
    /// Write, move aside or bring back its file.
    File(&'static str, Planned),
    /// Send a reminder to the chat at a time (in a zone).
    Remind(Reminder, DateTime<Utc>, Tz),
    /// Cancel the reminder with this id, due then.
    CancelReminder(i64, Reminder, DateTime<Utc>),
}

/// The longest reminder, in characters (a Telegram message holds 4,096).
const MAX_REMINDER: usize = 3500;

/// Plans the change `request` asks for, asks in the chat unless the grant
/// allows it outright, makes it on a press and records it. What Claude is
/// told: what was done, or why nothing was (`error`: fix the input;
/// `denied`: nobody allowed it).
pub async fn ask_and_make(
    host: &Host,
    request: &ToolRequest<'_>,
    input: &Map<String, Value>,
) -> Result<Value, (&'static str, String)> {
    if request.shadow {
        return Err(("denied", "a shadow handler changes nothing".to_owned()));
    }
    let change = plan(host, request.tool, request.chat, input)
        .await
        .map_err(|why| ("error", why))?;
    let now = Utc::now();
    let card = cut(change.card(now));
    let grant_name = format!("{HOST_TOOLS}.{}", request.tool);
    let config = host.config();
    let outright = config
        .plugin(request.caller.as_str())
        .is_some_and(|p| p.claude.allow_outright.contains(&grant_name));
    let approver = match outright {
        true => None,
        false => {
            let asking = Asking {
                plugin: request.caller,
                session_key: None,
                chat: request.chat,
                run: request.run,
                wait: request
                    .run
                    .and(config.alerts.as_ref())
                    .map(|alerts| alerts.approval_wait),
                shadow: request.shadow,
            };
            let tool_use = ToolUse {
                tool: grant_name.clone(),
                input: Value::Object(input.clone()),
            };
            let approvals = host.claude().approvals();
            // The caller's Claude call ends by its grant's timeout (or
            // [claude]'s): no press may change anything after that.
            let ceiling = config
                .plugin(request.caller.as_str())
                .and_then(|p| p.claude.timeout)
                .or(config.claude.as_ref().map(|c| c.timeout))
                .unwrap_or(LONGEST_WAIT);
            let deadline = Instant::now() + ceiling;
            Some(
                approvals
                    .confirm(asking, &tool_use, &card, deadline)
                    .await
                    .map_err(|why| ("denied", why))?,
            )
        }
    };
    let (said, before, after) = change
        .make(host, approver.as_ref())
        .await
        .map_err(|why| ("error", format!("nothing was changed: {why}")))?;
    let record = ChangeRecord {
        id: 0,
        at: Utc::now(),
        tool: request.tool.to_owned(),
        target: change.target().to_owned(),
        summary: card,
        caller: request.caller.to_string(),
        chat: request.chat,
        by_id: approver.as_ref().map(|a| i64::try_from(a.id).unwrap_or(i64::MAX)),
        by_name: approver.as_ref().map(|a| a.name.clone()),
        before,
        after,
    };
    let id = records::record(host.db(), record).await.map_err(|e| {
        tracing::error!(tool = request.tool, "the change was made but not recorded: {e:#}");
        (
            "error",
            format!("{said}, but the host could not record the change: {e:#}"),
        )
    })?;
    tracing::info!(tool = request.tool, change = id, by = ?approver.as_ref().map(|a| &a.name), "{said}");
    Ok(json!({ "done": said, "change": id, "allowed_by": approver.map(|a| a.name) }))
}

/// What `tool` on `input` would do for a call serving `chat`, checked as
/// the host will check it.
async fn plan(
    host: &Host,
    tool: &str,
    chat: Option<i64>,
    input: &Map<String, Value>,
) -> Result<Change, String> {
    let config = host.config();
    let known = || -> Result<Schedule, String> {
        let name = input
            .get("schedule")
            .and_then(Value::as_str)
            .ok_or("`schedule`: the schedule's name is required")?;
        let (schedules, _) = schedule::load_all(&config, host_zone());
        schedules
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("there is no schedule named `{name}` (see the schedules tool)"))
    };
    let paused = |schedule: &Schedule| {
        let db = host.db().clone();
        let name = schedule.name.clone();
        async move { state::is_paused(&db, &name).await.map_err(|e| format!("{e:#}")) }
    };
    Ok(match tool {
        "run_now" => Change::RunNow(known()?),
        "pause" | "resume" => {
            let schedule = known()?;
            let pause = tool == "pause";
            if paused(&schedule).await? == pause {
                let already = if pause {
                    "paused"
                } else {
                    "running on its schedule"
                };
                return Err(format!("`{}` is {already} already", schedule.name));
            }
            Change::Pause(schedule, pause)
        }
        "create_schedule" => Change::File("created", schedule_files::plan_create(&config, input)?),
        "change_schedule" => Change::File("changed", schedule_files::plan_change(&config, input)?),
        "delete_schedule" => Change::File("deleted", schedule_files::plan_delete(&config, input)?),
        "restore_schedule" => Change::File("brought back", schedule_files::plan_restore(&config, input)?),
        "remind" => {
            let chat =
                chat.ok_or("a reminder goes to the chat the call serves, and this call serves none")?;
            let text = input
                .get("text")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or("`text`: what to remind of is required")?;
            if text.chars().count() > MAX_REMINDER {
                return Err(format!("`text`: at most {MAX_REMINDER} characters"));
            }
            let zone = match input.get("timezone").and_then(Value::as_str) {
                Some(zone) => zone.parse::<Tz>().map_err(|_| {
                    format!("`timezone`: `{zone}` is not an IANA time zone name (e.g. \"Europe/Berlin\")")
                })?,
                None => host_zone(),
            };
            let at = input
                .get("at")
                .and_then(Value::as_str)
                .ok_or("`at`: when, as \"2026-12-11 09:00\" in the zone")?;
            let due = local_time(at, zone)?;
            if due <= Utc::now() {
                return Err(format!("`at`: {at} ({zone}) has passed"));
            }
            let reminder = Reminder {
                chat,
                text: text.to_owned(),
            };
            Change::Remind(reminder, due, zone)
        }
        "cancel_reminder" => {
            let id = input
                .get("id")
                .and_then(Value::as_i64)
                .ok_or("`id`: the reminder's id (see the reminders tool)")?;
            let chat =
                chat.ok_or("reminders belong to the chat the call serves, and this call serves none")?;
            let waiting = reminders_in(host, chat).await.map_err(|e| format!("{e:#}"))?;
            let (pending, reminder) = waiting
                .into_iter()
                .find(|(pending, _)| pending.id == id)
                .ok_or_else(|| {
                    format!("there is no reminder {id} waiting in this chat (see the reminders tool)")
                })?;
            Change::CancelReminder(id, reminder, pending.due_at)
        }
        other => return Err(format!("`{other}` changes nothing")),
    })
}

impl Change {
    /// The schedule it acts on.
    fn target(&self) -> &str {
        match self {
            Change::RunNow(schedule) | Change::Pause(schedule, _) => &schedule.name,
            Change::File(_, planned) => &planned.name,
            Change::Remind(..) | Change::CancelReminder(..) => "reminders",
        }
    }

    /// What will happen, as the card says it: "Create schedule
    /// `orders-summary`: runs `prompt` at 07:00 Monday–Friday,
    /// Europe/Berlin — next: Mon 9 Dec 07:00, …", with the file's text.
    fn card(&self, now: DateTime<Utc>) -> String {
        match self {
            Change::RunNow(s) => format!("Run `{}` now, once (plugin `{}`).", s.name, s.plugin),
            Change::Pause(s, true) => {
                let next = next_runs(s, now).into_iter().next();
                let next = next.map_or(String::new(), |n| format!(" — its next run would have been {n}"));
                format!(
                    "Pause `{}` ({}, {}): it does not run until resumed{next}.",
                    s.name,
                    timing_in_words(s),
                    s.zone
                )
            }
            Change::Pause(s, false) => format!("Resume `{}`: {}.", s.name, runs(s, now)),
            Change::Remind(reminder, due, zone) => format!(
                "Remind this chat on {} ({zone}): “{}”.",
                when(*due, *zone),
                reminder.text
            ),
            Change::CancelReminder(id, reminder, due) => format!(
                "Cancel reminder {id} (due {}, {}): “{}”.",
                when(*due, host_zone()),
                host_zone(),
                reminder.text
            ),
            Change::File(what, planned) => {
                let verb = match *what {
                    "created" => "Create",
                    "changed" => "Change",
                    "deleted" => "Delete",
                    _ => "Bring back",
                };
                let file = planned
                    .file
                    .file_name()
                    .map_or(String::new(), |f| f.to_string_lossy().into_owned());
                match (&planned.schedule, &planned.before, &planned.after) {
                    (Some(s), None, Some(after)) => {
                        format!(
                            "{verb} schedule `{}`: {}.\n\n{file}:\n{after}",
                            s.name,
                            runs(s, now)
                        )
                    }
                    (Some(s), Some(before), Some(after)) => format!(
                        "{verb} schedule `{}`: {}.\n\n{file} after:\n{after}\n{file} before:\n{before}",
                        s.name,
                        runs(s, now)
                    ),
                    (_, Some(before), None) => format!(
                        "{verb} schedule `{}`: it no longer runs; its file is kept aside and \
                         restore_schedule brings it back.\n\n{file}:\n{before}",
                        planned.name
                    ),
                    _ => format!("{verb} schedule `{}`.", planned.name),
                }
            }
        }
    }

    /// Makes the change, `by` having pressed for it (none: allowed
    /// outright). What was done, and the state or text before and after.
    async fn make(
        &self,
        host: &Host,
        by: Option<&Approver>,
    ) -> Result<(String, Option<String>, Option<String>), String> {
        let failed = |e: anyhow::Error| format!("{e:#}");
        match self {
            Change::RunNow(s) => {
                let id = requests::request(host.db(), RequestKind::Trigger, &s.name)
                    .await
                    .map_err(failed)?;
                Ok((format!("`{}` runs now (request {id})", s.name), None, None))
            }
            Change::Pause(s, pause) => {
                state::set_paused(host.db(), &s.name, *pause)
                    .await
                    .map_err(failed)?;
                let (before, after, said) = match pause {
                    true => ("running", "paused", format!("`{}` is paused", s.name)),
                    false => (
                        "paused",
                        "running",
                        format!("`{}` runs on its schedule again", s.name),
                    ),
                };
                Ok((said, Some(before.to_owned()), Some(after.to_owned())))
            }
            Change::Remind(reminder, due, zone) => {
                let wake_up = NewWakeUp {
                    plugin: HOST_TOOLS.to_owned(),
                    due_at: due.timestamp_millis(),
                    payload: reminder.payload(),
                    run: None,
                };
                match wakeups::add(host.db(), wake_up, MAX_REMINDERS)
                    .await
                    .map_err(failed)?
                {
                    Added::Id(id) => {
                        host.services().wakeups.notify_one();
                        let said = format!("reminder {id} set for {} ({zone})", when(*due, *zone));
                        Ok((said, None, Some(reminder.text.clone())))
                    }
                    Added::OverLimit => Err(format!("{MAX_REMINDERS} reminders wait already")),
                }
            }
            Change::CancelReminder(id, reminder, _) => match wakeups::cancel(host.db(), HOST_TOOLS, *id)
                .await
                .map_err(failed)?
            {
                true => Ok((
                    format!("reminder {id} cancelled"),
                    Some(reminder.text.clone()),
                    None,
                )),
                false => Err(format!("reminder {id} is no longer waiting")),
            },
            Change::File(what, planned) => {
                let origin = schedule_files::origin(what, by.map(|a| a.name.as_str()), Utc::now());
                let written = schedule_files::apply(planned, &origin)?;
                Ok((
                    format!("schedule `{}` {what}", planned.name),
                    planned.before.clone(),
                    written,
                ))
            }
        }
    }
}

/// "runs `prompt` at 07:00 Monday–Friday, Europe/Berlin — next: Mon 9 Dec
/// 07:00, Tue 10 Dec 07:00, Wed 11 Dec 07:00"
fn runs(s: &Schedule, now: DateTime<Utc>) -> String {
    let next = next_runs(s, now);
    let next = match next.is_empty() {
        true => String::new(),
        false => format!(" — next: {}", next.join(", ")),
    };
    format!("runs `{}` {}, {}{next}", s.plugin, timing_in_words(s), s.zone)
}

/// `at` ("2026-12-11 09:00", seconds optional, or RFC 3339 with its
/// offset) as a time in `zone`.
fn local_time(at: &str, zone: Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(at) {
        return Ok(time.with_timezone(&Utc));
    }
    [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(at, format).ok())
    .and_then(|local| zone.from_local_datetime(&local).earliest())
    .map(|time| time.with_timezone(&Utc))
    .ok_or_else(|| format!("`at`: `{at}` is not a time in {zone}; write \"2026-12-11 09:00\""))
}

fn cut(mut card: String) -> String {
    if card.chars().count() > MAX_CARD {
        card = card.chars().take(MAX_CARD).collect::<String>() + "…";
    }
    card
}
