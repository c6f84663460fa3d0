//! Run records: one row per run of a task plugin, written when it starts
//! (so a crash leaves a trace) and completed when it ends.

use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde::Serialize;

use crate::config::after::FollowOn;
use crate::db::retention::{period, Rule};
use crate::db::{datetime, text_enum, Database};
use crate::display::{brief, in_zone, local, seconds};
use crate::plugin::call::{CallError, CallReport};

text_enum! {
    /// How a run ended (or that it has not yet).
    pub enum RunOutcome {
        /// Started and not finished (or its host died: see `interrupted`).
        Running = "running",
        /// The plugin returned its summary.
        Succeeded = "succeeded",
        /// The plugin returned an error.
        Failed = "failed",
        /// The plugin trapped.
        Trapped = "trapped",
        /// The plugin ran past its deadline.
        TimedOut = "timed_out",
        /// The plugin hit its memory limit.
        OutOfMemory = "out_of_memory",
        /// The host stopped before the run finished.
        Interrupted = "interrupted",
        /// The plugin was not loaded (its load error is in the log).
        NotLoaded = "not_loaded",
        /// Not run: the previous run was still going (overlap `skip`).
        Skipped = "skipped",
    }
}

impl From<&CallError> for RunOutcome {
    fn from(error: &CallError) -> RunOutcome {
        match error {
            CallError::Failed { .. } => RunOutcome::Failed,
            CallError::Trapped { .. } => RunOutcome::Trapped,
            CallError::TimedOut { .. } => RunOutcome::TimedOut,
            CallError::OutOfMemory { .. } => RunOutcome::OutOfMemory,
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedBy {
    /// `mission run PLUGIN` from the command line.
    Manual,
    /// A schedule's due time.
    Schedule,
    /// A due time missed while the host was down (catch-up `once`).
    CatchUp,
    /// `mission trigger SCHEDULE`; through a running host, with the id of
    /// the request it queued.
    Request(i64),
    /// `mission trigger SCHEDULE` with no host running.
    Direct,
    /// A webhook delivery, with its row id.
    Webhook(i64),
    /// A watch's file changes.
    Watch,
    /// `mission rerun`, with the run it repeats.
    Rerun(i64),
    /// A wake-up the plugin asked for with `later`, with its id.
    Later(i64),
    /// The end of another schedule's run (`after`), with that run's id.
    After(i64),
    /// A press on a button of a message the plugin posted, with its id.
    Press(i64),
}

impl StartedBy {
    fn as_str(self) -> &'static str {
        match self {
            StartedBy::Manual => "manual",
            StartedBy::Schedule => "schedule",
            StartedBy::CatchUp => "catch_up",
            StartedBy::Request(_) | StartedBy::Direct => "trigger",
            StartedBy::Webhook(_) => "webhook",
            StartedBy::Watch => "watch",
            StartedBy::Rerun(_) => "rerun",
            StartedBy::Later(_) => "later",
            StartedBy::After(_) => "after",
            StartedBy::Press(_) => "press",
        }
    }

    fn request(self) -> Option<i64> {
        match self {
            StartedBy::Request(id) => Some(id),
            _ => None,
        }
    }

    fn delivery(self) -> Option<i64> {
        match self {
            StartedBy::Webhook(id) => Some(id),
            _ => None,
        }
    }

    fn wakeup(self) -> Option<i64> {
        match self {
            StartedBy::Later(id) => Some(id),
            _ => None,
        }
    }

    fn press(self) -> Option<i64> {
        match self {
            StartedBy::Press(id) => Some(id),
            _ => None,
        }
    }

    fn parent_run(self) -> Option<i64> {
        match self {
            StartedBy::After(id) => Some(id),
            _ => None,
        }
    }

    fn rerun_of(self) -> Option<i64> {
        match self {
            StartedBy::Rerun(id) => Some(id),
            _ => None,
        }
    }
}

/// The start of a run, as recorded.
pub struct RunStart<'a> {
    /// The plugin that runs.
    pub plugin: &'a str,
    /// The schedule it runs for, if any.
    pub schedule: Option<&'a str>,
    /// What started it.
    pub trigger: StartedBy,
    /// When it was due.
    pub scheduled_at: DateTime<Utc>,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// One run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    /// The row id.
    pub id: i64,
    /// The plugin that ran.
    pub plugin: String,
    /// The schedule it ran for, if any.
    pub schedule: Option<String>,
    /// What started it: `manual`, `schedule`, `catch_up`, `trigger`,
    /// `webhook`, `watch`, `rerun`, `later`, `after` or `press`.
    pub trigger: String,
    /// The `mission trigger` request it answers, if any.
    pub request: Option<i64>,
    /// The webhook delivery it runs, if any.
    pub delivery: Option<i64>,
    /// Bytes it wrote to the directories of its `files` grant.
    pub files_written: u64,
    /// The run it repeats (`mission rerun`), if any.
    pub rerun_of: Option<i64>,
    /// The `later` wake-up it was started for, if any.
    pub wakeup: Option<i64>,
    /// The run whose end started it (`after`), if any.
    pub parent_run: Option<i64>,
    /// The button press it was started for, if any.
    pub press: Option<i64>,
    /// Who pressed what, for a run a press started: `Ada pressed Mark paid`.
    pub pressed: Option<String>,
    /// When it was due.
    pub scheduled_at: DateTime<Utc>,
    /// 1 for a first attempt, more for retries.
    pub attempt: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; none while running (or if the host died).
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The error, for any outcome but `succeeded`.
    pub error: Option<String>,
    /// The plugin's summary, for `succeeded`.
    pub summary: Option<String>,
    /// The start of what it printed.
    pub output: String,
    /// How many bytes it printed in all.
    pub output_bytes: u64,
    /// Whether its output went past the limit and was cut.
    pub output_truncated: bool,
    /// Whether it is held up by a Claude tool use waiting for a person.
    pub waiting_for_approval: bool,
}

impl RunRecord {
    /// How it stands, in words: its outcome, or "waiting for approval".
    pub fn state(&self) -> String {
        match self.waiting_for_approval && self.outcome == RunOutcome::Running {
            true => "waiting for approval".to_owned(),
            false => self.outcome.to_string(),
        }
    }

    /// Whether the run ended well.
    pub fn succeeded(&self) -> bool {
        self.outcome == RunOutcome::Succeeded
    }
}

/// Records the start of a run; returns the run's id.
pub async fn start(db: &Database, run: RunStart<'_>) -> anyhow::Result<i64> {
    let (plugin, schedule) = (run.plugin.to_owned(), run.schedule.map(str::to_owned));
    let (trigger, request, delivery) = (
        run.trigger.as_str(),
        run.trigger.request(),
        run.trigger.delivery(),
    );
    let (rerun_of, wakeup, parent_run, press) = (
        run.trigger.rerun_of(),
        run.trigger.wakeup(),
        run.trigger.parent_run(),
        run.trigger.press(),
    );
    let (scheduled_at, attempt, started_at) = (
        run.scheduled_at.timestamp_millis(),
        run.attempt,
        Utc::now().timestamp_millis(),
    );
    db.call(move |c| {
        c.execute(
            "INSERT INTO runs (plugin, schedule, trigger, request, delivery, scheduled_at, attempt, started_at, outcome, pid,
                 rerun_of, wakeup, parent_run, press)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            rusqlite::params![
                plugin,
                schedule,
                trigger,
                request,
                delivery,
                scheduled_at,
                attempt,
                started_at,
                RunOutcome::Running,
                std::process::id(),
                rerun_of,
                wakeup,
                parent_run,
                press
            ],
        )?;
        Ok(c.last_insert_rowid())
    })
    .await
}

/// Ends run `id` without a call: `outcome` says why, `error` explains;
/// queues the `follow_ups` that outcome starts in the same transaction.
pub async fn abandon(
    db: &Database,
    id: i64,
    outcome: RunOutcome,
    error: String,
    follow_ups: &[FollowUp],
) -> anyhow::Result<RunRecord> {
    let finished_at = Utc::now().timestamp_millis();
    let follow_ups = follow_ups.to_vec();
    db.call(move |c| {
        let transaction = c.transaction()?;
        transaction.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, error = ?4 WHERE id = ?1",
            (id, finished_at, outcome, error),
        )?;
        queue_follow_ups(&transaction, id, outcome, &follow_ups, finished_at)?;
        let record = transaction.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row_to_record)?;
        transaction.commit()?;
        Ok(record)
    })
    .await
    .inspect(counted)
}

/// What runs after another's run ends (its `after`), and on which
/// outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// What follows.
    pub follower: Follower,
    /// On which of the run's outcomes.
    pub on: FollowOn,
}

/// What follows a run: a schedule (its file's `after`) or a task plugin
/// (its `[plugins.NAME] after`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Follower {
    /// A schedule, run as its file says (its config values, its retries).
    Schedule(String),
    /// A task plugin, run once with its own config values.
    Plugin(String),
}

impl Follower {
    /// As stored in `follow_ups.kind`: `schedule` or `plugin`.
    pub fn kind(&self) -> &'static str {
        match self {
            Follower::Schedule(_) => "schedule",
            Follower::Plugin(_) => "plugin",
        }
    }

    /// The schedule's or the plugin's name.
    pub fn name(&self) -> &str {
        match self {
            Follower::Schedule(name) | Follower::Plugin(name) => name,
        }
    }

    /// Read back from `follow_ups.kind` and `name`; `None` for a kind this
    /// build does not know.
    pub fn from_row(kind: &str, name: String) -> Option<Follower> {
        match kind {
            "schedule" => Some(Follower::Schedule(name)),
            "plugin" => Some(Follower::Plugin(name)),
            _ => None,
        }
    }
}

impl fmt::Display for Follower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Follower::Schedule(name) => f.write_str(name),
            Follower::Plugin(name) => write!(f, "plugin {name}"),
        }
    }
}

/// Queues the follow-ups of run `id` that its `outcome` starts (each once
/// per run), in the caller's transaction.
fn queue_follow_ups(
    c: &rusqlite::Connection,
    id: i64,
    outcome: RunOutcome,
    follow_ups: &[FollowUp],
    now: i64,
) -> rusqlite::Result<()> {
    if outcome == RunOutcome::Interrupted {
        return Ok(());
    }
    let mut insert = c.prepare_cached(
        "INSERT INTO follow_ups (parent_run, kind, name, state, queued_at) VALUES (?1, ?2, ?3, 'pending', ?4)
         ON CONFLICT (parent_run, kind, name) DO NOTHING",
    )?;
    let succeeded = outcome == RunOutcome::Succeeded;
    for follow_up in follow_ups.iter().filter(|f| f.on.matches(succeeded)) {
        let follower = &follow_up.follower;
        insert.execute(rusqlite::params![id, follower.kind(), follower.name(), now])?;
    }
    Ok(())
}

/// The run `id`, if there is one.
pub async fn get(db: &Database, id: i64) -> anyhow::Result<Option<RunRecord>> {
    db.call(move |c| {
        c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row_to_record)
            .optional()
    })
    .await
}

/// Records that `schedule` did not run for `due` because its previous run
/// was still going (overlap policy `skip`).
pub async fn record_skipped(
    db: &Database,
    plugin: &str,
    schedule: &str,
    due: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (plugin, schedule) = (plugin.to_owned(), schedule.to_owned());
    let now = Utc::now().timestamp_millis();
    let recorded = plugin.clone();
    db.call(move |c| {
        c.execute(
            "INSERT INTO runs (plugin, schedule, trigger, scheduled_at, attempt, started_at, finished_at, outcome, error)
             VALUES (?1, ?2, 'schedule', ?3, 1, ?4, ?4, 'skipped',
                     'the previous run was still going (overlap = \"skip\")')",
            (recorded, schedule, due.timestamp_millis(), now),
        )
    })
    .await?;
    crate::metrics::get().run_ended(
        &plugin,
        StartedBy::Schedule.as_str(),
        RunOutcome::Skipped.as_str(),
        None,
    );
    Ok(())
}

/// Records as `interrupted` every run still marked `running` by this
/// process or by one that is gone: at shutdown after the grace period, and
/// at start for runs a killed host left behind. A run of another live
/// process (a `mission run` beside the host) is left to finish. Returns
/// how many were interrupted.
pub async fn interrupt_running(db: &Database) -> anyhow::Result<usize> {
    let now = Utc::now().timestamp_millis();
    let own = std::process::id();
    db.call(move |c| {
        let transaction = c.transaction()?;
        let stale: Vec<i64> = {
            let mut running = transaction.prepare("SELECT id, pid FROM runs WHERE outcome = 'running'")?;
            let rows = running.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<u32>>(1)?)))?;
            rows.filter_map(|row| match row {
                Ok((id, pid)) => pid
                    .is_none_or(|pid| pid == own || !crate::os::process_exists(pid))
                    .then_some(Ok(id)),
                Err(e) => Some(Err(e)),
            })
            .collect::<rusqlite::Result<_>>()?
        };
        for id in &stale {
            transaction.execute(
                "UPDATE runs SET outcome = 'interrupted', finished_at = ?2,
                     error = 'the host stopped before the run finished'
                 WHERE id = ?1",
                (id, now),
            )?;
        }
        transaction.commit()?;
        Ok(stale.len())
    })
    .await
}

/// Completes run `id` with what the call reported, and queues in the same
/// transaction the `follow_ups` its outcome starts; returns the full record.
pub async fn finish(
    db: &Database,
    id: i64,
    report: &CallReport<String>,
    follow_ups: &[FollowUp],
) -> anyhow::Result<RunRecord> {
    let (outcome, error, summary) = match &report.result {
        Ok(summary) => (RunOutcome::Succeeded, None, Some(summary.clone())),
        Err(e) => (RunOutcome::from(e), Some(e.to_string()), None),
    };
    let output = report.output.clone();
    let files_written = report.stats.files_written;
    let finished_at = Utc::now().timestamp_millis();
    let follow_ups = follow_ups.to_vec();
    db.call(move |c| {
        let c = c.transaction()?;
        c.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, error = ?4, summary = ?5,
                 output_bytes = ?6, output_truncated = ?7, files_written = ?8
             WHERE id = ?1",
            (
                id,
                finished_at,
                outcome,
                error,
                summary,
                output.bytes,
                output.truncated,
                files_written,
            ),
        )?;
        if !output.excerpt.is_empty() {
            c.execute(
                "INSERT OR REPLACE INTO run_outputs (run_id, output) VALUES (?1, ?2)",
                (id, &output.excerpt),
            )?;
        }
        queue_follow_ups(&c, id, outcome, &follow_ups, finished_at)?;
        let record = c.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row_to_record)?;
        c.commit()?;
        Ok(record)
    })
    .await
    .inspect(counted)
}

/// Counts the ended run `record` in the host's metrics.
fn counted(record: &RunRecord) {
    let took = record
        .finished_at
        .and_then(|end| (end - record.started_at).to_std().ok());
    crate::metrics::get().run_ended(&record.plugin, &record.trigger, record.outcome.as_str(), took);
}

/// The latest `limit` runs, newest first, of one schedule or of all.
pub async fn recent(db: &Database, schedule: Option<&str>, limit: u32) -> anyhow::Result<Vec<RunRecord>> {
    let schedule = schedule.map(str::to_owned);
    db.call(move |c| {
        let mut statement = c.prepare_cached(&format!(
            "{SELECT} WHERE ?1 IS NULL OR schedule = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = statement.query_map((schedule, limit), row_to_record)?;
        rows.collect()
    })
    .await
}

/// The latest run of each of `schedules` that has one, in one call (an
/// index seek each).
pub async fn latest_of(
    db: &Database,
    schedules: Vec<String>,
) -> anyhow::Result<std::collections::HashMap<String, RunRecord>> {
    db.call(move |c| {
        let mut statement =
            c.prepare_cached(&format!("{SELECT} WHERE schedule = ?1 ORDER BY id DESC LIMIT 1"))?;
        let mut latest = std::collections::HashMap::new();
        for schedule in schedules {
            if let Some(run) = statement.query_row([&schedule], row_to_record).optional()? {
                latest.insert(schedule, run);
            }
        }
        Ok(latest)
    })
    .await
}

/// When each of `schedules` last ran successfully (Unix ms), for those
/// that have (an index seek each, newest first).
pub async fn last_successes(db: &Database, schedules: Vec<String>) -> anyhow::Result<Vec<(String, i64)>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT finished_at FROM runs WHERE schedule = ?1 AND outcome = 'succeeded'
             ORDER BY id DESC LIMIT 1",
        )?;
        let mut last = Vec::new();
        for schedule in schedules {
            if let Some(at) = statement.query_row([&schedule], |row| row.get(0)).optional()? {
                last.push((schedule, at));
            }
        }
        Ok(last)
    })
    .await
}

/// How many runs started since `since` ended each way, per schedule (or
/// plugin, for runs of none): `(name, outcome, count)`, by name.
pub async fn tally_since(
    db: &Database,
    since: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, RunOutcome, u32)>> {
    let since = since.timestamp_millis();
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT COALESCE(schedule, plugin), outcome, COUNT(*) FROM runs WHERE started_at >= ?1
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let rows = statement.query_map([since], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect()
    })
    .await
}

/// When each of `schedule`'s latest `limit` finished runs (skips aside)
/// since `since` started, and how long it took, oldest first.
pub async fn durations(
    db: &Database,
    schedule: &str,
    since: DateTime<Utc>,
    limit: u32,
) -> anyhow::Result<Vec<(DateTime<Utc>, u64)>> {
    let (schedule, since) = (schedule.to_owned(), since.timestamp_millis());
    db.call(move |c| {
        let mut statement = c.prepare_cached(
            "SELECT started_at, finished_at - started_at FROM runs
             WHERE schedule = ?1 AND started_at >= ?2 AND finished_at IS NOT NULL AND outcome != 'skipped'
             ORDER BY id DESC LIMIT ?3",
        )?;
        let rows = statement.query_map((schedule, since, limit), |row| {
            Ok((datetime(row.get(0)?), row.get::<_, i64>(1)?.max(0) as u64))
        })?;
        let mut durations = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        durations.reverse();
        Ok(durations)
    })
    .await
}

/// Which runs `mission runs` lists.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this schedule's.
    pub schedule: Option<String>,
    /// Only those that did not succeed (and are not running).
    pub failed: bool,
    /// Only those started at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only those whose error, summary or output contains this text
    /// (ASCII letters in any case).
    pub grep: Option<String>,
}

/// The latest `limit` runs that `filter` lets through, newest first.
pub async fn search(db: &Database, filter: RunFilter, limit: u32) -> anyhow::Result<Vec<RunRecord>> {
    let since = filter.since.map(|t| t.timestamp_millis());
    let grep = filter.grep.map(|text| {
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    db.call(move |c| {
        let mut statement = c.prepare_cached(&format!(
            "{SELECT} WHERE (?1 IS NULL OR schedule = ?1)
                 AND (?2 = 0 OR outcome NOT IN ('succeeded', 'running'))
                 AND (?3 IS NULL OR started_at >= ?3)
                 AND (?4 IS NULL OR error LIKE ?4 ESCAPE '\\' OR summary LIKE ?4 ESCAPE '\\'
                      OR output LIKE ?4 ESCAPE '\\')
             ORDER BY id DESC LIMIT ?5"
        ))?;
        let rows = statement.query_map(
            rusqlite::params![filter.schedule, filter.failed, since, grep, limit],
            row_to_record,
        )?;
        rows.collect()
    })
    .await
}

/// The runs that run `id`'s end started (`after`), oldest first.
pub async fn followed_by(db: &Database, id: i64) -> anyhow::Result<Vec<RunRecord>> {
    db.call(move |c| {
        let mut statement = c.prepare_cached(&format!("{SELECT} WHERE parent_run = ?1 ORDER BY id"))?;
        let rows = statement.query_map([id], row_to_record)?;
        rows.collect()
    })
    .await
}

/// The last run recorded for `mission trigger` request `request`.
pub async fn answer_to(db: &Database, request: i64) -> anyhow::Result<Option<RunRecord>> {
    db.call(move |c| {
        let mut statement =
            c.prepare_cached(&format!("{SELECT} WHERE request = ?1 ORDER BY id DESC LIMIT 1"))?;
        let mut rows = statement.query_map([request], row_to_record)?;
        rows.next().transpose()
    })
    .await
}

const SELECT: &str = "SELECT id, plugin, schedule, trigger, request, scheduled_at, attempt, started_at,
                             finished_at, outcome, error, summary, coalesce(output, ''), output_bytes,
                             output_truncated, delivery, files_written, rerun_of,
                             EXISTS (SELECT 1 FROM tool_approvals WHERE run = id AND outcome = 'pending'),
                             wakeup, parent_run, press,
                             (SELECT user_name || ' pressed ' || label FROM presses WHERE presses.id = runs.press)
                      FROM runs LEFT JOIN run_outputs ON run_id = id";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        plugin: row.get(1)?,
        schedule: row.get(2)?,
        trigger: row.get(3)?,
        request: row.get(4)?,
        scheduled_at: datetime(row.get(5)?),
        attempt: row.get(6)?,
        started_at: datetime(row.get(7)?),
        finished_at: row.get::<_, Option<i64>>(8)?.map(datetime),
        outcome: row.get(9)?,
        error: row.get(10)?,
        summary: row.get(11)?,
        output: row.get(12)?,
        output_bytes: row.get(13)?,
        output_truncated: row.get(14)?,
        delivery: row.get(15)?,
        files_written: row.get(16)?,
        rerun_of: row.get(17)?,
        waiting_for_approval: row.get(18)?,
        wakeup: row.get(19)?,
        parent_run: row.get(20)?,
        press: row.get(21)?,
        pressed: row.get(22)?,
    })
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The run's id.
    pub id: i64,
    /// The schedule it ran for, or the plugin if none.
    pub what: String,
    /// The run whose end started it (`after`), if one did.
    pub after: Option<i64>,
    /// Who pressed what, if a press started it.
    pub pressed: Option<String>,
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

impl RunStatus {
    /// `run` as the page shows it, its start in `zone` (a schedule's),
    /// else host time.
    pub fn of(run: &RunRecord, zone: Option<chrono_tz::Tz>) -> RunStatus {
        let took = run
            .finished_at
            .map(|end| (end - run.started_at).to_std().unwrap_or_default());
        let failed = !matches!(run.outcome, RunOutcome::Succeeded | RunOutcome::Running);
        RunStatus {
            id: run.id,
            what: run.schedule.clone().unwrap_or_else(|| run.plugin.clone()),
            after: run.parent_run,
            pressed: run.pressed.clone(),
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
}

/// How run records go: a run's output after `[retention] run_output` (and
/// never after its run), a finished run after `runs`; a run still going
/// stays. Outputs are read in their own order (a LEFT JOIN keeps them the
/// outer loop: a few days' worth, not every run kept), with any whose run
/// is gone.
pub const RETENTION: &[Rule] = &[
    Rule {
        table: "run_outputs",
        kind: "run_outputs",
        delete: "DELETE FROM run_outputs WHERE run_id IN (SELECT run_id FROM run_outputs LEFT JOIN runs ON id = run_id
                 WHERE id IS NULL OR (started_at < ?1 AND finished_at IS NOT NULL) LIMIT ?2)",
        keep: |p| p.retention.run_output.min(p.retention.runs),
        kept: |p| period(p.retention.run_output.min(p.retention.runs)),
    },
    Rule {
        table: "runs",
        kind: "runs",
        delete: "DELETE FROM runs WHERE id IN (SELECT id FROM runs
                 WHERE started_at < ?1 AND finished_at IS NOT NULL LIMIT ?2)",
        keep: |p| p.retention.runs,
        kept: |p| format!("{} (output {})", period(p.retention.runs), period(p.retention.run_output)),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_runs_of_this_or_a_dead_process_are_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        for pid in [std::process::id(), live.id(), dead.id()] {
            let start = RunStart {
                plugin: "p",
                schedule: None,
                trigger: StartedBy::Manual,
                scheduled_at: Utc::now(),
                attempt: 1,
            };
            let id = super::start(&db, start).await.unwrap();
            db.call(move |c| c.execute("UPDATE runs SET pid = ?2 WHERE id = ?1", (id, pid)))
                .await
                .unwrap();
        }
        assert_eq!(interrupt_running(&db).await.unwrap(), 2);
        let outcomes: Vec<String> = db
            .call(|c| {
                let mut query = c.prepare("SELECT outcome FROM runs ORDER BY id")?;
                let rows = query.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .await
            .unwrap();
        assert_eq!(outcomes, ["interrupted", "running", "interrupted"]);
        live.kill().unwrap();
        live.wait().unwrap();
    }
}
