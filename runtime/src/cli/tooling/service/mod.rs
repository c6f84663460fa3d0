//! Running `mission up` as the machine's service: a LaunchAgent on macOS
//! ([`launchd`]), a systemd user unit on Linux ([`systemd`]). Both are made
//! from one [`ServiceSpec`]: the absolute binary and config, the working
//! directory, and only the environment variables the config names.

pub mod launchd;
pub mod systemd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Config, Grant};

/// The service manager that runs the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    /// launchd: a LaunchAgent in `~/Library/LaunchAgents`.
    Launchd,
    /// systemd: a user unit in `~/.config/systemd/user`.
    Systemd,
}

impl Manager {
    /// This machine's: launchd on macOS, systemd elsewhere.
    pub fn current() -> Manager {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// Everything a service file says, whatever the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// The `mission` executable, absolute.
    pub binary: PathBuf,
    /// The config file, absolute.
    pub config: PathBuf,
    /// Where the host runs: the config's directory.
    pub working_dir: PathBuf,
    /// Where launchd writes the host's output (systemd keeps it in the
    /// journal).
    pub log_dir: PathBuf,
    /// The environment the host is given: the variables the config names,
    /// with their values here, and `PATH`.
    pub env: BTreeMap<String, String>,
    /// Variables the config names that are not set here: the service runs
    /// without them.
    pub unset: Vec<String>,
    /// The open-file limit the manager starts the host with (launchd's
    /// default is 256, fewer than the webhook listener alone may hold).
    pub open_files: u64,
}

impl ServiceSpec {
    /// The spec for running `binary up --config <config.file>`, with the
    /// environment read from `env` (this process's, outside tests).
    pub fn new(
        config: &Config,
        binary: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ServiceSpec> {
        let config_file = std::path::absolute(&config.file)
            .with_context(|| format!("cannot make {} absolute", config.file.display()))?;
        let working_dir = config_file
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("/"));
        let log_dir = std::path::absolute(config.data_dir.join("logs"))?;
        let mut values = BTreeMap::new();
        let mut unset = Vec::new();
        for name in named_variables(config) {
            match env(&name) {
                Some(value) => {
                    values.insert(name, value);
                }
                None => unset.push(name),
            }
        }
        values.insert("PATH".to_owned(), service_path(config, env("PATH")));
        Ok(ServiceSpec {
            binary: binary.to_owned(),
            config: config_file,
            working_dir,
            log_dir,
            env: values,
            unset,
            open_files: crate::os::fd_limit::SERVICE_OPEN_FILES,
        })
    }

    /// The command line the manager starts.
    pub fn arguments(&self) -> Vec<String> {
        vec![
            self.binary.display().to_string(),
            "up".to_owned(),
            "--config".to_owned(),
            self.config.display().to_string(),
        ]
    }
}

/// The environment variables `config` names: the bot's token, the API key,
/// what the Claude CLI is given, HTTP secrets and what processes are given.
/// `PATH` is handled on its own.
pub fn named_variables(config: &Config) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    if let Some(telegram) = &config.telegram {
        names.insert(telegram.token_env.clone());
    }
    if let Some(claude) = &config.claude {
        names.extend(claude.env.iter().cloned());
        let uses_api = config.plugins.iter().any(|p| {
            p.grants.contains(&Grant::Claude)
                && p.claude
                    .allowed_backends(claude)
                    .contains(&crate::config::claude::Backend::Api)
        });
        if uses_api {
            names.insert(claude.api.key_env.clone());
        }
    }
    for plugin in &config.plugins {
        if let Some(http) = &plugin.http {
            names.extend(http.secrets.iter().map(|s| s.env.clone()));
        }
        if let Some(process) = &plugin.process {
            names.extend(process.env.iter().cloned());
        }
    }
    names.remove("PATH");
    names.into_iter().collect()
}

/// `PATH` for the service: the directory of the `claude` CLI first (a
/// service starts with the manager's bare `PATH`, where it is rarely
/// found), then the installing shell's `PATH`, else the system's.
fn service_path(config: &Config, current: Option<String>) -> String {
    let mut dirs: Vec<String> = Vec::new();
    if let Some(dir) = config
        .claude
        .as_ref()
        .and_then(|c| c.resolved_command())
        .and_then(|c| c.parent().map(|d| d.display().to_string()))
    {
        dirs.push(dir);
    }
    let rest = current.unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    for dir in rest.split(':').filter(|d| !d.is_empty()) {
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_owned());
        }
    }
    dirs.join(":")
}

/// Writes `contents` to `path`, readable by its owner only (it may hold
/// secrets), creating the directory.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode through `open`: set it.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What the service manager says of the service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagerStatus {
    /// Whether the manager knows the service (it is loaded).
    pub loaded: bool,
    /// Whether its process is running, and which.
    pub pid: Option<u32>,
    /// The manager's own word for its state (`running`, `active (running)`,
    /// `failed`...).
    pub state: String,
    /// Since when it has been in that state, as the manager puts it.
    pub since: Option<String>,
}

/// Runs a service manager command to its end, whatever its exit status; an
/// error only if it cannot be started.
pub(crate) fn manager_output(program: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{program}`"))
}

/// Runs a service manager command; its stdout, or an error with its stderr.
pub(crate) fn manager_command(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = manager_output(program, args)?;
    if !output.status.success() {
        anyhow::bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
