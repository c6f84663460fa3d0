//! `mission import launchd PATH...`: LaunchAgents brought over as
//! `run-command` plugins with schedules and watches, and a report of what
//! was not.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::open_db;
use crate::cli::tooling::import::launchd::{self, Job, LAUNCHD_USER_VARIABLES};
use crate::cli::tooling::import::toml_string;
use crate::config::Config;
use crate::os::zone::host_zone;
use crate::triggers::schedule;

/// `mission import ...`
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// LaunchAgent plists (files, or directories of them): each job on a
    /// calendar or interval becomes a `run-command` plugin in the config
    /// and a schedule; the others are listed with the reason. launchd is
    /// not changed.
    Launchd {
        /// Plist files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The `run-command` plugin's .wasm, as written into the config.
        #[arg(long, default_value = "plugins/target/wasm32-wasip2/release/run_command.wasm")]
        wasm: PathBuf,
        /// Print what would be written instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
}

impl ImportCommand {
    /// Runs it on `config`.
    pub(super) async fn run(self, config: Config) -> anyhow::Result<ExitCode> {
        match self {
            ImportCommand::Launchd { paths, wasm, dry_run } => {
                import_launchd(config, &paths, &wasm, dry_run).await
            }
        }
    }
}

/// What one job becomes: its `mission.toml` block and schedule files.
struct Written {
    job: Job,
    config_block: String,
    schedules: Vec<(String, String)>,
}

pub(super) async fn import_launchd(
    config: Config,
    paths: &[PathBuf],
    wasm: &Path,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let mut imported = Vec::new();
    let mut skipped = Vec::new();
    for read in launchd::read_all(paths) {
        match read {
            Ok(job) => match already_there(&config, &job) {
                Some(reason) => skipped.push((job.label.clone(), job.file.clone(), reason)),
                None => imported.push(render(job, wasm)),
            },
            Err(skip) => skipped.push((
                skip.label.unwrap_or_else(|| "(no label)".into()),
                skip.file,
                skip.reason,
            )),
        }
    }
    if dry_run {
        for written in &imported {
            say!(
                "# --- add to {} ---\n{}",
                config.file.display(),
                written.config_block
            );
            for (name, text) in &written.schedules {
                say!(
                    "# --- {} ---\n{text}",
                    config.schedules_dir.join(format!("{name}.toml")).display()
                );
            }
        }
    } else if !imported.is_empty() {
        write(&config, &imported).await?;
    }
    report(&config, &imported, &skipped, dry_run);
    Ok(ExitCode::SUCCESS)
}

/// Why `job` is not imported again, if it was before.
fn already_there(config: &Config, job: &Job) -> Option<String> {
    if config.plugin(&job.name).is_some() {
        return Some(format!(
            "already imported: plugins.{} is in {}",
            job.name,
            config.file.display()
        ));
    }
    let schedule = config.schedules_dir.join(format!("{}.toml", job.name));
    schedule
        .exists()
        .then(|| format!("already imported: {} exists", schedule.display()))
}

fn render(job: Job, wasm: &Path) -> Written {
    let name = &job.name;
    let mut block = String::new();
    let _ = writeln!(
        block,
        "\n# Imported from {} (launchd label {}).",
        job.file.display(),
        job.label
    );
    let _ = writeln!(block, "[plugins.{name}]");
    let _ = writeln!(block, "world = \"task\"");
    let _ = writeln!(block, "wasm = {}", toml_string(&wasm.display().to_string()));
    let _ = writeln!(block, "grants = [\"process\"]");
    let _ = writeln!(
        block,
        "# launchd sets no deadline; raise this if the job needs longer."
    );
    let _ = writeln!(block, "timeout = \"1h\"");
    let args = serde_json::to_string(&job.args).expect("strings serialize");
    let watch_names: Vec<String> = (0..job.watches.len())
        .map(|i| match i {
            0 => name.clone(),
            i => format!("{name}-{}", i + 1),
        })
        .collect();
    // Each watch's directory, for run-command to hand the changed paths on.
    let watched: std::collections::BTreeMap<&str, String> = watch_names
        .iter()
        .zip(&job.watches)
        .map(|(n, w)| (n.as_str(), w.dir.display().to_string()))
        .collect();
    let watched = match watched.is_empty() {
        true => String::new(),
        false => format!(
            ", watched = {}",
            toml_string(&serde_json::to_string(&watched).expect("strings serialize"))
        ),
    };
    let _ = writeln!(
        block,
        "config = {{ program = {}, args = {}{watched} }}",
        toml_string(&job.program.display().to_string()),
        toml_string(&args)
    );
    let _ = writeln!(block, "\n[plugins.{name}.process]");
    let _ = writeln!(
        block,
        "programs = [{}]",
        toml_string(&job.program.display().to_string())
    );
    let passed: Vec<String> = LAUNCHD_USER_VARIABLES
        .iter()
        .filter(|v| !job.env.contains_key(**v))
        .map(|v| toml_string(v))
        .collect();
    let _ = writeln!(block, "env = [{}]", passed.join(", "));
    let set: Vec<String> = job
        .env
        .iter()
        .map(|(k, v)| format!("{} = {}", toml_key(k), toml_string(v)))
        .collect();
    let _ = writeln!(block, "set_env = {{ {} }}", set.join(", "));
    if let Some(workdir) = &job.workdir {
        let _ = writeln!(block, "workdir = {}", toml_string(&workdir.display().to_string()));
    }
    let _ = writeln!(block, "timeout = \"1h\"");
    for (watch_name, watch) in watch_names.iter().zip(&job.watches) {
        // A disabled job's watch is written commented out: watches cannot be paused.
        let off = if job.disabled { "# " } else { "" };
        let _ = writeln!(
            block,
            "\n# From {} (the changed paths reach the program on its standard input).",
            watch.from()
        );
        let _ = writeln!(block, "{off}[watches.{watch_name}]");
        let _ = writeln!(
            block,
            "{off}paths = [{}]",
            toml_string(&watch.dir.display().to_string())
        );
        if let Some(file) = &watch.file {
            let _ = writeln!(block, "{off}pattern = {}", toml_string(file));
        }
        let _ = writeln!(block, "{off}plugin = {}", toml_string(name));
        let _ = writeln!(block, "{off}debounce = \"1s\"");
        if watch.queue {
            let _ = writeln!(block, "{off}until_empty = true");
        }
    }
    let schedules = job
        .timings
        .iter()
        .enumerate()
        .map(|(i, timing)| {
            let schedule_name = match i {
                0 => name.clone(),
                i => format!("{name}-{}", i + 1),
            };
            let text = format!(
                "# Imported from {} ({}).\nplugin = {}\n{}\n\
                 # launchd runs a job missed while the machine slept once on wake.\n\
                 catch_up = \"once\"\n\
                 # launchd never runs a job twice at once.\n\
                 overlap = \"skip\"\n",
                job.file.display(),
                timing.from(),
                toml_string(name),
                timing.toml_line()
            );
            (schedule_name, text)
        })
        .collect();
    Written {
        job,
        config_block: block,
        schedules,
    }
}

/// A TOML key: bare when it can be.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        toml_string(key)
    }
}

/// Appends the plugins to the config (only if it still loads) and writes
/// the schedule files; if one does not load, puts everything back.
async fn write(config: &Config, imported: &[Written]) -> anyhow::Result<()> {
    let blocks: String = imported.iter().map(|w| w.config_block.as_str()).collect();
    let (updated, original) = config.append(&blocks)?;
    let mut files = Vec::new();
    let undo = |files: &[PathBuf]| {
        let _ = std::fs::write(&config.file, &original);
        for file in files {
            let _ = std::fs::remove_file(file);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&config.schedules_dir) {
        undo(&files);
        return Err(e).with_context(|| format!("cannot create {}", config.schedules_dir.display()));
    }
    for written in imported {
        for (name, schedule_text) in &written.schedules {
            let file = config.schedules_dir.join(format!("{name}.toml"));
            if let Err(e) = std::fs::write(&file, schedule_text) {
                undo(&files);
                return Err(e).with_context(|| format!("cannot write {}", file.display()));
            }
            files.push(file);
        }
    }
    let (_, errors) = schedule::load_all(&updated, host_zone());
    if let Some(error) = errors.iter().find(|e| files.contains(&e.file)) {
        let error = error.to_string();
        undo(&files);
        anyhow::bail!("an imported schedule does not load, so nothing was changed: {error}");
    }
    let db = open_db(&updated)?;
    for written in imported.iter().filter(|w| w.job.disabled) {
        for (name, _) in &written.schedules {
            schedule::state::set_paused(&db, name, true).await?;
        }
    }
    Ok(())
}

fn report(config: &Config, imported: &[Written], skipped: &[(String, PathBuf, String)], dry_run: bool) {
    let verb = if dry_run { "would import" } else { "imported" };
    say!(
        "{verb} {} of {} jobs",
        imported.len(),
        imported.len() + skipped.len()
    );
    for written in imported {
        let job = &written.job;
        say!(
            "\n  {} -> plugin `{}`, runs {}",
            job.label,
            job.name,
            job.program.display()
        );
        for ((name, _), timing) in written.schedules.iter().zip(&job.timings) {
            say!("    schedule `{name}`: {timing}  ({})", timing.from());
        }
        for (i, watch) in job.watches.iter().enumerate() {
            let name = match i {
                0 => job.name.clone(),
                i => format!("{}-{}", job.name, i + 1),
            };
            let what = match &watch.file {
                Some(file) => format!("{file} in {}", watch.dir.display()),
                None => watch.dir.display().to_string(),
            };
            let queue = if watch.queue {
                ", run until it is empty"
            } else {
                ""
            };
            let off = if job.disabled {
                " (commented out: it is Disabled in launchd)"
            } else {
                ""
            };
            say!("    watch `{name}`: {what}{queue}  ({}){off}", watch.from());
        }
        if job.disabled {
            let names: Vec<&str> = written.schedules.iter().map(|(n, _)| n.as_str()).collect();
            say!(
                "    paused, as it is Disabled in launchd: `mission resume {}` starts it",
                names.join("`, `mission resume ")
            );
        }
        for note in &job.notes {
            say!("    {note}");
        }
    }
    if !skipped.is_empty() {
        say!("\nnot imported:");
        for (label, file, reason) in skipped {
            say!("  {label} ({}): {reason}", file.display());
        }
    }
    if imported.is_empty() || dry_run {
        return;
    }
    say!(
        "\nnext:\n  1. `mission check --config {0}`, then start the host (or restart its service)\n  \
         2. once each schedule has run as it should (`mission runs --schedule NAME`), unload the \
         original so the job does not run twice (nothing in launchd was changed):",
        config.file.display()
    );
    for written in imported {
        say!(
            "     launchctl bootout gui/$(id -u)/{}   # and move {} out of LaunchAgents",
            written.job.label,
            written.job.file.display()
        );
    }
}
