//! `mission service install | uninstall | status`: the host as the
//! machine's service (a LaunchAgent or a systemd user unit).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Local;
use serde_json::json;

use super::open_db;
use crate::cli::tooling::service::{launchd, systemd, write_private, Manager, ServiceSpec};
use crate::config::Config;
use crate::serve::control;

/// `mission service ...`
#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Write the service file (with the binary, this config, and only the
    /// environment variables the config names) and start it.
    Install {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
        /// Print the file instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop the service and remove its file.
    Uninstall {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
    },
    /// Whether it is installed and running, and since when; exits 3 when the
    /// host is not running.
    Status {
        /// The service manager (default: this machine's).
        #[arg(long, value_enum, default_value_t = Manager::current())]
        manager: Manager,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl ServiceCommand {
    /// Runs it on `config`.
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        match self {
            ServiceCommand::Install { manager, dry_run } => install(config, manager, dry_run),
            ServiceCommand::Uninstall { manager } => uninstall(manager),
            ServiceCommand::Status { manager, json } => status(config, manager, json).await,
        }
    }
}

/// The service file's path for `manager`, under this user's home.
fn service_file(manager: Manager) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set: cannot tell where the service file goes")?;
    Ok(match manager {
        Manager::Launchd => launchd::path(&home),
        Manager::Systemd => {
            let config_home = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
            systemd::path(&home, config_home.as_deref())
        }
    })
}

pub(super) fn install(config: Config, manager: Manager, dry_run: bool) -> anyhow::Result<ExitCode> {
    let binary = std::env::current_exe().context("cannot tell where the mission binary is")?;
    let spec = ServiceSpec::new(&config, &binary, |name| std::env::var(name).ok())?;
    let text = match manager {
        Manager::Launchd => launchd::render(&spec)?,
        Manager::Systemd => systemd::render(&spec),
    };
    for name in &spec.unset {
        eprintln!(
            "warning: {name} is named in {} but not set here: the service runs without it \
             (set it and install again)",
            config.file.display()
        );
    }
    if dry_run {
        print!("{}", crate::untrusted::terminal(&text));
        return Ok(ExitCode::SUCCESS);
    }
    let path = service_file(manager)?;
    write_private(&path, text.as_bytes())?;
    say!("wrote {}", path.display());
    let loaded = match manager {
        Manager::Launchd => {
            std::fs::create_dir_all(&spec.log_dir)
                .with_context(|| format!("cannot create {}", spec.log_dir.display()))?;
            launchd::load(&path)
        }
        Manager::Systemd => systemd::load(),
    };
    loaded.with_context(|| format!("{} is written, but the service did not start", path.display()))?;
    say!(
        "started: `mission up --config {}` runs now, at login and after a crash",
        spec.config.display()
    );
    match manager {
        Manager::Launchd => say!("output goes to {}", spec.log_dir.display()),
        Manager::Systemd => say!(
            "output goes to the journal: journalctl --user -u {}",
            systemd::UNIT
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn uninstall(manager: Manager) -> anyhow::Result<ExitCode> {
    let path = service_file(manager)?;
    if !path.exists() {
        say!("not installed: {} does not exist", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let unloaded = match manager {
        Manager::Launchd => launchd::unload(),
        Manager::Systemd => systemd::unload(),
    };
    if let Err(e) = unloaded {
        eprintln!("warning: the service manager did not stop it: {e:#}");
    }
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    say!("removed {}; the host no longer runs as a service", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Exit code 0 when the host runs, 3 when it does not (as `systemctl
/// status`).
pub(super) async fn status(config: Config, manager: Manager, json: bool) -> anyhow::Result<ExitCode> {
    let path = service_file(manager)?;
    let installed = path.exists();
    let managed = match manager {
        Manager::Launchd => launchd::status(),
        Manager::Systemd => systemd::status(),
    };
    let heartbeat = control::last_heartbeat(&open_db(&config)?).await?;
    let running = heartbeat.is_some_and(|h| h.is_fresh());
    if json {
        let managed = match &managed {
            Ok(m) => json!({"loaded": m.loaded, "state": m.state, "pid": m.pid, "since": m.since}),
            Err(e) => json!({"error": format!("{e:#}")}),
        };
        let value = json!({
            "file": path.display().to_string(),
            "installed": installed,
            "manager": managed,
            "host": heartbeat.map(|h| json!({
                "pid": h.pid,
                "running": h.is_fresh(),
                "started_at": h.started_at.to_rfc3339(),
                "heartbeat_at": h.at.to_rfc3339(),
            })),
        });
        say!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        match installed {
            true => say!("service: installed ({})", path.display()),
            false => say!("service: not installed ({} does not exist)", path.display()),
        }
        match managed {
            Ok(m) if m.loaded => say!(
                "manager: {}{}{}",
                m.state,
                m.pid.map(|p| format!(", pid {p}")).unwrap_or_default(),
                m.since.map(|s| format!(", since {s}")).unwrap_or_default()
            ),
            Ok(_) => say!("manager: not loaded"),
            Err(e) => say!("manager: cannot ask it: {e:#}"),
        }
        match heartbeat {
            Some(h) if h.is_fresh() => say!(
                "host: running, pid {}, since {} (heartbeat {})",
                h.pid,
                h.started_at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
                h.at.with_timezone(&Local).format("%H:%M:%S")
            ),
            Some(h) => say!(
                "host: not running (pid {} last beat at {}, without a clean stop)",
                h.pid,
                h.at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S")
            ),
            None => say!("host: not running"),
        }
    }
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
