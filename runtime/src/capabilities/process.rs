//! `mission:plugin/process`: running a program on the host. Needs the
//! `process` grant; only the programs it lists, by absolute path, with only
//! the environment variables it names, in its working directory. No shell.
//! The program runs in a process group of its own; when it exits, or at its
//! deadline, or when the plugin's call is cancelled, the whole group is
//! killed (so nothing it started outlives the run) and reaped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::Capabilities;
use crate::config::process::ProcessGrant;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::process::{Command as Run, Finished, Host};
use crate::wasm::bindings::CapabilityError;

impl Host for Capabilities {
    async fn run(&mut self, command: Run) -> wasmtime::Result<Result<Finished, CapabilityError>> {
        if let Err(denied) = self.check(Grant::Process) {
            return Ok(Err(denied));
        }
        let Some(grant) = self.process.clone() else {
            return Ok(Err(CapabilityError::Denied(format!(
                "plugin `{}` has no [plugins.{}.process] table",
                self.plugin, self.plugin
            ))));
        };
        let program = PathBuf::from(&command.program);
        if !grant.programs.contains(&program) {
            tracing::warn!(plugin = %self.plugin, program = %program.display(), "process run denied: not listed");
            return Ok(Err(CapabilityError::Denied(format!(
                "`{}` is not in plugins.{}.process.programs",
                program.display(),
                self.plugin
            ))));
        }
        let timeout = command.timeout_ms.map_or(grant.timeout, |ms| {
            Duration::from_millis(ms.into()).min(grant.timeout)
        });
        tracing::info!(plugin = %self.plugin, program = %program.display(), ?timeout, "running a program");
        let ran = run(&grant, &program, &command.args, command.stdin, timeout).await;
        Ok(ran.map_err(|e| {
            tracing::warn!(plugin = %self.plugin, program = %program.display(), "the program could not run: {e}");
            CapabilityError::Failed(format!("`{}` could not run: {e}", program.display()))
        }))
    }
}

/// Runs `program` under `grant` for at most `timeout`.
async fn run(
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
    let group = Group(child.id().and_then(|id| libc::pid_t::try_from(id).ok()));
    if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
        tokio::spawn(async move {
            let _ = input.write_all(&bytes).await;
        });
    }
    let stdout = tokio::spawn(read_capped(child.stdout.take(), grant.max_output));
    let stderr = tokio::spawn(read_capped(child.stderr.take(), grant.max_output));
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // Whatever it started goes with it, so its pipes close and nothing
    // outlives the run.
    drop(group);
    let status = match waited {
        Ok(status) => Some(status?),
        Err(_) => {
            let _ = child.wait().await;
            None
        }
    };
    let (stdout, stdout_cut) = stdout.await.unwrap_or_default();
    let (stderr, stderr_cut) = stderr.await.unwrap_or_default();
    Ok(Finished {
        exit_code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout,
        stderr,
        truncated: stdout_cut || stderr_cut,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// All of `pipe` read, the first `max` bytes kept; whether more came.
async fn read_capped(pipe: Option<impl AsyncRead + Unpin>, max: u64) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else {
        return (Vec::new(), false);
    };
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let (mut kept, mut cut) = (Vec::new(), false);
    let mut buffer = [0u8; 8192];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..read.min(room)]);
        cut |= read > room;
    }
    (kept, cut)
}

/// A process group, killed when dropped: at the program's exit, at its
/// deadline, or when the plugin's call is cancelled mid-run.
struct Group(Option<libc::pid_t>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            // SAFETY: sends a signal to the group we created; no memory involved.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    }
}
