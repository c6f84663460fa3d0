//! The one SQLite file that holds everything durable: run records, plugin
//! state and conversation history. Opened in WAL mode, migrated by
//! `PRAGMA user_version`; queries run on tokio's blocking pool.

mod migrations;
pub mod retention;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

use migrations::MIGRATIONS;

/// The name of the SQLite file in the data directory.
pub const DATABASE_FILE: &str = "mission.db";

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
        migrate(&mut connection)
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

/// Creates a database at `path` with the schema of version `version`, as an
/// older `mission` left it (for tests of what opening it does).
#[cfg(test)]
pub(crate) fn create_at_version(path: &Path, version: usize) -> rusqlite::Result<()> {
    apply_migrations(&mut Connection::open(path)?, version)
}

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

/// The schema version this binary brings a database to.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The schema version of the database `connection` is open on (0: a new
/// file).
pub fn schema_version(connection: &Connection) -> rusqlite::Result<usize> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// A database written by a newer `mission` than this one, which this one
/// must not touch.
#[derive(Debug, thiserror::Error)]
#[error(
    "its schema is version {found}, newer than this mission knows (version {SCHEMA_VERSION}): \
     it was written by a newer mission; run that one, or restore a backup taken by this one"
)]
pub struct NewerSchema {
    /// The version found.
    pub found: usize,
}

/// Brings the schema up to date. The version is read again inside an
/// immediate (write-locked) transaction, so two processes opening a new file
/// together migrate it once: the second waits, then finds nothing to do.
fn migrate(connection: &mut Connection) -> anyhow::Result<()> {
    let found = retry_while_busy(|| schema_version(connection))?;
    if found > SCHEMA_VERSION {
        return Err(NewerSchema { found }.into());
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    retry_while_busy(|| apply_migrations(connection, SCHEMA_VERSION)).map_err(Into::into)
}

/// Applies the migrations that take the database up to version `to`.
fn apply_migrations(connection: &mut Connection, to: usize) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (index, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .take(to)
        .skip(schema_version(&transaction)?)
    {
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

    #[test]
    fn a_database_from_a_newer_mission_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mission.db");
        drop(Database::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 3)
            .unwrap();
        let error = format!(
            "{:#}",
            Database::open(&path).err().expect("a newer schema is refused")
        );
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains(&format!(
                "schema is version {}, newer than this mission knows",
                SCHEMA_VERSION + 3
            )),
            "{error}"
        );
        let version = schema_version(&Connection::open(&path).unwrap()).unwrap();
        assert_eq!(version, SCHEMA_VERSION + 3);
    }
}
