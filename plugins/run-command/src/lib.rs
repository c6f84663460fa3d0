//! Shipped task plugin: runs the program in its config, so an existing
//! script becomes a schedule with its own run history, retries, overlap
//! policy and catch-up while it waits to be rewritten as a plugin.
//!
//! Config: `program` (absolute path, listed in the plugin's `process`
//! grant), `args` (a JSON array of strings, each one argument; default
//! none), `stdin` (text for its standard input), `timeout_ms`. A zero exit
//! is a succeeded run whose summary ends with the tail of the output; any
//! other exit, a signal or the deadline is a failed run (retried per the
//! schedule) whose error says which, with the tail of stderr.
//!
//! Started by a watch (as `mission import launchd` sets up `WatchPaths` and
//! `QueueDirectories` jobs), the program gets the changed files on its
//! standard input, one a line: the change (`created`, `modified`,
//! `removed`), a tab, and the file's absolute path, from config `watched`
//! (a JSON object: each watch's directory by name). launchd gives such a
//! job nothing; a script that reads no input is unaffected.

use mission_task_sdk::mission::plugin::event;
use mission_task_sdk::mission::plugin::process::{self, Command};
use mission_task_sdk::{config_value, export_task, Guest, Invocation, Outcome};

/// How many lines of output end a summary or an error.
const TAIL_LINES: usize = 10;

struct RunCommand;

impl Guest for RunCommand {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let config = &invocation.config;
        let program =
            config_value(config, "program").ok_or("config `program` (an absolute path) is required")?;
        let args: Vec<String> = match config_value(config, "args") {
            Some(args) => serde_json::from_str(args)
                .map_err(|_| format!("config `args`: `{args}` is not a JSON array of strings"))?,
            None => Vec::new(),
        };
        let timeout_ms = match config_value(config, "timeout_ms") {
            Some(ms) => Some(
                ms.parse()
                    .map_err(|_| format!("config `timeout_ms`: `{ms}` is not a number"))?,
            ),
            None => None,
        };
        let stdin = match (config_value(config, "stdin"), event::watch()) {
            (Some(stdin), _) => Some(stdin.as_bytes().to_vec()),
            (None, Some(watch)) => Some(changed_paths(config_value(config, "watched"), &watch)?.into_bytes()),
            (None, None) => None,
        };
        let finished = process::run(&Command {
            program: program.to_owned(),
            args,
            stdin,
            timeout_ms,
        })?;
        let took = format!("{} ms", finished.duration_ms);
        match (finished.exit_code, finished.timed_out) {
            (Some(0), _) => Ok(Outcome {
                summary: format!("exit 0 in {took}{}", tail(&finished.stdout)),
            }),
            (_, true) => Err(format!(
                "killed at its deadline after {took}{}",
                tail(&finished.stderr)
            )),
            (Some(code), _) => Err(format!("exit {code} in {took}{}", tail(&finished.stderr))),
            (None, _) => Err(format!(
                "ended by a signal after {took}{}",
                tail(&finished.stderr)
            )),
        }
    }
}

/// `KIND<tab>PATH` lines for the changes `watch` saw, each path absolute
/// under its watch's directory in `watched`, and escaped so one file is
/// one line whatever its name holds.
fn changed_paths(watched: Option<&str>, watch: &event::WatchEvent) -> Result<String, String> {
    let dirs: std::collections::BTreeMap<String, String> = match watched {
        Some(json) => serde_json::from_str(json)
            .map_err(|_| format!("config `watched`: `{json}` is not a JSON object of directories"))?,
        None => Default::default(),
    };
    let dir = dirs.get(&watch.watch).map(String::as_str).unwrap_or("");
    Ok(watch
        .changes
        .iter()
        .map(|change| {
            let kind = match change.kind {
                event::ChangeKind::Created => "created",
                event::ChangeKind::Modified => "modified",
                event::ChangeKind::Removed => "removed",
            };
            let path = match dir {
                "" => change.path.clone(),
                dir => format!("{}/{}", dir.trim_end_matches('/'), change.path),
            };
            format!("{kind}\t{}\n", one_line(&path))
        })
        .collect())
}

/// `text` as one field of a line: a backslash, a line break, a tab or any
/// other control written as `\\`, `\n`, `\t` or `\u{..}` (the host's own
/// rule for text in a line, `mission::untrusted`, with the backslash too).
fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}') =>
            {
                line.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => line.push(c),
        }
    }
    line
}

/// The last lines of `output`, after a colon and a line break, if any.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    match &lines[start..] {
        [] => String::new(),
        last => format!(":\n{}", last.join("\n")),
    }
}

export_task!(RunCommand);
