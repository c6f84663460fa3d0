//! The CLI's permission prompt on stdio (`--permission-prompt-tool=stdio`):
//! before a tool its rules do not allow, the CLI writes a `control_request`
//! of subtype `can_use_tool` and waits; the [`Gate`] answers with a
//! `control_response` allowing (with the tool's input) or denying (with a
//! message the model reads). Tools in the grant's `ask_tools` go to a
//! person through [`Approvals`]; anything else is denied.

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::approvals::{Approvals, Asking, ToolUse, Verdict};
use crate::capabilities::claude::spend::admission::Place;
use crate::capabilities::claude::stop::Stop;

/// What answers the CLI's permission requests for one call.
pub(crate) struct Gate<'a> {
    /// Where a person is asked.
    pub approvals: &'a Approvals,
    /// Who is asking, and where.
    pub asking: Asking<'a>,
    /// Tools the grant allows outright.
    pub outright: &'a [String],
    /// Tools the grant allows once a person does.
    pub ask: &'a [String],
    /// The call's place in line, given up while a person decides.
    pub place: &'a Place,
    /// The call's `/stop`, which denies a tool use still waiting for a
    /// person (its prompt is edited to say so).
    pub stop: &'a Stop,
}

/// A control request the CLI wrote, if `event` is one.
pub(crate) fn control_request(event: &Value) -> Option<&Value> {
    (event["type"] == "control_request").then_some(event)
}

impl Gate<'_> {
    /// The `control_response` line for `request` (a `control_request`
    /// event); a tool use waits for a person until `deadline` at most.
    pub async fn answer(&self, request: &Value, deadline: Instant) -> Value {
        let id = request["request_id"].clone();
        let body = &request["request"];
        if body["subtype"] != "can_use_tool" {
            let subtype = body["subtype"].as_str().unwrap_or("none");
            return json!({
                "type": "control_response",
                "response": {"subtype": "error", "request_id": id,
                             "error": format!("the host does not handle `{subtype}` requests")},
            });
        }
        let tool_use = ToolUse {
            tool: body["tool_name"].as_str().unwrap_or_default().to_owned(),
            input: body["input"].clone(),
        };
        let verdict = self.verdict(&tool_use, deadline).await;
        let response = match verdict {
            Verdict::Allow => json!({"behavior": "allow", "updatedInput": tool_use.input}),
            Verdict::Deny(message) => json!({"behavior": "deny", "message": message}),
        };
        json!({
            "type": "control_response",
            "response": {"subtype": "success", "request_id": id, "response": response},
        })
    }
}

impl Gate<'_> {
    /// Whether `tool_use` may run: outright, once a person allows it (the
    /// call's place in line given up meanwhile; a `/stop` first is a deny),
    /// or not at all.
    pub async fn verdict(&self, tool_use: &ToolUse, deadline: Instant) -> Verdict {
        if self.outright.contains(&tool_use.tool) {
            Verdict::Allow
        } else if self.ask.contains(&tool_use.tool) {
            self.place.give_up();
            let verdict = self
                .approvals
                .decide(self.asking, tool_use, self.stop.requested(), deadline)
                .await;
            // Past the deadline the turn ends anyway; Claude still gets its answer.
            self.place.retake(deadline).await;
            verdict
        } else {
            tracing::warn!(plugin = %self.asking.plugin, tool = tool_use.tool, "claude asked for a tool the grant does not list: denied");
            Verdict::Deny(format!("`{}` is not granted to this plugin", tool_use.tool))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PluginName;
    use crate::db::Database;

    /// A place in a line of one, held.
    fn place() -> Place {
        let line = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let permit = line.clone().try_acquire_owned().unwrap();
        Place::held(line, permit)
    }

    /// The captured session's lines written `direction` (`cli->host` or
    /// `host->cli`), as JSON.
    fn lines(capture: &str, direction: &str) -> Vec<Value> {
        capture
            .lines()
            .filter_map(|l| l.strip_prefix(direction))
            .map(|l| serde_json::from_str(l.trim()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn other_requests_get_an_error_and_ungranted_tools_a_deny() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = Approvals::new(Database::open(&dir.path().join("m.db")).unwrap());
        let plugin = PluginName::parse("assistant").unwrap();
        let gate = Gate {
            approvals: &approvals,
            asking: Asking {
                plugin: &plugin,
                session_key: None,
                chat: None,
                run: None,
                wait: None,
                shadow: false,
            },
            outright: &["Read".to_owned()],
            ask: &[],
            place: &place(),
            stop: &Stop::default(),
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let interrupt =
            json!({"type": "control_request", "request_id": "r1", "request": {"subtype": "interrupt"}});
        let answer = gate.answer(&interrupt, deadline).await;
        assert_eq!(answer["response"]["subtype"], "error");
        assert_eq!(answer["response"]["request_id"], "r1");
        assert_eq!(
            answer["response"]["error"],
            "the host does not handle `interrupt` requests"
        );
        let bash = json!({"type": "control_request", "request_id": "r2", "request":
            {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "rm -rf /"}}});
        let answer = gate.answer(&bash, deadline).await;
        assert_eq!(
            answer["response"]["response"],
            json!({"behavior": "deny", "message": "`Bash` is not granted to this plugin"})
        );
    }

    #[tokio::test]
    async fn answers_match_what_the_real_cli_took() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let approvals = Approvals::new(db);
        let plugin = PluginName::parse("assistant").unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        for (capture, outright) in [
            (
                include_str!("../../../../../tests/data/claude/permission-prompt-stdio-allow.txt"),
                true,
            ),
            (
                include_str!("../../../../../tests/data/claude/permission-prompt-stdio-deny.txt"),
                false,
            ),
        ] {
            let asked = lines(capture, "cli->host ")
                .into_iter()
                .find(|e| e["type"] == "control_request")
                .unwrap();
            let taken = lines(capture, "host->cli ")
                .into_iter()
                .find(|e| e["type"] == "control_response")
                .unwrap();
            let granted = ["Bash".to_owned()];
            let gate = Gate {
                approvals: &approvals,
                // A shadow can ask nobody: Bash is denied unless allowed outright.
                asking: Asking {
                    plugin: &plugin,
                    session_key: Some("1"),
                    chat: Some(1),
                    run: None,
                    wait: None,
                    shadow: true,
                },
                outright: if outright { &granted } else { &[] },
                ask: if outright { &[] } else { &granted },
                place: &place(),
                stop: &Stop::default(),
            };
            let ours = gate.answer(control_request(&asked).unwrap(), deadline).await;
            assert_eq!(ours["type"], taken["type"]);
            assert_eq!(ours["response"]["request_id"], taken["response"]["request_id"]);
            assert_eq!(ours["response"]["subtype"], "success");
            let (ours, theirs) = (&ours["response"]["response"], &taken["response"]["response"]);
            assert_eq!(ours["behavior"], theirs["behavior"]);
            if outright {
                assert_eq!(ours["updatedInput"], theirs["updatedInput"]);
            } else {
                assert_eq!(
                    ours["message"],
                    "`Bash` needs a person's approval: a shadow handler cannot ask anyone"
                );
            }
        }
    }
}
