//! Hot reload: watches every plugin's `.wasm`, the schedules directory and
//! `mission.toml`, and applies each change to the running host: a plugin is
//! recompiled off the hot path and swapped in, a schedule replaced, a config
//! change applied to the next call. Whatever is refused leaves the previous
//! version serving. Also does what `mission reload` asks ([`ReloadRequest`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::watcher::FileWatcher;
use crate::config::Config;
use crate::os::zone::host_zone;
use crate::plugin::loads::LoadOutcome;
use crate::triggers::schedule;
use crate::triggers::schedule::scheduler::ScheduleChange;

/// What hot reload needs of the host: its config, and the two ways to
/// change what it serves.
#[async_trait::async_trait]
pub trait Reloadable: Send + Sync + 'static {
    /// The configuration the host runs with now.
    fn config(&self) -> Arc<Config>;
    /// Loads plugin `name` again from its file; the old version keeps
    /// serving unless the new one loads.
    async fn reload_plugin(&self, name: &str) -> anyhow::Result<LoadOutcome>;
    /// Switches to `config`; returns notes on what was and was not applied.
    async fn apply_config(&self, config: Config) -> Vec<String>;
}

/// `mission reload [PLUGIN]`, handed over by the control channel.
#[derive(Debug)]
pub struct ReloadRequest {
    /// The plugin to reload; all of them if none.
    pub plugin: Option<String>,
    /// Told when the reloads are done.
    pub done: oneshot::Sender<bool>,
}

/// The hot-reload task of one host.
pub struct HotReload {
    watcher: FileWatcher,
    changed: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    requests: mpsc::UnboundedReceiver<ReloadRequest>,
    reloader: Reloader,
}

impl HotReload {
    /// Starts watching `host`'s files; schedule changes will go to the
    /// scheduler through `schedules`. Changes from now on are seen. The
    /// returned sender takes `mission reload` requests.
    pub fn start(
        host: Arc<dyn Reloadable>,
        schedules: mpsc::UnboundedSender<ScheduleChange>,
    ) -> anyhow::Result<(HotReload, mpsc::UnboundedSender<ReloadRequest>)> {
        let (mut watcher, changed) = FileWatcher::start()?;
        watch(&mut watcher, &host.config());
        let (requests_in, requests) = mpsc::unbounded_channel();
        let reload = HotReload {
            watcher,
            changed,
            requests,
            reloader: Reloader { host, schedules },
        };
        Ok((reload, requests_in))
    }

    /// Applies changes until `shutdown` completes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                Some(paths) = self.changed.recv() => {
                    for path in paths {
                        self.reloader.changed(&path).await;
                    }
                    watch(&mut self.watcher, &self.reloader.host.config());
                }
                Some(request) = self.requests.recv() => self.reloader.reload(request).await,
            }
        }
    }
}

/// Watches the directories of the config file, the schedules (created if
/// missing, so files can be dropped in) and every plugin file; a directory
/// that cannot be watched is logged.
fn watch(watcher: &mut FileWatcher, config: &Config) {
    if let Err(e) = std::fs::create_dir_all(&config.schedules_dir) {
        tracing::warn!(dir = %config.schedules_dir.display(), "cannot create the schedules directory: {e}");
    }
    let config_dir = config.file.parent().unwrap_or(Path::new("."));
    let plugin_dirs = config.plugins.iter().filter_map(|p| p.wasm.parent());
    for dir in [config_dir, &config.schedules_dir].into_iter().chain(plugin_dirs) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Err(e) = watcher.watch_dir(dir) {
            tracing::warn!("hot reload will not see changes there: {e:#}");
        }
    }
}

/// `path` made absolute, for comparing with what the watcher reports.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

struct Reloader {
    host: Arc<dyn Reloadable>,
    schedules: mpsc::UnboundedSender<ScheduleChange>,
}

impl Reloader {
    async fn changed(&self, path: &Path) {
        let config = self.host.config();
        if path == absolute(&config.file) {
            return self.config_changed().await;
        }
        if path.parent() == Some(&absolute(&config.schedules_dir))
            && path.extension().is_some_and(|e| e == "toml")
        {
            return self.schedule_changed(path, &config);
        }
        for plugin in config.plugins.iter().filter(|p| absolute(&p.wasm) == path) {
            if let Err(e) = self.host.reload_plugin(plugin.name.as_str()).await {
                tracing::error!(plugin = %plugin.name, "reload failed: {e:#}");
            }
        }
    }

    async fn config_changed(&self) {
        let file = self.host.config().file.clone();
        let config = match Config::load(&file) {
            Ok(config) => config,
            Err(e) => return tracing::error!("config change refused, the previous config stays: {e}"),
        };
        for note in self.host.apply_config(config).await {
            tracing::info!("config reloaded: {note}");
        }
        let config = self.host.config();
        let (schedules, errors) = schedule::load_all(&config, host_zone());
        for unknown in schedule::chains::unknown_parents(&config, &schedules, &errors) {
            tracing::error!("{unknown}");
        }
        for error in errors {
            tracing::error!("schedule refused, its previous version keeps running: {error}");
        }
        for schedule in schedules {
            let _ = self.schedules.send(ScheduleChange::Upsert(Box::new(schedule)));
        }
    }

    fn schedule_changed(&self, path: &Path, config: &Config) {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            return;
        };
        if !path.exists() {
            let _ = self.schedules.send(ScheduleChange::Remove(name.to_owned()));
            return;
        }
        // Read with the others: its `after` is checked against them.
        let (schedules, errors) = schedule::load_all(config, host_zone());
        if let Some(e) = errors.iter().find(|e| e.file == path) {
            return tracing::error!("schedule refused, its previous version keeps running: {e}");
        }
        if let Some(schedule) = schedules.into_iter().find(|s| s.name == name) {
            let _ = self.schedules.send(ScheduleChange::Upsert(Box::new(schedule)));
        }
    }

    async fn reload(&self, request: ReloadRequest) {
        let names: Vec<String> = match request.plugin {
            None => self
                .host
                .config()
                .plugins
                .iter()
                .map(|p| p.name.to_string())
                .collect(),
            Some(name) => vec![name],
        };
        tracing::info!(plugins = ?names, "reload requested");
        for name in names {
            if let Err(e) = self.host.reload_plugin(&name).await {
                tracing::error!(plugin = name, "reload failed: {e:#}");
            }
        }
        let _ = request.done.send(true);
    }
}
