//! `mission:plugin/process`: running a program on the host. Needs the
//! `process` grant; only the programs it lists, by absolute path, with only
//! the environment variables it names, in its working directory. No shell.
//! The program runs in a process group of its own; when it exits, or at its
//! deadline, or when the plugin's call is cancelled, the whole group and
//! everything else it started ([`Tree`]: on Linux also what left the group)
//! is killed, so nothing it started outlives the run, and reaped. Its
//! output is read until the deadline at the latest, whoever holds the pipes.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::Capabilities;
use crate::config::process::ProcessGrant;
use crate::config::Grant;
use crate::os::process_tree::Tree;
use crate::wasm::bindings::task::mission::plugin::process::{Command as Run, Finished, Host};
use crate::wasm::bindings::CapabilityError;

impl Host for Capabilities {
    async fn run(&mut self, command: Run) -> wasmtime::Result<Result<Finished, CapabilityError>> {
        if let Err(denied) = self.check(Grant::Process) {
            return Ok(Err(denied));
        }
        let Some(grant) = self.config.process.clone() else {
            return Ok(Err(CapabilityError::Denied(format!(
                "plugin `{}` has no [plugins.{}.process] table",
                self.config.name, self.config.name
            ))));
        };
        let program = PathBuf::from(&command.program);
        if !grant.programs.contains(&program) {
            self.output.caused(
                tracing::Level::WARN,
                "denied process runs",
                format_args!("process run denied: {} is not listed", program.display()),
            );
            return Ok(Err(CapabilityError::Denied(format!(
                "`{}` is not in plugins.{}.process.programs",
                program.display(),
                self.config.name
            ))));
        }
        let timeout = command.timeout_ms.map_or(grant.timeout, |ms| {
            Duration::from_millis(ms.into()).min(grant.timeout)
        });
        self.output.caused(
            tracing::Level::INFO,
            "programs run",
            format_args!("running {} (timeout {timeout:?})", program.display()),
        );
        let ran = run(&grant, &program, &command.args, command.stdin, timeout).await;
        Ok(ran.map_err(|e| {
            self.output.caused(
                tracing::Level::WARN,
                "programs that could not run",
                format_args!("{} could not run: {e}", program.display()),
            );
            CapabilityError::Failed(format!("`{}` could not run: {e}", program.display()))
        }))
    }
}

/// Runs `program` under `grant` for at most `timeout`: no shell, only the
/// grant's environment, its process group (and on Linux all it started)
/// killed at the end. Also how the bot runs its transcriber.
pub(crate) async fn run(
    grant: &ProcessGrant,
    program: &PathBuf,
    args: &[String],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> std::io::Result<Finished> {
    std::fs::create_dir_all(&grant.workdir)?;
    let env = grant
        .env
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (name, value)));
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&grant.workdir)
        .env_clear()
        .envs(env)
        .envs(&grant.set_env)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tree = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .map(Tree::track);
    if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = input.write_all(&bytes).await;
        });
    }
    let stdout = Reading::start(child.stdout.take(), grant.max_output);
    let stderr = Reading::start(child.stderr.take(), grant.max_output);
    let waited = tokio::time::timeout_at(deadline, child.wait()).await;
    // Whatever it started goes with it, so its pipes close and nothing
    // outlives the run.
    if let Some(mut tree) = tree.take() {
        let escaped = tokio::task::spawn_blocking(move || tree.end()).await.unwrap_or(0);
        if escaped > 0 {
            tracing::warn!(program = %program.display(), escaped, "killed processes the program left running outside its group");
        }
    }
    let status = match waited {
        Ok(status) => Some(status?),
        Err(_) => {
            let _ = child.wait().await;
            None
        }
    };
    // Whatever still holds a pipe (nothing, unless it could not be
    // found), the output read by the deadline is the output.
    let (stdout, stdout_cut) = read_by(deadline, stdout).await;
    let (stderr, stderr_cut) = read_by(deadline, stderr).await;
    Ok(Finished {
        exit_code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// What a pipe's reader kept: the first bytes, and whether more came.
type Kept = Arc<Mutex<(Vec<u8>, bool)>>;

/// Reads all of `pipe` into `kept`, keeping the first `max` bytes.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, max: u64, kept: Kept) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let mut buffer = [0u8; 8192];
    while let Ok(read @ 1..) = pipe.read(&mut buffer).await {
        let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
        let room = max.saturating_sub(kept.0.len());
        kept.0.extend_from_slice(&buffer[..read.min(room)]);
        kept.1 |= read > room;
    }
}

/// A pipe being read, with what was read so far.
struct Reading {
    task: tokio::task::JoinHandle<()>,
    kept: Kept,
}

impl Reading {
    fn start(pipe: Option<impl AsyncRead + Unpin + Send + 'static>, max: u64) -> Reading {
        let kept = Kept::default();
        Reading {
            task: tokio::spawn(read_capped(pipe, max, kept.clone())),
            kept,
        }
    }
}

/// What `reading` read by `deadline` (or to the end, if sooner).
async fn read_by(deadline: tokio::time::Instant, mut reading: Reading) -> (Vec<u8>, bool) {
    if tokio::time::timeout_at(deadline, &mut reading.task)
        .await
        .is_err()
    {
        reading.task.abort();
    }
    std::mem::take(&mut *reading.kept.lock().unwrap_or_else(|p| p.into_inner()))
}
