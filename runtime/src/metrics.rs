//! The host's counters for Prometheus: runs by plugin, trigger and outcome
//! with their durations, chat messages handled and replies sent, Claude
//! calls with their tokens and dollars, webhook deliveries, tool calls —
//! counted where each is recorded, in this process (a restart starts them
//! at zero, as Prometheus expects of a counter). Labels are names the config
//! bounds (plugins, webhooks) or fixed words, never a chat or free text.
//! Gauges read at scrape time (what waits, the last success of each
//! schedule, the process itself) are the page's (`serve::web::metrics`).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Run durations' bucket bounds, in seconds: a quick task to a long job.
const RUN_SECONDS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0, 600.0,
];

/// A run's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The plugin.
    pub plugin: String,
    /// What started it (`schedule`, `webhook`, …).
    pub trigger: String,
    /// How it ended (`succeeded`, `failed`, …).
    pub outcome: String,
}

/// A plugin's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    /// The plugin.
    pub plugin: String,
}

/// A Claude call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClaudeLabels {
    /// The plugin that asked.
    pub plugin: String,
    /// The backend that answered (`persistent`, `oneshot`, `api`).
    pub backend: String,
}

/// A token count's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The plugin that asked.
    pub plugin: String,
    /// The backend that answered.
    pub backend: String,
    /// `input` or `output`.
    pub direction: String,
}

/// A webhook delivery's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The webhook.
    pub webhook: String,
    /// `accepted`, `duplicate`, `refused` (its proof or its size) or
    /// `throttled` (its rate, its backlog, or the host behind: told to
    /// retry).
    pub result: String,
}

/// A tool call's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// How it ended.
    pub outcome: String,
}

/// The host's counters.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_seconds: Family<PluginLabel, Histogram>,
    messages: Family<PluginLabel, Counter>,
    replies: Family<PluginLabel, Counter>,
    claude_calls: Family<ClaudeLabels, Counter>,
    claude_tokens: Family<TokenLabels, Counter>,
    claude_usd: Family<ClaudeLabels, Counter<f64>>,
    deliveries: Family<DeliveryLabels, Counter>,
    tool_calls: Family<OutcomeLabel, Counter>,
}

/// The process's counters, registered on first use.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mission");
        let runs = Family::default();
        registry.register("runs", "Runs ended, by plugin, trigger and outcome", runs.clone());
        let run_seconds = Family::<PluginLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(RUN_SECONDS.iter().copied())
        });
        registry.register_with_unit(
            "run_duration",
            "How long runs took, by plugin",
            prometheus_client::registry::Unit::Seconds,
            run_seconds.clone(),
        );
        let messages = Family::default();
        registry.register(
            "chat_messages",
            "Chat messages handled, by chat plugin",
            messages.clone(),
        );
        let replies = Family::default();
        registry.register(
            "chat_replies",
            "Chat replies sent, by chat plugin",
            replies.clone(),
        );
        let claude_calls = Family::default();
        registry.register(
            "claude_calls",
            "Claude calls, by plugin and backend",
            claude_calls.clone(),
        );
        let claude_tokens = Family::default();
        registry.register(
            "claude_tokens",
            "Claude tokens, by plugin, backend and direction",
            claude_tokens.clone(),
        );
        let claude_usd = Family::default();
        registry.register(
            "claude_usd",
            "Claude spend in US dollars, by plugin and backend",
            claude_usd.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries received, by webhook and result",
            deliveries.clone(),
        );
        let tool_calls = Family::default();
        registry.register(
            "tool_calls",
            "Plugin tool calls from Claude, by outcome",
            tool_calls.clone(),
        );
        Metrics {
            registry,
            runs,
            run_seconds,
            messages,
            replies,
            claude_calls,
            claude_tokens,
            claude_usd,
            deliveries,
            tool_calls,
        }
    }

    /// The registry the counters are in, for the scrape.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts a run that ended, and how long it took.
    pub fn run_ended(&self, plugin: &str, trigger: &str, outcome: &str, took: Option<Duration>) {
        self.runs
            .get_or_create(&RunLabels {
                plugin: plugin.to_owned(),
                trigger: trigger.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if let Some(took) = took {
            self.run_seconds
                .get_or_create(&PluginLabel {
                    plugin: plugin.to_owned(),
                })
                .observe(took.as_secs_f64());
        }
    }

    /// Counts a chat message handled by `plugin`, and its reply if one was
    /// sent.
    pub fn chat_message(&self, plugin: &str, replied: bool) {
        let label = PluginLabel {
            plugin: plugin.to_owned(),
        };
        self.messages.get_or_create(&label).inc();
        if replied {
            self.replies.get_or_create(&label).inc();
        }
    }

    /// Counts a Claude call with its tokens and cost.
    pub fn claude_call(&self, plugin: &str, backend: &str, input_tokens: u64, output_tokens: u64, usd: f64) {
        let labels = ClaudeLabels {
            plugin: plugin.to_owned(),
            backend: backend.to_owned(),
        };
        self.claude_calls.get_or_create(&labels).inc();
        self.claude_usd.get_or_create(&labels).inc_by(usd.max(0.0));
        for (direction, tokens) in [("input", input_tokens), ("output", output_tokens)] {
            self.claude_tokens
                .get_or_create(&TokenLabels {
                    plugin: plugin.to_owned(),
                    backend: backend.to_owned(),
                    direction: direction.to_owned(),
                })
                .inc_by(tokens);
        }
    }

    /// Counts a webhook delivery received: `accepted`, `duplicate`,
    /// `refused` or `throttled`.
    pub fn webhook_delivery(&self, webhook: &str, result: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                webhook: webhook.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Counts a tool call that ended as `outcome`.
    pub fn tool_call(&self, outcome: &str) {
        self.tool_calls
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
