//! `mission run` and `mission chat`: one call of a plugin, recorded, with
//! its outcome printed (or as JSON).

use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::host::runs::{RunRecord, StartedBy};
use crate::plugin::call::{Message, ParseMode};

/// `mission run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plugin's name in the config.
    pub plugin: String,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `mission chat`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The plugin's name in the config.
    pub plugin: String,
    /// The message text.
    pub text: String,
    /// The chat it comes from (its history is kept per chat).
    #[arg(long, default_value_t = 1)]
    pub chat_id: i64,
    /// The sender's display name.
    #[arg(long, default_value = "cli")]
    pub sender: String,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: Config, plugin: &str, json: bool) -> anyhow::Result<ExitCode> {
    let host = super::open_host(config).await?;
    host.load(plugin).await?;
    let record = host.run_task(plugin, StartedBy::Manual).await?;
    host.claude().shutdown().await;
    report_run(&record, json)
}

/// Prints `record` (as JSON with `json`); the exit code says whether the
/// run succeeded.
pub(super) fn report_run(record: &RunRecord, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        say!("{}", serde_json::to_string_pretty(record)?);
    } else {
        print_run(record);
    }
    Ok(if record.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn print_run(record: &RunRecord) {
    let took = record
        .finished_at
        .map(|end| format!(" in {} ms", (end - record.started_at).num_milliseconds()))
        .unwrap_or_default();
    say!(
        "{}: {}{took} (run {})",
        record.plugin,
        record.outcome.as_str().replace('_', " "),
        record.id
    );
    if let Some(summary) = &record.summary {
        say!("{summary}");
    }
    if let Some(error) = &record.error {
        say!("error: {error}");
    }
    if record.output_truncated {
        say!(
            "output truncated: {} bytes printed, the excess was dropped",
            record.output_bytes
        );
    }
}

pub(super) async fn chat(config: Config, args: ChatArgs) -> anyhow::Result<ExitCode> {
    let ChatArgs {
        plugin,
        text,
        chat_id,
        sender,
        json,
    } = args;
    let plugin = plugin.as_str();
    let host = super::open_host(config).await?;
    let values = host.load(plugin).await?.config.values.clone();
    let message = Message {
        chat_id,
        sender_id: 0,
        sender_name: sender,
        text,
        sent_at: chrono::Utc::now().timestamp_millis(),
        config: values,
    };
    let report = host
        .chat(plugin, &message, Default::default(), None, None)
        .await?;
    host.claude().shutdown().await;
    let reply = match report.result {
        Ok(reply) => reply,
        Err(e) => {
            if json {
                say!("{}", json!({ "outcome": e.kind(), "error": e.to_string() }));
            } else {
                say!("{plugin}: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        let (text, parse_mode) = match &reply {
            Some(reply) => (Some(&reply.text), reply.parse_mode.map(parse_mode_name)),
            None => (None, None),
        };
        say!(
            "{}",
            json!({ "outcome": "succeeded", "reply": text, "parse_mode": parse_mode })
        );
    } else if let Some(reply) = reply {
        say!("{}", reply.text);
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_mode_name(mode: ParseMode) -> &'static str {
    match mode {
        ParseMode::MarkdownV2 => "MarkdownV2",
        ParseMode::Html => "HTML",
    }
}
