//! `mission up`'s backups by `[backup]`: one whenever the newest archive in
//! the folder is `every` old (at once if none is), the newest `keep` kept,
//! each new one handed to the `then` program to copy it off the machine. A
//! failing backup or `then` is an alert, once a day.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::alerts::{self, Alert};
use crate::backup::{self, folder, Reason};
use crate::capabilities::process;
use crate::config::backup::{BackupConfig, ThenProgram};
use crate::config::Config;
use crate::host::Host;

/// The longest wait before the config is read again (a reloaded
/// `[backup]` applies within this).
const RECHECK: Duration = Duration::from_secs(60);
/// How long after a failed backup the next is tried (at most `every`).
const RETRY: Duration = Duration::from_secs(3600);

/// Takes backups by the config of the moment until `shutdown`.
pub async fn keep_backing_up(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let config = host.config();
        let wait = match &config.backup {
            Some(settings) => match until_due(settings) {
                Ok(Duration::ZERO) => {
                    // A stop does not wait for a backup: its partial files
                    // are cleared by the next one.
                    let taken = tokio::select! {
                        () = &mut shutdown => return,
                        taken = back_up(&host, &config, settings) => taken,
                    };
                    if taken {
                        continue;
                    }
                    settings.every.min(RETRY)
                }
                Ok(wait) => wait.min(RECHECK),
                Err(e) => {
                    tracing::error!("cannot read the backup folder {}: {e}", settings.dir.display());
                    RECHECK
                }
            },
            None => RECHECK,
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long until the next backup is due: `every` after the newest archive.
fn until_due(settings: &BackupConfig) -> std::io::Result<Duration> {
    let newest = folder::archives(&settings.dir)?.pop().map(|(_, at)| at);
    Ok(newest.map_or(Duration::ZERO, |at| {
        (at + settings.every - Utc::now()).to_std().unwrap_or_default()
    }))
}

/// Takes one backup, keeps the newest, runs `then`; says what failed.
/// Whether the archive was taken.
async fn back_up(host: &Host, config: &Config, settings: &BackupConfig) -> bool {
    let taken = backup::take(config, &settings.dir, Reason::Scheduled).await;
    let failed = match &taken {
        Ok(taken) => {
            tracing::info!(
                archive = %taken.path.display(),
                size = taken.size,
                took_ms = taken.took.as_millis() as u64,
                "backed up"
            );
            match folder::keep_newest(&settings.dir, settings.keep) {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(
                        removed = removed.len(),
                        keep = settings.keep,
                        "removed old archives"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot remove old archives from {}: {e}", settings.dir.display()),
            }
            match &settings.then {
                Some(then) => copy_off(then, &taken.path).await.err(),
                None => None,
            }
        }
        Err(e) => Some(format!("The backup failed: {e:#}")),
    };
    let Some(failure) = failed else {
        return true;
    };
    tracing::error!("{failure}");
    if let Some(alerts) = &config.alerts {
        let alert = Alert {
            chat: alerts.chat,
            text: failure,
            schedule: None,
            urgent: false,
        };
        // Told once a day, however often it is tried.
        let key = format!("backup:{}", Utc::now().format("%Y-%m-%d"));
        if let Err(e) = alerts::once(host.db(), key, 0, alert).await {
            tracing::error!("cannot queue the backup's alert: {e:#}");
        }
    }
    taken.is_ok()
}

/// Runs `then` with the archive's path last: why it failed, if it did.
pub async fn copy_off(then: &ThenProgram, archive: &Path) -> Result<(), String> {
    let mut args = then.args.clone();
    args.push(archive.display().to_string());
    let limits = &then.limits;
    let finished = process::run(limits, &then.program, &args, None, limits.timeout)
        .await
        .map_err(|e| {
            format!(
                "The backup's `then` ({}) could not run: {e}",
                then.program.display()
            )
        })?;
    match (finished.timed_out, finished.exit_code) {
        (false, Some(0)) => Ok(()),
        (true, _) => Err(format!(
            "The backup's `then` ({}) ran past its {:?} and was stopped; the archive {} is still here",
            then.program.display(),
            limits.timeout,
            archive.display()
        )),
        (false, code) => Err(format!(
            "The backup's `then` ({}) exited {}: {}; the archive {} is still here",
            then.program.display(),
            code.map_or("on a signal".into(), |c| c.to_string()),
            String::from_utf8_lossy(&finished.stderr)
                .trim()
                .chars()
                .take(300)
                .collect::<String>(),
            archive.display()
        )),
    }
}
