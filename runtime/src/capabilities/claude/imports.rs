//! `mission:plugin/claude`, the import: asking Claude. Needs the `claude`
//! grant; the rest (the plugin's `[plugins.NAME.claude]` limits, budgets,
//! backends) is the folder's.

use super::draft::Draft;
use super::CallScope;
use crate::capabilities::Capabilities;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::claude::{Answer, Host, Options};
use crate::wasm::bindings::CapabilityError;

impl Host for Capabilities {
    async fn ask(
        &mut self,
        prompt: String,
        options: Options,
    ) -> wasmtime::Result<Result<Answer, CapabilityError>> {
        Ok(self.ask_claude(prompt, options, &[], None).await)
    }

    async fn ask_with(
        &mut self,
        prompt: String,
        options: Options,
        attachments: Vec<u32>,
    ) -> wasmtime::Result<Result<Answer, CapabilityError>> {
        Ok(self.ask_claude(prompt, options, &attachments, None).await)
    }

    async fn ask_streamed(
        &mut self,
        prompt: String,
        options: Options,
        attachments: Vec<u32>,
    ) -> wasmtime::Result<Result<Answer, CapabilityError>> {
        let draft = self.context.io.draft.clone();
        Ok(self
            .ask_claude(prompt, options, &attachments, draft.as_ref())
            .await)
    }
}

impl Capabilities {
    /// One Claude call with the message's attachments `ids`, its text
    /// shown in `draft` as it is written, counted in the call's stats.
    async fn ask_claude(
        &mut self,
        prompt: String,
        options: Options,
        ids: &[u32],
        draft: Option<&Draft>,
    ) -> Result<Answer, CapabilityError> {
        self.check(Grant::Claude)?;
        let attachments = self.attachments(ids)?;
        let scope = CallScope {
            plugin: &self.config.name,
            grant: &self.config.claude,
            history: self.config.history,
            chat: self.context.chat,
            run: self.context.run,
            shadow: self.context.shadow,
            draft,
            on_behalf_of: self.context.on_behalf_of.as_ref(),
        };
        let answer = self
            .services
            .claude
            .ask(scope, prompt, options, attachments)
            .await;
        let stats = &mut self.stats;
        match &answer {
            Ok(answer) => {
                let usage = &answer.usage;
                stats.claude_calls += 1;
                stats.input_tokens += usage.input_tokens;
                stats.output_tokens += usage.output_tokens;
                stats.context_tokens +=
                    usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
                stats.cost_usd += answer.cost_usd;
            }
            Err(CapabilityError::OverBudget(reason)) => {
                stats.claude_over_budget += 1;
                self.output.caused(
                    tracing::Level::WARN,
                    "refused Claude calls",
                    format_args!("claude call refused: {reason}"),
                );
            }
            Err(CapabilityError::TimedOut) => stats.claude_timeouts += 1,
            Err(_) => stats.claude_failures += 1,
        }
        answer
    }
}
