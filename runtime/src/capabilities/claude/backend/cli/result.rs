//! The CLI's `result` object (`--output-format json`, and the last event of
//! a stream-json turn), as captured from the real CLI in
//! `shared/reference/claude-cli/`, and what it means for a call.

use serde::Deserialize;

use crate::capabilities::claude::backend::{Completion, Failure, Spent, TokenCounts};

/// The fields of a `result` object the host uses.
#[derive(Debug, Deserialize)]
pub(crate) struct CliResult {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    subtype: String,
    #[serde(default)]
    is_error: bool,
    result: Option<String>,
    session_id: Option<String>,
    #[serde(default)]
    total_cost_usd: f64,
    #[serde(default)]
    num_turns: u32,
    #[serde(default)]
    usage: TokenCounts,
    api_error_status: Option<u16>,
    /// Per model (a call may use a small model on the side); the host
    /// records the one that cost most.
    #[serde(default, rename = "modelUsage")]
    model_usage: std::collections::BTreeMap<String, ModelUsage>,
}

/// One model's part of a call.
#[derive(Debug, Deserialize)]
struct ModelUsage {
    #[serde(default, rename = "costUSD")]
    cost_usd: f64,
}

impl CliResult {
    /// `line` as a `result` object, if it is one.
    pub fn parse(line: &str) -> Option<CliResult> {
        serde_json::from_str::<CliResult>(line)
            .ok()
            .filter(|r| r.kind == "result")
    }

    /// The session the CLI ran in (to `--resume` next time).
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref().filter(|id| is_session_id(id))
    }

    /// What the result means for the call.
    pub fn into_outcome(self) -> Result<Completion, Failure> {
        let session_id = self.session_id().map(str::to_owned);
        let spent = Spent {
            usage: self.usage.into(),
            cost_usd: self.total_cost_usd,
            turns: self.num_turns,
            // `claude-opus-4-8[1m]`: the bracket is the context window.
            model: self
                .model_usage
                .iter()
                .max_by(|a, b| a.1.cost_usd.total_cmp(&b.1.cost_usd))
                .map(|(m, _)| m.split('[').next().unwrap_or(m).to_owned()),
            api_key_source: None,
        };
        if self.is_error || self.subtype != "success" {
            let mut reason = match self.api_error_status {
                Some(status) => format!("the API answered {status}"),
                None => format!("the CLI reported `{}`", self.subtype),
            };
            if let Some(text) = self.result.filter(|t| !t.is_empty()) {
                reason.push_str(": ");
                reason.push_str(&text);
            }
            return Err(Failure::Failed { reason, spent });
        }
        Ok(Completion {
            text: self.result.unwrap_or_default(),
            session_id,
            spent,
        })
    }
}

/// Whether `id` looks like a CLI session id (a UUID), so it can be passed
/// back as `--resume=ID` without carrying anything else.
pub(crate) fn is_session_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUCCESS: &str = include_str!("../../../../../../tests/data/claude/print-json-success.json");
    const API_ERROR: &str = include_str!("../../../../../../tests/data/claude/print-json-api-error-400.json");

    #[test]
    fn a_captured_success_gives_text_session_usage_and_cost() {
        let completion = CliResult::parse(SUCCESS.trim()).unwrap().into_outcome().unwrap();
        assert_eq!(completion.text, "PONG from fake: 2");
        assert_eq!(
            completion.session_id.as_deref(),
            Some("81f78059-6557-41a0-825d-46c8fc433c4d")
        );
        assert_eq!(completion.spent.usage.input_tokens, 12);
        assert_eq!(completion.spent.usage.output_tokens, 5);
        assert_eq!(completion.spent.cost_usd, 0.000185);
        assert_eq!(completion.spent.turns, 1);
        assert_eq!(completion.spent.model.as_deref(), Some("claude-opus-4-8"));
    }

    #[test]
    fn a_captured_api_error_is_a_failure_naming_the_status() {
        let Err(Failure::Failed { reason, spent }) = CliResult::parse(API_ERROR.lines().next().unwrap())
            .unwrap()
            .into_outcome()
        else {
            panic!("an is_error result must fail");
        };
        assert_eq!(
            reason,
            "the API answered 400: API Error: 400 fake invalid_request_error"
        );
        assert_eq!(spent.cost_usd, 0.0);
    }

    #[test]
    fn the_model_that_cost_most_is_the_one_recorded() {
        let mut result: serde_json::Value = serde_json::from_str(SUCCESS.trim()).unwrap();
        result["modelUsage"]["claude-haiku-4-5"] = serde_json::json!({"costUSD": 0.00001});
        let result = CliResult::parse(&result.to_string()).unwrap();
        let completion = result.into_outcome().unwrap();
        assert_eq!(completion.spent.model.as_deref(), Some("claude-opus-4-8"));
    }

    #[test]
    fn other_events_and_garbage_are_not_results() {
        assert!(CliResult::parse(r#"{"type":"system","subtype":"init"}"#).is_none());
        assert!(CliResult::parse("Error: something broke").is_none());
    }

    #[test]
    fn only_uuid_shaped_session_ids_are_kept() {
        assert!(is_session_id("81f78059-6557-41a0-825d-46c8fc433c4d"));
        assert!(!is_session_id("--dangerously-skip-permissions-xxxxxxx"));
    }
}
