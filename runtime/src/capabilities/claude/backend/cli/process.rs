//! A `claude` child process: started without a shell, in a process group of
//! its own, with only the environment variables the config names; killed
//! with all it started (the CLI may have started tools or MCP servers, in
//! its group or not: [`Tree`]) and reaped.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::config::claude::ClaudeConfig;
use crate::os::process_tree::Tree;

/// How much of the end of stderr is kept for error messages.
const STDERR_TAIL: usize = 4 << 10;

/// A running `claude` and its pipes.
pub(crate) struct ClaudeProcess {
    child: Child,
    pid: u32,
    tree: Tree,
    /// Its stdin, until closed.
    pub stdin: Option<ChildStdin>,
    /// Its stdout.
    pub stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    stderr_reader: tokio::task::JoinHandle<()>,
}

/// How a process ended.
pub(crate) struct Exit {
    /// Its exit status, as text.
    pub status: String,
    /// The last few KiB it wrote to stderr.
    pub stderr: String,
}

impl ClaudeProcess {
    /// Starts `config.command` with `args` (each one argument, never parsed
    /// by a shell), in `config.workdir`, with only `config.env` passed on.
    pub fn spawn(config: &ClaudeConfig, args: &[String]) -> std::io::Result<ClaudeProcess> {
        std::fs::create_dir_all(&config.workdir)?;
        let program = config
            .resolved_command()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not found"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&config.workdir)
            .env_clear()
            .envs(
                config
                    .env
                    .iter()
                    .filter_map(|name| std::env::var_os(name).map(|value| (name, value))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the child exited before it could be tracked"))?;
        let tree = Tree::track(libc::pid_t::try_from(pid).map_err(std::io::Error::other)?);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let tail = stderr_tail.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut chunk = [0u8; 1024];
            while let Ok(read @ 1..) = stderr.read(&mut chunk).await {
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                tail.extend_from_slice(&chunk[..read]);
                let excess = tail.len().saturating_sub(STDERR_TAIL);
                tail.drain(..excess);
            }
        });
        Ok(ClaudeProcess {
            child,
            pid,
            tree,
            stdin,
            stdout,
            stderr_tail,
            stderr_reader,
        })
    }

    /// The process id (also its process group's id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process and all it started, and waits for the child, so
    /// nothing of it keeps running and no zombie is left.
    pub async fn stop(mut self) -> Exit {
        self.tree.end();
        let status = self.child.wait().await;
        self.exit(status).await
    }

    /// Closes stdin, gives the process `grace` to exit by itself, then ends
    /// its tree (whatever it left behind goes too).
    pub async fn finish(mut self, grace: Duration) -> Exit {
        self.stdin = None;
        let status = tokio::time::timeout(grace, self.child.wait()).await;
        self.tree.end();
        match status {
            Ok(status) => self.exit(status).await,
            Err(_) => self.stop().await,
        }
    }

    async fn exit(mut self, status: std::io::Result<std::process::ExitStatus>) -> Exit {
        // The pipe closes when the group is gone; the reader ends soon after.
        let _ = tokio::time::timeout(Duration::from_millis(200), &mut self.stderr_reader).await;
        let tail = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        Exit {
            status: match status {
                Ok(status) => status.to_string(),
                Err(e) => format!("unknown exit ({e})"),
            },
            stderr: String::from_utf8_lossy(&tail).trim().to_owned(),
        }
    }
}

// Dropped mid-call (the plugin's own deadline, a cancelled call), the tree
// kills everything when it drops; tokio reaps the child in the background.

/// A line read with [`read_line_capped`].
pub(crate) enum Line {
    /// A complete line, without its newline.
    Text(String),
    /// The stream ended.
    End,
    /// The line ran past the cap.
    TooLong,
}

/// Reads one line of at most `cap` bytes from `reader`.
pub(crate) async fn read_line_capped(
    reader: &mut (impl AsyncBufRead + Unpin),
    cap: u64,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let read = (&mut *reader).take(cap + 1).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(Line::End);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() as u64 > cap {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(String::from_utf8_lossy(&line).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_past_the_cap_is_reported_not_kept() {
        let mut input = BufReader::new(&b"short\nmuch too long a line\n"[..]);
        assert!(matches!(read_line_capped(&mut input, 10).await.unwrap(), Line::Text(t) if t == "short"));
        assert!(matches!(
            read_line_capped(&mut input, 10).await.unwrap(),
            Line::TooLong
        ));
        let mut input = BufReader::new(&b"last"[..]);
        assert!(matches!(read_line_capped(&mut input, 10).await.unwrap(), Line::Text(t) if t == "last"));
        assert!(matches!(
            read_line_capped(&mut input, 10).await.unwrap(),
            Line::End
        ));
    }
}
