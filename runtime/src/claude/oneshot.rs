//! The `cli` backend: a fresh `claude -p --output-format=json` per call,
//! the prompt on stdin, `--resume=ID` to continue a session; the process
//! group is killed at the deadline.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::cli_result::CliResult;
use super::config::ClaudeConfig;
use super::process::{read_to_end_capped, ClaudeProcess, Exit};
use super::request::Request;
use super::{Completion, Failure};

/// How long a CLI that printed its result may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Asks once, resuming `resume` if given; `budget_left` caps what the CLI
/// may spend (`--max-budget-usd`).
pub(crate) async fn ask(
    config: &ClaudeConfig,
    request: &Request,
    resume: Option<&str>,
    budget_left: Option<f64>,
    deadline: Instant,
) -> Result<Completion, Failure> {
    let mut args = vec!["-p".to_owned(), "--output-format=json".to_owned()];
    args.extend(request.cli_flags());
    if let Some(id) = resume {
        args.push(format!("--resume={id}"));
    }
    if let Some(left) = budget_left {
        args.push(format!("--max-budget-usd={left:.4}"));
    }
    let mut process = ClaudeProcess::spawn(config, &args)
        .map_err(|e| Failure::failed(format!("cannot start `{}`: {e}", config.command.display())))?;
    let output = tokio::time::timeout_at(deadline, async {
        if let Some(mut stdin) = process.stdin.take() {
            // A CLI that exits without reading is reported by its output.
            let _ = stdin.write_all(request.prompt.as_bytes()).await;
        }
        read_to_end_capped(&mut process.stdout, config.max_output).await
    })
    .await;
    let output = match output {
        Err(_elapsed) => {
            let pid = process.pid();
            let exit = process.stop().await;
            tracing::warn!(
                pid,
                "claude ran past its deadline: process group killed ({})",
                exit.status
            );
            return Err(Failure::TimedOut);
        }
        Ok(Err(e)) => {
            process.stop().await;
            return Err(Failure::failed(format!("reading claude's output failed: {e}")));
        }
        Ok(Ok(None)) => {
            process.stop().await;
            return Err(Failure::failed(format!(
                "claude printed more than {} and was stopped",
                crate::units::ByteSize(config.max_output)
            )));
        }
        Ok(Ok(Some(output))) => output,
    };
    let grace = deadline.saturating_duration_since(Instant::now()).min(EXIT_GRACE);
    let exit = process.finish(grace).await;
    let text = String::from_utf8_lossy(&output);
    match text.lines().rev().find_map(CliResult::parse) {
        Some(result) => result.into_outcome(),
        None => Err(Failure::failed(no_result(&exit, &text))),
    }
}

/// The reason given when a CLI printed no `result` object.
pub(crate) fn no_result(exit: &Exit, stdout: &str) -> String {
    let said = [exit.stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| {
            let cut: String = s.chars().take(300).collect();
            format!(": {cut}")
        })
        .unwrap_or_default();
    format!("claude gave no result ({}){said}", exit.status)
}
