//! The one SQLite file that holds everything durable: run records, plugin
//! state and conversation history. Opened in WAL mode, migrated by
//! `PRAGMA user_version`; queries run on tokio's blocking pool.

pub mod retention;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// The schema, one entry per version; entry `i` takes a database from
/// version `i` to `i + 1`. Append only: never edit a shipped migration.
const MIGRATIONS: &[&str] = &[
    // 1: run records, plugin state, conversation history.
    "CREATE TABLE runs (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         trigger TEXT NOT NULL,
         scheduled_at INTEGER NOT NULL,
         attempt INTEGER NOT NULL,
         started_at INTEGER NOT NULL,
         finished_at INTEGER,
         outcome TEXT NOT NULL,
         error TEXT,
         summary TEXT,
         output TEXT NOT NULL DEFAULT '',
         output_bytes INTEGER NOT NULL DEFAULT 0,
         output_truncated INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX runs_by_plugin ON runs (plugin, started_at);
     CREATE TABLE plugin_state (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         PRIMARY KEY (plugin, key)
     ) WITHOUT ROWID;
     CREATE TABLE history (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         conversation TEXT NOT NULL,
         role TEXT NOT NULL,
         text TEXT NOT NULL,
         at INTEGER NOT NULL
     );
     CREATE INDEX history_by_conversation ON history (plugin, conversation, id);",
    // 2: schedules: runs know their schedule; per-schedule state; requests
    // from the CLI to a running host; the host's heartbeat.
    "ALTER TABLE runs ADD COLUMN schedule TEXT;
     ALTER TABLE runs ADD COLUMN request INTEGER;
     CREATE INDEX runs_by_schedule ON runs (schedule, id);
     CREATE TABLE schedule_state (
         schedule TEXT PRIMARY KEY,
         last_due_at INTEGER,
         paused INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE requests (
         id INTEGER PRIMARY KEY,
         kind TEXT NOT NULL,
         target TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         taken_at INTEGER,
         done_at INTEGER
     );
     CREATE TABLE host (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         pid INTEGER NOT NULL,
         started_at INTEGER NOT NULL,
         heartbeat_at INTEGER NOT NULL
     );",
    // 3: every load and reload of a plugin, and its outcome.
    "CREATE TABLE plugin_loads (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         at INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         old_hash TEXT,
         new_hash TEXT,
         compile_ms REAL,
         error TEXT
     );
     CREATE INDEX plugin_loads_by_plugin ON plugin_loads (plugin, id);",
    // 4: Telegram updates, stored before their offset is confirmed, and
    // marked when handled.
    "CREATE TABLE telegram_updates (
         update_id INTEGER PRIMARY KEY,
         chat_id INTEGER,
         sender_id INTEGER,
         sender_name TEXT NOT NULL DEFAULT '',
         text TEXT,
         sent_at INTEGER NOT NULL,
         received_at INTEGER NOT NULL,
         handled_at INTEGER,
         outcome TEXT
     );
     CREATE INDEX telegram_unhandled ON telegram_updates (handled_at, update_id);",
    // 5: Claude: the cost ledger (one row per call, spent or refused), the
    // CLI session behind each plugin's session key, and the API backend's
    // transcripts.
    "CREATE TABLE claude_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         backend TEXT NOT NULL,
         model TEXT,
         session_key TEXT,
         input_tokens INTEGER NOT NULL,
         output_tokens INTEGER NOT NULL,
         cache_write_tokens INTEGER NOT NULL,
         cache_read_tokens INTEGER NOT NULL,
         cost_usd REAL NOT NULL,
         turns INTEGER NOT NULL,
         duration_ms INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT
     );
     CREATE INDEX claude_calls_by_time ON claude_calls (at);
     CREATE TABLE claude_sessions (
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         session_id TEXT NOT NULL,
         updated_at INTEGER NOT NULL,
         PRIMARY KEY (plugin, session_key)
     ) WITHOUT ROWID;
     CREATE TABLE claude_transcripts (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         role TEXT NOT NULL,
         text TEXT NOT NULL,
         at INTEGER NOT NULL
     );
     CREATE INDEX claude_transcripts_by_key ON claude_transcripts (plugin, session_key, id);",
    // 6: a chat plugin's reply, stored before it is sent, so a restart sends
    // it again rather than asking the plugin (and Claude) twice.
    "ALTER TABLE telegram_updates ADD COLUMN reply TEXT;
     ALTER TABLE telegram_updates ADD COLUMN reply_mode TEXT;",
    // 7: the process that runs each run, so a host starting up interrupts
    // only runs whose process is gone (not a `mission run` still going).
    "ALTER TABLE runs ADD COLUMN pid INTEGER;",
    // 8: every outbound HTTP request of a plugin, sent or refused.
    "CREATE TABLE http_requests (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         run INTEGER,
         chat INTEGER,
         method TEXT NOT NULL,
         origin TEXT NOT NULL,
         path TEXT NOT NULL,
         status INTEGER,
         bytes_out INTEGER NOT NULL,
         bytes_in INTEGER NOT NULL,
         ms INTEGER NOT NULL,
         denied INTEGER NOT NULL,
         error TEXT
     );
     CREATE INDEX http_requests_by_plugin ON http_requests (plugin, id);",
    // 9: retention prunes by time: the time columns indexed; a run's output
    // in a table of its own, so dropping it frees whole pages rather than
    // leaving the run's pages half empty.
    "CREATE TABLE run_outputs (
         run_id INTEGER PRIMARY KEY,
         output TEXT NOT NULL
     );
     INSERT INTO run_outputs (run_id, output) SELECT id, output FROM runs WHERE output != '';
     ALTER TABLE runs DROP COLUMN output;
     CREATE INDEX runs_by_time ON runs (started_at);
     CREATE INDEX history_by_time ON history (at);
     CREATE INDEX claude_transcripts_by_time ON claude_transcripts (at);
     CREATE INDEX plugin_loads_by_time ON plugin_loads (at);
     CREATE INDEX http_requests_by_time ON http_requests (at);",
    // 10: tool uses asked about in the chat and each decision; tools a
    // person allowed for a whole conversation; every chat handler call
    // (live and shadow) measured; button presses among Telegram updates.
    "CREATE TABLE tool_approvals (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         session_key TEXT,
         chat_id INTEGER,
         tool TEXT NOT NULL,
         summary TEXT NOT NULL,
         asked_at INTEGER NOT NULL,
         message_id INTEGER,
         outcome TEXT NOT NULL,
         decided_at INTEGER,
         decided_by INTEGER,
         decided_by_name TEXT,
         reason TEXT
     );
     CREATE INDEX tool_approvals_by_time ON tool_approvals (asked_at);
     CREATE TABLE tool_allowances (
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         tool TEXT NOT NULL,
         allowed_by INTEGER NOT NULL,
         allowed_at INTEGER NOT NULL,
         PRIMARY KEY (plugin, session_key, tool)
     );
     CREATE TABLE chat_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         update_id INTEGER,
         chat_id INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         role TEXT NOT NULL,
         latency_ms INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT,
         reply_chars INTEGER NOT NULL,
         claude_calls INTEGER NOT NULL,
         input_tokens INTEGER NOT NULL,
         output_tokens INTEGER NOT NULL,
         context_tokens INTEGER NOT NULL,
         cost_usd REAL NOT NULL,
         history_given INTEGER NOT NULL
     );
     CREATE INDEX chat_calls_by_time ON chat_calls (at);
     ALTER TABLE telegram_updates ADD COLUMN callback_id TEXT;
     ALTER TABLE telegram_updates ADD COLUMN callback_data TEXT;",
    // 11: messages the shadow handlers still owe an answer to, so a restart
    // hands them on rather than losing them from the pilot's figures.
    "ALTER TABLE telegram_updates ADD COLUMN shadows_owed INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX chat_calls_by_update ON chat_calls (update_id);",
    // 12: what each plugin keeps in `state`, kept by the database itself,
    // so a quota is checked without reading the values.
    "CREATE TABLE plugin_state_usage (
         plugin TEXT PRIMARY KEY,
         keys INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     );
     INSERT INTO plugin_state_usage
         SELECT plugin, count(*), total(octet_length(key) + octet_length(value)) FROM plugin_state GROUP BY plugin;
     CREATE TRIGGER plugin_state_added AFTER INSERT ON plugin_state BEGIN
         INSERT INTO plugin_state_usage VALUES (NEW.plugin, 1, octet_length(NEW.key) + octet_length(NEW.value))
             ON CONFLICT (plugin) DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;
     END;
     CREATE TRIGGER plugin_state_changed AFTER UPDATE OF value ON plugin_state BEGIN
         UPDATE plugin_state_usage SET bytes = bytes - octet_length(OLD.value) + octet_length(NEW.value)
             WHERE plugin = NEW.plugin;
     END;
     CREATE TRIGGER plugin_state_removed AFTER DELETE ON plugin_state BEGIN
         UPDATE plugin_state_usage SET keys = keys - 1, bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
             WHERE plugin = OLD.plugin;
     END;",
    // 13: webhook deliveries, each stored (and synced) before it is
    // acknowledged; a redelivery of the same id is recorded as a duplicate,
    // a refused request without its body. A run names its delivery.
    "CREATE TABLE webhook_deliveries (
         id INTEGER PRIMARY KEY,
         webhook TEXT NOT NULL,
         delivery_id TEXT NOT NULL,
         received_at INTEGER NOT NULL,
         status INTEGER NOT NULL,
         verified TEXT NOT NULL,
         state TEXT NOT NULL,
         method TEXT NOT NULL,
         path TEXT NOT NULL,
         query TEXT NOT NULL,
         headers TEXT,
         body BLOB,
         bytes INTEGER NOT NULL,
         ack_ms REAL,
         outcome TEXT,
         finished_at INTEGER
     );
     CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook, delivery_id)
         WHERE state IN ('pending', 'done');
     CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (received_at);
     CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id) WHERE state = 'pending';
     ALTER TABLE runs ADD COLUMN delivery INTEGER;
     CREATE INDEX runs_by_delivery ON runs (delivery) WHERE delivery IS NOT NULL;",
    // 14: what a run wrote to the directories of its `files` grant.
    "ALTER TABLE runs ADD COLUMN files_written INTEGER NOT NULL DEFAULT 0;",
    // 15: what each watch saw of its directories after its last run, so the
    // changes since (the host running or down) are a difference of scans.
    "CREATE TABLE watch_state (
         watch TEXT PRIMARY KEY,
         seen_at INTEGER NOT NULL,
         files INTEGER NOT NULL,
         last_run INTEGER,
         runs INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE watch_files (
         watch TEXT NOT NULL,
         root TEXT NOT NULL,
         path TEXT NOT NULL,
         size INTEGER NOT NULL,
         mtime_ns INTEGER NOT NULL,
         PRIMARY KEY (watch, root, path)
     );",
    // 16: messages the host sends itself (alerts), kept until sent, and
    // each schedule's failure streak.
    "CREATE TABLE outbox (
         id INTEGER PRIMARY KEY,
         chat_id INTEGER NOT NULL,
         text TEXT NOT NULL,
         queued_at INTEGER NOT NULL,
         sent_at INTEGER
     );
     CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
     CREATE TABLE schedule_streaks (
         schedule TEXT PRIMARY KEY,
         failing_since INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         alerted INTEGER NOT NULL
     );",
    // 17: the run a `mission rerun` repeats.
    "ALTER TABLE runs ADD COLUMN rerun_of INTEGER;",
    // 18: what an alert is about (its buttons act on it) and whether quiet
    // hours hold it; mutes; missed runs told; thresholds told.
    "ALTER TABLE outbox ADD COLUMN schedule TEXT;
     ALTER TABLE outbox ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE alert_mutes (
         schedule TEXT PRIMARY KEY,
         until INTEGER NOT NULL
     );
     CREATE TABLE schedule_misses (
         schedule TEXT NOT NULL,
         reason TEXT NOT NULL,
         told_at INTEGER NOT NULL,
         missed INTEGER NOT NULL,
         PRIMARY KEY (schedule, reason)
     );
     CREATE TABLE alerts_told (
         key TEXT NOT NULL,
         level INTEGER NOT NULL,
         at INTEGER NOT NULL,
         PRIMARY KEY (key, level)
     );",
    // 19: whether a Claude call drew from the Agent SDK credit.
    "ALTER TABLE claude_calls ADD COLUMN credit INTEGER NOT NULL DEFAULT 0;",
    // 20: the task run a tool approval holds up.
    "ALTER TABLE tool_approvals ADD COLUMN run INTEGER;
     CREATE INDEX tool_approvals_pending_by_run ON tool_approvals (run) WHERE outcome = 'pending';",
    // 21: the files of a Telegram message (JSON), downloaded when handled.
    "ALTER TABLE telegram_updates ADD COLUMN files TEXT;",
    // 22: the files sent with a stored reply (JSON), and the message that
    // showed Claude's text while it was written in a group, to remove if
    // the host died before the reply went out.
    "ALTER TABLE telegram_updates ADD COLUMN reply_files TEXT;
     ALTER TABLE telegram_updates ADD COLUMN preview_message INTEGER;",
    // 23: every call Claude made of a tools plugin's tool.
    "CREATE TABLE tool_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         caller TEXT NOT NULL,
         plugin TEXT NOT NULL,
         tool TEXT NOT NULL,
         chat INTEGER,
         run INTEGER,
         plugin_hash TEXT,
         input_bytes INTEGER NOT NULL,
         output_bytes INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT,
         ms INTEGER NOT NULL
     );
     CREATE INDEX tool_calls_by_time ON tool_calls (at);",
    // 24: a tools plugin's calls with their input and result, where its
    // config says `record_contents = true`.
    "ALTER TABLE tool_calls ADD COLUMN input TEXT;
     ALTER TABLE tool_calls ADD COLUMN output TEXT;",
    // 25: the plugin a tools plugin's Claude call was made for (the one
    // whose Claude called the tool), whose budgets count it too.
    "ALTER TABLE claude_calls ADD COLUMN on_behalf_of TEXT;",
    // 26: the buttons under an alert (their names, space-separated: a
    // schedule's alert queued before had all three of them) and the run
    // its Details button shows.
    "ALTER TABLE outbox ADD COLUMN actions TEXT;
     ALTER TABLE outbox ADD COLUMN run INTEGER;
     UPDATE outbox SET actions = 'run pause mute' WHERE schedule IS NOT NULL;",
    // 27: requests refused to a webhook, counted per webhook, reason and
    // hour (`hour`: Unix ms of its start); only a sample of them is kept as
    // rows of `webhook_deliveries`.
    "CREATE TABLE webhook_refusals (
         webhook TEXT NOT NULL,
         reason TEXT NOT NULL,
         hour INTEGER NOT NULL,
         count INTEGER NOT NULL,
         last_at INTEGER NOT NULL,
         PRIMARY KEY (webhook, reason, hour)
     );
     CREATE INDEX webhook_refusals_by_hour ON webhook_refusals (hour);",
    // 28: a watch that is not watching (its directory gone): why, and since
    // when; both null while it watches.
    "ALTER TABLE watch_state ADD COLUMN broken TEXT;
     ALTER TABLE watch_state ADD COLUMN broken_since INTEGER;",
];

/// How long a statement waits for another connection's lock (another
/// `mission` process) before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle to the database, cheap to clone and shared by every part of the
/// host.
#[derive(Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
    /// The write-ahead log beside the file, synced by [`Database::sync`].
    wal: Arc<PathBuf>,
}

impl Database {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date. Any number of processes may open the same file at
    /// once: each waits for the others (up to [`BUSY_TIMEOUT`]) rather than
    /// failing, and migrations run one process at a time.
    pub fn open(path: &Path) -> anyhow::Result<Database> {
        let mut connection = Connection::open(path)
            .with_context(|| format!("failed to open the database {}", path.display()))?;
        // The busy timeout first, so statements wait for another process's
        // lock instead of failing. Switching a new file to WAL can still be
        // refused at once while another connection does the same (SQLite does
        // not wait there, to avoid a deadlock), so that step is retried.
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| retry_while_busy(|| connection.pragma_update(None, "journal_mode", "WAL")))
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .with_context(|| format!("failed to configure the database {}", path.display()))?;
        retry_while_busy(|| migrate(&mut connection))
            .with_context(|| format!("failed to migrate the database {}", path.display()))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Database {
            connection: Arc::new(Mutex::new(connection)),
            wal: Arc::new(PathBuf::from(wal)),
        })
    }

    /// Runs `query` on the connection on tokio's blocking pool.
    pub async fn call<T, F>(&self, query: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            query(&mut connection)
        })
        .await
        .context("database task panicked")?
        .context("database query failed")
    }

    /// Puts everything committed so far on disk (fsyncs the write-ahead
    /// log), without holding the connection: other queries go on meanwhile.
    /// Commits are otherwise synced at the next checkpoint (`synchronous =
    /// NORMAL`), which a `kill -9` cannot lose but a power cut can; this is
    /// for what must survive a power cut before the host acts on it, such as
    /// Telegram updates about to be confirmed.
    pub async fn sync(&self) -> anyhow::Result<()> {
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&*wal) {
            Ok(file) => file.sync_data(),
            // No log: a checkpoint moved everything into the file, and
            // synced it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .context("database task panicked")?
        .with_context(|| format!("failed to sync {}", self.wal.display()))
    }
}

/// The instant `millis` milliseconds after the Unix epoch, as every table
/// stores its times (an out-of-range value reads as the epoch).
pub fn datetime(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// An enum whose values code branches on, stored in the database (and shown
/// in `--json` output) by name: `as_str`/`from_name`, `Display`,
/// `Serialize`, and rusqlite's `ToSql`/`FromSql`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// The name stored and shown.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value stored as `name`, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let name = value.as_str()?;
                Self::from_name(name).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("`{name}` is not a known {}", stringify!($name)).into(),
                    )
                })
            }
        }
    };
}
pub(crate) use text_enum;

/// Runs `step` again while another connection holds the lock it needs, for
/// up to [`BUSY_TIMEOUT`].
fn retry_while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

/// Brings the schema up to date. The version is read again inside an
/// immediate (write-locked) transaction, so two processes opening a new file
/// together migrate it once: the second waits, then finds nothing to do.
fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let version = |c: &Connection| c.pragma_query_value(None, "user_version", |row| row.get::<_, usize>(0));
    if version(connection)? >= MIGRATIONS.len() {
        return Ok(());
    }
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version(&transaction)?) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index + 1)?;
    }
    transaction.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_in_wal_mode_at_the_latest_version_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mission.db");
        let db = Database::open(&path).unwrap();
        let (mode, version): (String, usize) = db
            .call(|c| {
                let mode = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let version = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                Ok((mode, version))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(version, MIGRATIONS.len());
        db.call(|c| c.execute("INSERT INTO plugin_state VALUES ('p', 'k', 'v')", []))
            .await
            .unwrap();
        drop(db);
        let db = Database::open(&path).unwrap();
        let value: String = db
            .call(|c| c.query_row("SELECT value FROM plugin_state", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(value, "v");
    }

    #[test]
    fn many_connections_opening_a_new_file_at_once_all_succeed_and_migrate_once() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mission.db");
            let start = Arc::new(std::sync::Barrier::new(12));
            let openers: Vec<_> = (0..12)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Database::open(&path).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                opener
                    .join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e:#}"));
            }
            let connection = Connection::open(&path).unwrap();
            let version: usize = connection
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(version, MIGRATIONS.len());
        }
    }
}
