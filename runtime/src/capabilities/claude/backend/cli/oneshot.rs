//! The `cli` backend: a fresh `claude -p --output-format=json` per call,
//! the prompt on stdin, `--resume=ID` to continue a session; the process
//! group is killed at the deadline.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::process::{read_line_capped, ClaudeProcess, Exit, Line};
use super::result::CliResult;
use crate::capabilities::claude::backend::attached;
use crate::capabilities::claude::backend::{Call, Completion, Failure};

/// How long a CLI that printed its result may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Asks once, resuming `resume` if given; the call's `budget_left` caps
/// what the CLI may spend (`--max-budget-usd`).
pub(crate) async fn ask(call: &Call<'_>, resume: Option<&str>) -> Result<Completion, Failure> {
    let (config, request, deadline) = (call.config, call.request, call.deadline);
    let mut args = vec!["-p".to_owned(), "--output-format=json".to_owned()];
    args.extend(request.cli_flags());
    if let Some(id) = resume {
        args.push(format!("--resume={id}"));
    }
    if let Some(left) = call.budget_left {
        args.push(format!("--max-budget-usd={left:.4}"));
    }
    let prompt = attached::prompt_with_files(&request.prompt, &request.attachments, &config.workdir)?;
    let mut process = ClaudeProcess::spawn(config, &args)
        .map_err(|e| Failure::failed(format!("cannot start `{}`: {e}", config.command.display())))?;
    let output = tokio::time::timeout_at(deadline, async {
        if let Some(mut stdin) = process.stdin.take() {
            // A CLI that exits without reading is reported by its output.
            let _ = stdin.write_all(prompt.as_bytes()).await;
        }
        read_result(&mut process, config.max_output).await
    })
    .await;
    let Ok(output) = output else {
        let pid = process.pid();
        let exit = process.stop().await;
        tracing::warn!(
            pid,
            "claude ran past its deadline: process group killed ({})",
            exit.status
        );
        return Err(Failure::TimedOut);
    };
    // The result is in (or never will be): whatever the CLI left running
    // in its group (a tool, an MCP server) goes with it.
    let grace = deadline.saturating_duration_since(Instant::now()).min(EXIT_GRACE);
    let exit = process.finish(grace).await;
    match output {
        Output::Result(result) => result.into_outcome(),
        Output::Unreadable(e) => Err(Failure::failed(format!("reading claude's output failed: {e}"))),
        Output::TooMuch => Err(Failure::failed(format!(
            "claude printed more than {} and was stopped",
            crate::config::units::ByteSize(config.max_output)
        ))),
        Output::NoResult(printed) => Err(Failure::failed(no_result(&exit, &printed))),
    }
}

/// What the CLI printed.
enum Output {
    /// Its `result` object.
    Result(CliResult),
    /// Its output ended without one; the start of what it printed.
    NoResult(String),
    /// More than the cap.
    TooMuch,
    /// Its stdout failed.
    Unreadable(std::io::Error),
}

/// Reads lines up to the `result` object, at most `cap` bytes in all. It
/// stops there rather than at the end of the output, which a process the
/// CLI left behind could hold open.
async fn read_result(process: &mut ClaudeProcess, cap: u64) -> Output {
    let mut left = cap;
    let mut printed = String::new();
    loop {
        match read_line_capped(&mut process.stdout, left).await {
            Err(e) => return Output::Unreadable(e),
            Ok(Line::End) => return Output::NoResult(printed),
            Ok(Line::TooLong) => return Output::TooMuch,
            Ok(Line::Text(line)) => {
                left = left.saturating_sub(line.len() as u64 + 1);
                if let Some(result) = CliResult::parse(&line) {
                    return Output::Result(result);
                }
                if printed.len() < 300 {
                    printed.push_str(&line);
                    printed.push('\n');
                }
            }
        }
    }
}

/// The reason given when a CLI printed no `result` object.
fn no_result(exit: &Exit, stdout: &str) -> String {
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
