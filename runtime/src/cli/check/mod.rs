//! `mission check`: the config, every plugin compiled and world-checked,
//! the schedules, Telegram and Claude; what is missing from this machine is
//! a warning, a mistake an error.

use std::process::ExitCode;

use crate::config::webhooks::Verify;
use crate::config::{Config, Grant, World};
use crate::host::Host;
use crate::os::zone::host_zone;
use crate::triggers::schedule;

mod claude;

use claude::plugin_list;

/// One line of `mission check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// All is well.
    Ok(String),
    /// Something is missing from this machine: what needs it is unavailable
    /// until it is there; the host runs.
    Warning(String),
    /// A mistake in the config: fix it.
    Error(String),
}

pub(super) async fn check(config: Config) -> anyhow::Result<ExitCode> {
    say!("{}: ok", config.file.display());
    let mut findings = check_plugins(&config).await?;
    findings.extend(check_telegram(&config));
    findings.extend(check_shadows(&config));
    findings.extend(check_schedules(&config));
    findings.extend(check_claude(&config));
    findings.extend(check_http(&config));
    findings.extend(check_process(&config));
    findings.extend(check_webhooks(&config));
    findings.extend(check_files(&config));
    findings.extend(check_watches(&config));
    let mut failed = false;
    for finding in findings {
        match finding {
            Finding::Ok(line) => say!("{line}"),
            Finding::Warning(line) => say!("warning: {line}"),
            Finding::Error(line) => {
                failed = true;
                say!("{line}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Each plugin compiled and checked against its world; a tools plugin's
/// tools read, and the plugin tools each grant asks about offered.
async fn check_plugins(config: &Config) -> anyhow::Result<Vec<Finding>> {
    let host = Host::open(config.clone()).await?;
    let mut findings = Vec::new();
    let mut offered: Vec<(String, Vec<String>)> = Vec::new();
    for plugin in &config.plugins {
        findings.push(match host.load(plugin.name.as_str()).await {
            Ok(plugin) => {
                let tools: Vec<String> = plugin.tools.iter().map(|t| t.name.clone()).collect();
                let offers = match plugin.config.world {
                    World::Tools => format!(", offers {}", tools.join(", ")),
                    _ => String::new(),
                };
                offered.push((plugin.name().to_string(), tools));
                Finding::Ok(format!(
                    "plugin `{}` ({}): ok, {} (sha256 {}){offers}",
                    plugin.name(),
                    plugin.config.world,
                    plugin.config.wasm.display(),
                    plugin.hash.short(),
                ))
            }
            Err(e) => Finding::Error(format!("{e:#}")),
        });
    }
    for plugin in &config.plugins {
        for asked in plugin.claude.ask_tools.iter().filter(|t| t.contains('.')) {
            let (tools_plugin, tool) = asked.split_once('.').expect("filtered above");
            let Some((_, tools)) = offered.iter().find(|(name, _)| name == tools_plugin) else {
                continue;
            };
            if !tools.iter().any(|t| t == tool) {
                findings.push(Finding::Error(format!(
                    "plugins.{}.claude.ask_tools: `{asked}` is not a tool of `{tools_plugin}` (it offers: {})",
                    plugin.name,
                    tools.join(", ")
                )));
            }
        }
    }
    let asking_first = crate::serve::mission_tools::asking_first();
    for plugin in &config.plugins {
        for allowed in &plugin.claude.allow_outright {
            let tool = allowed.trim_start_matches("mission.");
            if !asking_first.contains(&tool) {
                findings.push(Finding::Error(format!(
                    "plugins.{}.claude.allow_outright: `{allowed}` is not one of the host's tools that ask \
                     first (they are: {})",
                    plugin.name,
                    asking_first.join(", ")
                )));
            }
        }
    }
    Ok(findings)
}

/// The bot's token: without it the bot and `notify` are unavailable.
fn check_telegram(config: &Config) -> Option<Finding> {
    let telegram = config.telegram.as_ref()?;
    if std::env::var_os(&telegram.token_env).is_some() {
        let shadows: Vec<String> = telegram.shadow.iter().map(|s| format!("`{s}`")).collect();
        let shadows = match shadows.is_empty() {
            true => String::new(),
            false => format!(", shadowed by {}", shadows.join(", ")),
        };
        return Some(Finding::Ok(format!(
            "telegram: ok, chat plugin `{}`{shadows}",
            telegram.handler
        )));
    }
    let notifying: Vec<String> = config
        .plugins
        .iter()
        .filter(|p| p.grants.contains(&Grant::Notify))
        .map(|p| p.name.to_string())
        .collect();
    let notify = match notifying.is_empty() {
        true => String::new(),
        false => format!(", and `notify` is unavailable to {}", plugin_list(&notifying)),
    };
    Some(Finding::Warning(format!(
        "telegram.token_env: the environment variable `{}` is not set: the bot would not start{notify}",
        telegram.token_env
    )))
}

/// Each shadow handler with Claude: without a budget of its own, the
/// pilot spends from the global budget the live handler needs.
fn check_shadows(config: &Config) -> Vec<Finding> {
    let Some(telegram) = &config.telegram else {
        return Vec::new();
    };
    let global = config.claude.as_ref().map(|c| c.budget).unwrap_or_default();
    let unbudgeted = telegram
        .shadow
        .iter()
        .filter_map(|name| config.plugin(name.as_str()))
        .filter(|p| p.grants.contains(&Grant::Claude))
        .filter(|p| p.claude.budget.daily_usd.is_none() && p.claude.budget.monthly_usd.is_none());
    unbudgeted
        .map(|plugin| {
            let limit = match (global.daily_usd, global.monthly_usd) {
                (None, None) => "no budget at all".to_owned(),
                _ => "only the global [claude.budget], which the live handler needs too".to_owned(),
            };
            Finding::Warning(format!(
                "plugins.{0}.claude: the shadow handler `{0}` has {limit}: set daily_usd or monthly_usd \
                 to cap what the pilot may spend",
                plugin.name
            ))
        })
        .collect()
}

/// Each schedule file, valid or not.
fn check_schedules(config: &Config) -> Vec<Finding> {
    let (schedules, errors) = schedule::load_all(config, host_zone());
    let valid = schedules.iter().map(|schedule| {
        Finding::Ok(format!(
            "schedule `{}`: ok, `{}` in {}",
            schedule.name, schedule.timing, schedule.zone
        ))
    });
    let following_nothing = schedule::chains::unknown_parents(config, &schedules, &errors);
    let invalid = errors
        .iter()
        .map(|error| Finding::Error(format!("schedule refused: {error}")))
        .chain(following_nothing.into_iter().map(Finding::Error));
    valid.chain(invalid).collect()
}

/// The `[claude]` section against the plugins granted `claude`.
fn check_claude(config: &Config) -> Vec<Finding> {
    match &config.claude {
        Some(claude) => claude::check(claude, config.plugins.iter(), config.approval_timeout()),
        None => config
            .plugins
            .iter()
            .filter(|p| p.grants.contains(&Grant::Claude))
            .map(|plugin| {
                Finding::Error(format!(
                    "plugins.{}.grants: `claude` is granted but there is no [claude] section: its calls would be answered `unavailable`",
                    plugin.name
                ))
            })
            .collect(),
    }
}

/// Each plugin's HTTP grant: the origins it may reach, and whether its
/// secrets' variables are set here.
fn check_http(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for plugin in &config.plugins {
        let Some(http) = &plugin.http else { continue };
        let origins: Vec<&str> = http.allowed.iter().map(|p| p.as_str()).collect();
        findings.push(Finding::Ok(format!(
            "plugins.{}.http: ok, may reach {}",
            plugin.name,
            origins.join(", ")
        )));
        for secret in http.secrets.iter().filter(|s| std::env::var_os(&s.env).is_none()) {
            findings.push(Finding::Warning(format!(
                "plugins.{}.http.secrets.\"{}\".env: `{}` is not set: requests to {} would fail",
                plugin.name, secret.origin, secret.env, secret.origin
            )));
        }
    }
    findings
}

/// Each plugin's process grant: whether its programs are there to run.
fn check_process(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for plugin in &config.plugins {
        let Some(process) = &plugin.process else { continue };
        for program in &process.programs {
            findings.push(if program.is_file() {
                Finding::Ok(format!(
                    "plugins.{}.process: ok, may run {}",
                    plugin.name,
                    program.display()
                ))
            } else {
                Finding::Warning(format!(
                    "plugins.{}.process.programs: `{}` is not a file here: runs of it would fail",
                    plugin.name,
                    program.display()
                ))
            });
        }
    }
    findings
}

/// Each webhook: where it is served, and whether its secret is set here
/// (without it every request to it is answered 503).
fn check_webhooks(config: &Config) -> Vec<Finding> {
    let Some(webhooks) = &config.webhooks else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for hook in &webhooks.hooks {
        let how = match &hook.verify {
            Verify::HmacSha256 { header, .. } => format!("HMAC-SHA256 in {header}"),
            Verify::Stripe { header, .. } => format!("signed timestamps in {header}"),
            Verify::Bearer { .. } => "a bearer token".to_owned(),
            Verify::None => "nothing (loopback only)".to_owned(),
        };
        findings.push(Finding::Ok(format!(
            "webhooks.{}: ok, POST http://{}/hooks/{} runs `{}`, verified by {how}",
            hook.name, webhooks.listen, hook.name, hook.plugin
        )));
        if let Some(variable) = hook.verify.secret_env().filter(|v| std::env::var_os(v).is_none()) {
            findings.push(Finding::Warning(format!(
                "webhooks.{}.verify: the environment variable `{variable}` is not set: every request to it would be answered 503",
                hook.name
            )));
        }
    }
    findings
}

/// Each plugin's granted directories: they must exist to be preopened.
fn check_files(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for plugin in &config.plugins {
        let Some(files) = &plugin.files else { continue };
        for dir in files.read.iter().chain(&files.write) {
            findings.push(if dir.host.is_dir() {
                Finding::Ok(format!(
                    "plugins.{}.files: ok, {} as {}",
                    plugin.name,
                    dir.host.display(),
                    dir.guest
                ))
            } else {
                Finding::Error(format!(
                    "plugins.{}.files: {} is not a directory here: the plugin would not see {}",
                    plugin.name,
                    dir.host.display(),
                    dir.guest
                ))
            });
        }
    }
    findings
}

/// Each watch: its directories exist, and its plugin may read them.
fn check_watches(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for watch in &config.watches {
        let grant = config.plugin(watch.plugin.as_str()).and_then(|p| p.files.clone());
        for path in &watch.paths {
            if !path.is_dir() {
                findings.push(Finding::Error(format!(
                    "watches.{}.paths: {} is not a directory here",
                    watch.name,
                    path.display()
                )));
                continue;
            }
            let covered = grant
                .as_deref()
                .is_some_and(|g| g.read.iter().chain(&g.write).any(|d| path.starts_with(&d.host)));
            findings.push(if covered {
                Finding::Ok(format!("watches.{}: ok, {} runs `{}`", watch.name, path.display(), watch.plugin))
            } else {
                Finding::Warning(format!(
                    "watches.{}: `{}` has no `files` grant covering {}: it is told what changed but cannot read it",
                    watch.name,
                    watch.plugin,
                    path.display()
                ))
            });
        }
    }
    findings
}
