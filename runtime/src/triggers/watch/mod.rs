//! The watch trigger: `[watches.NAME]` directories whose changes start a
//! task plugin. `notify` only wakes a watch; what changed is the
//! difference between a scan of its directories and what it saw after its
//! last run ([`seen`]), so a burst of changes is one run (after `debounce`
//! of quiet), and changes made while the host was down start one run at
//! start (`catch_up = "once"`). With `until_empty`, a directory is a queue:
//! the plugin runs while it holds a matching file, up to `max_runs` in a
//! row. The watches are read from the config of the moment: a hot reload
//! that changes them restarts the watches, each after its current run.
//! A directory that goes away is waited for and watched again when it is
//! back ([`armed`]); meanwhile the watch is shown broken, with an alert
//! ([`health`]).

pub mod armed;
pub mod health;
pub mod seen;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::capabilities::Event;
use crate::config::watches::WatchConfig;
use crate::config::Config;
use crate::host::runs::StartedBy;
use crate::host::TaskRun;
use crate::plugin::call::Invocation;
use crate::triggers::{stopping, Invoker, Stopped, Trigger};
use crate::wasm::bindings::task::mission::plugin::event::{FileChange, WatchEvent};
use armed::Arming;
use seen::{Change, Files};

/// How often the config is looked at for changed watches.
const CONFIG_CHECK: Duration = Duration::from_secs(1);

/// The watches: always there, since a hot reload may add the first.
pub fn trigger(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    Some(Box::new(Watches {
        invoker: invoker.clone(),
    }))
}

struct Watches {
    invoker: Invoker,
}

#[async_trait::async_trait]
impl Trigger for Watches {
    fn name(&self) -> &'static str {
        "watches"
    }

    async fn run(self: Box<Self>, mut stopped: Stopped) {
        let mut current = self.invoker.config().watches.clone();
        loop {
            let (stop, stopping) = watch::channel(false);
            let mut running = start(&self.invoker, &current, stopping);
            let changed = loop {
                tokio::select! {
                    () = &mut stopped => break None,
                    () = tokio::time::sleep(CONFIG_CHECK) => {}
                }
                let now = self.invoker.config().watches.clone();
                if now != current {
                    break Some(now);
                }
            };
            let _ = stop.send(true);
            let grace = self.invoker.config().shutdown_grace;
            let unfinished = "watch runs still going at shutdown see their changes again at the next start";
            super::drain(&mut running, grace, unfinished).await;
            match changed {
                Some(now) => {
                    tracing::info!("[watches] changed: the watches start again");
                    current = now;
                }
                None => return,
            }
        }
    }
}

/// Starts a lane for each of `watches`, each with its own file watcher.
fn start(invoker: &Invoker, watches: &[WatchConfig], stopping: watch::Receiver<bool>) -> JoinSet<()> {
    let mut lanes = JoinSet::new();
    for config in watches {
        let lane = Lane {
            invoker: invoker.clone(),
            config: config.clone(),
            stopping: stopping.clone(),
            left_out: seen::LeftOut::default(),
        };
        lanes.spawn(lane.run());
    }
    lanes
}

/// One watch: takes stock at start, then after each quiet burst.
struct Lane {
    invoker: Invoker,
    config: WatchConfig,
    stopping: watch::Receiver<bool>,
    /// What its scans leave out, as last told.
    left_out: seen::LeftOut,
}

impl Lane {
    async fn run(mut self) {
        let (events, mut woken) = mpsc::unbounded_channel();
        let mut arming = Arming::new(&self.config.paths, events);
        let db = self.invoker.db().clone();
        let mut seen = match seen::load(&db, &self.config.name).await {
            Ok(seen) => seen,
            Err(e) => {
                tracing::error!(watch = self.config.name, "cannot read what the watch saw: {e:#}");
                return;
            }
        };
        // Directories no longer watched are forgotten, not reported removed.
        if let Some(seen) = &mut seen {
            seen.retain(|(root, _), _| self.config.paths.contains(root));
        }
        // At start: what changed while the host was down, per `catch_up`.
        let now = seen::scan(
            &self.config,
            seen.as_ref().unwrap_or(&Files::new()),
            &mut self.left_out,
        );
        let first = match &seen {
            Some(before) if self.config.catch_up => seen::changes(before, &now),
            // A first start takes stock without a run (but a queue runs for what it holds).
            _ => Vec::new(),
        };
        if seen.is_none() || !self.config.catch_up {
            if let Err(e) = seen::save(&db, &self.config.name, &now, None).await {
                tracing::error!(watch = self.config.name, "cannot keep what the watch saw: {e:#}");
            }
            seen = Some(now.clone());
        }
        let mut seen = seen.unwrap_or_default();
        let mut told = health::told(&db, &self.config.name).await;
        health::tell(&self.invoker, &self.config.name, arming.broken(), &mut told).await;
        tracing::info!(
            watch = self.config.name,
            files = now.len(),
            "watching {}",
            self.config
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if self.config.until_empty && !now.is_empty() {
            seen = self.run_for(seen::present(&now), now).await;
        } else if !first.is_empty() {
            tracing::info!(
                watch = self.config.name,
                changes = first.len(),
                "changes while the host was down"
            );
            seen = self.run_for(first, now).await;
        }
        loop {
            // An event about the watch, or the time to check its directories.
            let woke = tokio::select! {
                event = woken.recv() => match event {
                    Some(event) => arming.saw(&event),
                    None => return,
                },
                () = tokio::time::sleep(arming.next_check()) => false,
                () = stopping(&mut self.stopping) => return,
            };
            if woke {
                // One run for a burst: wait until it has been quiet for `debounce`.
                loop {
                    tokio::select! {
                        event = woken.recv() => match event {
                            Some(event) => { arming.saw(&event); }
                            None => return,
                        },
                        () = tokio::time::sleep(self.config.debounce) => break,
                        () = stopping(&mut self.stopping) => return,
                    }
                }
            }
            // A directory back (or replaced) is watched again, and scanned.
            let rearmed = arming.check();
            health::tell(&self.invoker, &self.config.name, arming.broken(), &mut told).await;
            if !woke && !rearmed {
                continue;
            }
            let now = seen::scan(&self.config, &seen, &mut self.left_out);
            let changed = seen::changes(&seen, &now);
            // A queue is told what it holds; a watch, what changed. (A queue
            // left full at `max_runs` waits for a change, not for the wakes
            // its own runs caused.)
            let changes = match self.config.until_empty {
                true if !changed.is_empty() => seen::present(&now),
                _ => changed,
            };
            if changes.is_empty() {
                continue;
            }
            seen = self.run_for(changes, now).await;
            if !self.config.queue {
                // `skip`: what changed during the run is taken as seen.
                while let Ok(event) = woken.try_recv() {
                    arming.saw(&event);
                }
                seen = seen::scan(&self.config, &seen, &mut self.left_out);
                if let Err(e) = seen::save(&db, &self.config.name, &seen, None).await {
                    tracing::error!(watch = self.config.name, "cannot keep what the watch saw: {e:#}");
                }
            }
        }
    }

    /// Runs the plugin for `changes` (the scan `now`), again while a queue
    /// holds files (up to `max_runs`); returns what the last run saw.
    async fn run_for(&mut self, mut changes: Vec<Change>, mut now: Files) -> Files {
        let mut runs = 0;
        loop {
            runs += 1;
            let run = self.run_once(&changes).await;
            if let Err(e) = seen::save(self.invoker.db(), &self.config.name, &now, run).await {
                tracing::error!(watch = self.config.name, "cannot keep what the watch saw: {e:#}");
            }
            if !self.config.until_empty || *self.stopping.borrow() {
                return now;
            }
            let after = seen::scan(&self.config, &now, &mut self.left_out);
            if after.is_empty() {
                return after;
            }
            if runs >= self.config.max_runs {
                tracing::warn!(
                    watch = self.config.name,
                    runs,
                    files = after.len(),
                    "the queue is not empty after max_runs runs in a row: waiting for the next change"
                );
                return after;
            }
            changes = seen::present(&after);
            now = after;
        }
    }

    /// One run of the plugin, told `changes`; its run id if it ran.
    async fn run_once(&self, changes: &[Change]) -> Option<i64> {
        let plugin = self.invoker.plugin(self.config.plugin.as_str());
        let values = plugin
            .as_ref()
            .map(|p| p.config.values.clone())
            .unwrap_or_default();
        let files = plugin.as_ref().and_then(|p| p.config.files.clone());
        let event = WatchEvent {
            watch: self.config.name.clone(),
            changes: changes
                .iter()
                .map(|change| FileChange {
                    directory: files
                        .as_deref()
                        .and_then(|grant| guest_directory(grant, &change.root))
                        .unwrap_or_default(),
                    path: change.path.clone(),
                    kind: change.kind,
                })
                .collect(),
        };
        let run = TaskRun {
            plugin: self.config.plugin.as_str(),
            schedule: None,
            trigger: StartedBy::Watch,
            invocation: Invocation {
                name: self.config.name.clone(),
                scheduled_at: chrono::Utc::now().timestamp_millis(),
                attempt: 1,
                config: values,
            },
            event: Some(Arc::new(Event::Watch(event))),
            timeout: self.config.timeout,
            follow_ups: &[],
        };
        match self.invoker.run(run).await {
            Ok(record) => Some(record.id),
            Err(e) => {
                tracing::error!(watch = self.config.name, "failed to run: {e:#}");
                None
            }
        }
    }
}

/// Where the plugin sees `root` through its `files` grant, if it does.
fn guest_directory(grant: &crate::config::files::FilesGrant, root: &std::path::Path) -> Option<String> {
    grant.read.iter().chain(&grant.write).find_map(|dir| {
        let rest = root.strip_prefix(&dir.host).ok()?;
        let mut guest = dir.guest.clone();
        for part in rest.components() {
            guest.push('/');
            guest.push_str(&part.as_os_str().to_string_lossy());
        }
        Some(guest)
    })
}

/// Watches apply on a hot reload by themselves.
pub fn keep_restart_settings(old: &Config, new: &mut Config) -> Option<String> {
    (old.watches != new.watches)
        .then(|| "[watches] changed: each watch starts again after its current run".to_owned())
}
