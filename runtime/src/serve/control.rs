//! How CLI commands reach a running host: through the SQLite file. The
//! CLI's side queues a request in the `requests` table (`mission trigger`,
//! `mission reload`) and reads the heartbeat; the host's side,
//! [`ControlChannel`], writes the heartbeat every second and takes requests
//! every 250 ms, hands each to the part that does it (the scheduler, hot
//! reload) and marks it answered when that part is done.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use tokio::sync::{mpsc, oneshot};

use super::hot_reload::ReloadRequest;
use crate::db::{datetime, Database};
pub use crate::host::requests::{request, RequestKind};
use crate::triggers::schedule::scheduler::ScheduleChange;

/// A heartbeat older than this means no host is running.
const HEARTBEAT_STALE: Duration = Duration::from_secs(5);

/// Records that the host with `pid`, started at `started`, is alive now.
pub async fn heartbeat(
    db: &Database,
    pid: u32,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    db.call(move |c| {
        c.execute(
            "INSERT INTO host (id, pid, started_at, heartbeat_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at,
                 heartbeat_at = excluded.heartbeat_at",
            (pid, started.timestamp_millis(), now.timestamp_millis()),
        )
    })
    .await
    .map(drop)
}

/// Clears the heartbeat of the host with `pid` (on clean shutdown).
pub async fn sign_off(db: &Database, pid: u32) -> anyhow::Result<()> {
    db.call(move |c| c.execute("DELETE FROM host WHERE pid = ?1", [pid]))
        .await
        .map(drop)
}

/// The last host that beat: its pid, when it started, when it last beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The host's process id.
    pub pid: u32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last beat.
    pub at: DateTime<Utc>,
}

impl Heartbeat {
    /// Whether it beat recently enough for the host to be alive.
    pub fn is_fresh(&self) -> bool {
        let age = Utc::now()
            .signed_duration_since(self.at)
            .to_std()
            .unwrap_or_default();
        age < HEARTBEAT_STALE
    }
}

/// The host running on the database at `path`, if one is: read on a
/// connection of its own, without creating or migrating the file (for
/// `mission restore`, which must not touch it while a host serves).
pub fn running_on(path: &std::path::Path) -> anyhow::Result<Option<Heartbeat>> {
    use rusqlite::{Connection, OpenFlags};
    if !path.exists() {
        return Ok(None);
    }
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    connection.busy_timeout(crate::db::BUSY_TIMEOUT)?;
    match read_heartbeat(&connection) {
        Ok(heartbeat) => Ok(heartbeat.filter(Heartbeat::is_fresh)),
        // A database too old or too new to have the table has no host on it.
        Err(rusqlite::Error::SqliteFailure(_, Some(message))) if message.contains("no such table") => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The last heartbeat, if a host is running or stopped without signing off.
pub async fn last_heartbeat(db: &Database) -> anyhow::Result<Option<Heartbeat>> {
    db.call(|c| read_heartbeat(c)).await
}

/// The `host` row, if any.
fn read_heartbeat(connection: &rusqlite::Connection) -> rusqlite::Result<Option<Heartbeat>> {
    connection
        .query_row("SELECT pid, started_at, heartbeat_at FROM host", [], |r| {
            Ok(Heartbeat {
                pid: r.get(0)?,
                started_at: datetime(r.get(1)?),
                at: datetime(r.get(2)?),
            })
        })
        .optional()
}

/// The pid of the running host, if one has a fresh heartbeat.
pub async fn running_host(db: &Database) -> anyhow::Result<Option<u32>> {
    Ok(last_heartbeat(db)
        .await?
        .filter(Heartbeat::is_fresh)
        .map(|h| h.pid))
}

/// One request taken from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its id.
    pub id: i64,
    /// What it asks.
    pub kind: RequestKind,
    /// What it is about: a schedule, a plugin, or empty.
    pub target: String,
}

/// Takes every pending request, oldest first.
pub async fn take_requests(db: &Database) -> anyhow::Result<Vec<Request>> {
    db.call(move |c| {
        let transaction = c.transaction()?;
        let pending = transaction
            .prepare("SELECT id, kind, target FROM requests WHERE taken_at IS NULL ORDER BY id")?
            .query_map([], |r| {
                Ok(Request {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    target: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<Request>>>()?;
        transaction.execute(
            "UPDATE requests SET taken_at = ?1 WHERE taken_at IS NULL AND id <= ?2",
            (Utc::now().timestamp_millis(), pending.last().map_or(0, |r| r.id)),
        )?;
        transaction.commit()?;
        Ok(pending)
    })
    .await
}

/// Marks request `id` answered: its work (all attempts of a triggered run)
/// is over, or it could not be done.
pub async fn finish_request(db: &Database, id: i64) -> anyhow::Result<()> {
    db.call(move |c| {
        c.execute(
            "UPDATE requests SET done_at = ?2 WHERE id = ?1",
            (id, Utc::now().timestamp_millis()),
        )
    })
    .await
    .map(drop)
}

/// Marks every request a host took but did not answer as answered: at
/// shutdown after interrupting runs, and at start for a killed host's.
pub async fn finish_abandoned_requests(db: &Database) -> anyhow::Result<usize> {
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "UPDATE requests SET done_at = ?1 WHERE taken_at IS NOT NULL AND done_at IS NULL",
            [now],
        )
    })
    .await
}

/// Whether request `id` has been answered.
pub async fn is_finished(db: &Database, id: i64) -> anyhow::Result<bool> {
    db.call(move |c| {
        c.query_row(
            "SELECT done_at IS NOT NULL FROM requests WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
    })
    .await
}

/// How often the host writes its heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How often the host looks for requests.
const REQUEST_POLL: Duration = Duration::from_millis(250);

/// The host's end of the channel: the one owner of the heartbeat and the
/// request queue while the host serves.
pub struct ControlChannel {
    db: Database,
    schedules: mpsc::UnboundedSender<ScheduleChange>,
    reloads: mpsc::UnboundedSender<ReloadRequest>,
}

impl ControlChannel {
    /// A channel that hands trigger requests to the scheduler through
    /// `schedules` and reload requests to hot reload through `reloads`.
    pub fn new(
        db: Database,
        schedules: mpsc::UnboundedSender<ScheduleChange>,
        reloads: mpsc::UnboundedSender<ReloadRequest>,
    ) -> ControlChannel {
        ControlChannel {
            db,
            schedules,
            reloads,
        }
    }

    /// Beats and takes requests until `shutdown` completes. The heartbeat
    /// stays until [`sign_off`], which the host calls once every part has
    /// stopped.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (pid, started) = (std::process::id(), Utc::now());
        let mut poll = tokio::time::interval(REQUEST_POLL);
        let mut last_beat: Option<tokio::time::Instant> = None;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = poll.tick() => {}
            }
            if last_beat.is_none_or(|at| at.elapsed() >= HEARTBEAT_EVERY) {
                last_beat = Some(tokio::time::Instant::now());
                if let Err(e) = heartbeat(&self.db, pid, started, Utc::now()).await {
                    tracing::warn!("failed to write the heartbeat: {e:#}");
                }
            }
            match take_requests(&self.db).await {
                Ok(requests) => requests.into_iter().for_each(|r| self.hand_over(r)),
                Err(e) => tracing::error!("failed to read requests from the CLI: {e:#}"),
            }
        }
    }

    /// Hands `request` to the part that does it, and marks it answered when
    /// that part says it is done (or cannot take it).
    fn hand_over(&self, request: Request) {
        let (done, answered) = oneshot::channel();
        let handed = match request.kind {
            RequestKind::Trigger => self
                .schedules
                .send(ScheduleChange::Trigger {
                    schedule: request.target.clone(),
                    request: request.id,
                    done,
                })
                .is_ok(),
            RequestKind::Reload => {
                let plugin = Some(request.target.clone()).filter(|t| !t.is_empty());
                self.reloads.send(ReloadRequest { plugin, done }).is_ok()
            }
        };
        if !handed {
            tracing::warn!(request = request.id, kind = %request.kind, "no part of the host takes this request now");
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            // Dropped unanswered, the part was stopped mid-way (the host is
            // shutting down): the host answers such requests once every
            // part has recorded how its work ended, so the CLI never reads
            // a run still marked running.
            if answered.await.is_err() && handed {
                return;
            }
            if let Err(e) = finish_request(&db, request.id).await {
                tracing::error!(request = request.id, "failed to answer the request: {e:#}");
            }
        });
    }
}
