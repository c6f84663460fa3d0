//! `mission check` on `[claude]` and each plugin's Claude grant: whether
//! this machine has what the grants need (the CLI on `PATH`, the API key in
//! the environment), and deadlines too short for a person to answer.

use std::time::Duration;

use super::Finding;
use crate::config::claude::{Backend, ClaudeConfig};
use crate::config::units::HumanDuration;
use crate::config::{Grant, PluginConfig};

/// What `mission check` reports about `[claude]` for `plugins`. What
/// is missing from this machine (the CLI, the API key) is a warning
/// naming the plugins it affects; a mistake in the config is an error.
/// `approval_wait` is how long a person may take to allow a tool use.
pub(super) fn check<'a>(
    claude: &ClaudeConfig,
    plugins: impl Iterator<Item = &'a PluginConfig>,
    approval_wait: Duration,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut cli_users = Vec::new();
    let mut api_users = Vec::new();
    let mut api_models: Vec<String> = claude.model.iter().cloned().collect();
    for plugin in plugins.filter(|p| p.grants.contains(&Grant::Claude)) {
        let deadline = plugin.claude.timeout.unwrap_or(claude.timeout);
        if plugin.limits.timeout < deadline {
            findings.push(Finding::Ok(format!(
                "note: plugins.{0}.timeout ({1}) is shorter than its Claude deadline ({2}): \
                 a slow answer ends the whole call; raise plugins.{0}.timeout or lower plugins.{0}.claude.timeout",
                plugin.name,
                HumanDuration(plugin.limits.timeout),
                HumanDuration(deadline)
            )));
        }
        let allowed = plugin.claude.allowed_backends(claude);
        findings.extend(check_ask_tools(plugin, &allowed, deadline, approval_wait));
        if allowed.contains(&Backend::Api) {
            api_models.extend(plugin.claude.models.iter().cloned());
            api_users.push(plugin.name.to_string());
        }
        if allowed.iter().any(|b| *b != Backend::Api) {
            cli_users.push(plugin.name.to_string());
        }
    }
    if !cli_users.is_empty() {
        findings.push(match claude.resolved_command() {
            Some(path) => Finding::Ok(format!("claude: ok, the CLI is {}", path.display())),
            None => Finding::Warning(format!(
                "claude.command: `{}` is not an executable file or not on PATH: \
                 Claude is unavailable through the CLI to {}",
                claude.command.display(),
                plugin_list(&cli_users)
            )),
        });
    }
    if !api_users.is_empty() {
        findings.push(match std::env::var_os(&claude.api.key_env) {
            Some(_) => Finding::Ok(format!("claude.api: ok, {}", claude.api.url)),
            None => Finding::Warning(format!(
                "claude.api.key_env: the environment variable `{}` is not set: \
                 Claude is unavailable through the API to {}",
                claude.api.key_env,
                plugin_list(&api_users)
            )),
        });
        for model in api_models.iter().filter(|m| !claude.prices.contains_key(*m)) {
            findings.push(Finding::Error(format!(
                "claude.prices: model `{model}` has no price: API calls to it would fail"
            )));
        }
    }
    findings
}

/// Warnings about `plugin`'s `ask_tools`: a backend that cannot ask, or
/// less time than a person may take to answer.
fn check_ask_tools(
    plugin: &PluginConfig,
    allowed: &[Backend],
    deadline: Duration,
    approval_wait: Duration,
) -> Vec<Finding> {
    let grant = &plugin.claude;
    if grant.ask_tools.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    if !allowed.contains(&Backend::Persistent) {
        findings.push(Finding::Warning(format!(
            "plugins.{}.claude.ask_tools: only the `persistent` backend can ask a person; \
             through {} these tools are always denied",
            plugin.name,
            allowed
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (field, time) in [
        (format!("plugins.{}.claude.timeout", plugin.name), deadline),
        (format!("plugins.{}.timeout", plugin.name), plugin.limits.timeout),
    ] {
        if time < approval_wait {
            findings.push(Finding::Warning(format!(
                "{field} ({}) is shorter than telegram.approval_timeout ({}): \
                 the call can end before a person answers about {}",
                HumanDuration(time),
                HumanDuration(approval_wait),
                grant.ask_tools.join(", ")
            )));
        }
    }
    findings
}

/// `plugin `a`` or `plugins `a`, `b``, for messages.
pub fn plugin_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        1 => format!("plugin {}", quoted[0]),
        _ => format!("plugins {}", quoted.join(", ")),
    }
}
