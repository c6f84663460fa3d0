//! `[webhooks]`: the webhook listener and each webhook it serves.
//!
//! ```toml
//! [webhooks]
//! listen = "127.0.0.1:8641"          # its own listener, never the page's
//! request_timeout = "10s"            # a whole request, headers and body
//! max_backlog = 1000                 # each webhook's deliveries stored and not yet run
//!
//! [webhooks.shop-orders]             # POST /hooks/shop-orders
//! plugin = "order-sync"              # a task plugin
//! verify = { hmac_sha256 = "X-Shopify-Hmac-Sha256", encoding = "base64", secret_env = "SHOP_HOOK_SECRET" }
//! # verify = { hmac_sha256 = "X-Hub-Signature-256", prefix = "sha256=", secret_env = "GH_SECRET" }
//! # verify = { stripe = "Stripe-Signature", secret_env = "STRIPE_SECRET", tolerance = "5m" }
//! # verify = { bearer_env = "LEAD_TOKEN" }        # Authorization: Bearer …
//! # verify = { none = true }                     # only on a loopback listener
//! delivery_id = "X-Shopify-Webhook-Id"  # deduplicates redeliveries
//! max_body = "1MiB"
//! rate = 20                          # requests per second (bursts of twice that)
//! retries = 3                        # extra attempts after a failed run
//! retry_backoff = "30s"              # first wait; doubles each retry
//! timeout = "1m"                     # the run's deadline (default: the plugin's)
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::units::{ByteSize, HumanDuration};
use super::{PluginConfig, PluginName, World};

/// The largest body any webhook may accept.
pub const MAX_BODY_LIMIT: u64 = 64 << 20;

/// The validated `[webhooks]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhooksConfig {
    /// The listener's address.
    pub listen: SocketAddr,
    /// How long one request may take to arrive, headers and body.
    pub request_timeout: Duration,
    /// How many stored deliveries of one webhook may wait for their run
    /// before its new ones are refused with 503 (each webhook has its own).
    pub max_backlog: usize,
    /// The webhooks, sorted by name.
    pub hooks: Vec<WebhookConfig>,
}

impl WebhooksConfig {
    /// The webhook served at `/hooks/NAME`.
    pub fn hook(&self, name: &str) -> Option<&WebhookConfig> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

/// One webhook: `[webhooks.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// Its name, the last part of its path.
    pub name: String,
    /// The task plugin each delivery runs.
    pub plugin: PluginName,
    /// How a request proves it comes from the sender.
    pub verify: Verify,
    /// The header whose value identifies a delivery (lower case), so a
    /// redelivery runs nothing.
    pub delivery_id: Option<String>,
    /// The largest body accepted.
    pub max_body: u64,
    /// Requests per second, in bursts of up to twice as many.
    pub rate: u32,
    /// Extra attempts after a failed run.
    pub retries: u32,
    /// The wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// The run's deadline; the plugin's `timeout` without one.
    pub timeout: Option<Duration>,
}

/// How requests to a webhook are verified, with a secret the plugin never
/// sees (read from the environment variable named here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// HMAC-SHA256 of the raw body in `header`, after `prefix`.
    HmacSha256 {
        /// The header, lower case.
        header: String,
        /// How the MAC is written.
        encoding: Encoding,
        /// What comes before it, e.g. `sha256=`.
        prefix: String,
        /// The secret's variable.
        secret_env: String,
    },
    /// Stripe's signed timestamp: `t=…,v1=…` in `header`, HMAC-SHA256 of
    /// `t.body` in hex, `t` no further than `tolerance` from now.
    Stripe {
        /// The header, lower case.
        header: String,
        /// The secret's variable.
        secret_env: String,
        /// How far the timestamp may be from now.
        tolerance: Duration,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer {
        /// The token's variable.
        secret_env: String,
    },
    /// Nothing: allowed only on a loopback listener.
    None,
}

impl Verify {
    /// The variable holding the secret, if any.
    pub fn secret_env(&self) -> Option<&str> {
        match self {
            Verify::HmacSha256 { secret_env, .. }
            | Verify::Stripe { secret_env, .. }
            | Verify::Bearer { secret_env } => Some(secret_env),
            Verify::None => None,
        }
    }

    /// The header that carries the proof (lower case), kept from the plugin.
    pub fn header(&self) -> Option<&str> {
        match self {
            Verify::HmacSha256 { header, .. } | Verify::Stripe { header, .. } => Some(header),
            Verify::Bearer { .. } => Some("authorization"),
            Verify::None => None,
        }
    }
}

/// How an HMAC is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower- or upper-case hex (GitHub).
    #[default]
    Hex,
    /// Standard base64 (Shopify).
    Base64,
}

/// `[webhooks]` as written: its own keys, and a table per webhook.
#[derive(Deserialize)]
pub(super) struct RawWebhooks {
    /// Example: `listen = "127.0.0.1:8641"`
    listen: String,
    /// Example: `request_timeout = "10s"` (the default)
    request_timeout: Option<HumanDuration>,
    /// Example: `max_backlog = 1000` (the default)
    max_backlog: Option<usize>,
    /// Each webhook, by name.
    #[serde(flatten)]
    hooks: BTreeMap<String, toml::Value>,
}

/// `[webhooks.NAME]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    /// Example: `plugin = "order-sync"`
    plugin: String,
    /// Example: `verify = { bearer_env = "LEAD_TOKEN" }`
    verify: RawVerify,
    /// Example: `delivery_id = "X-GitHub-Delivery"`
    delivery_id: Option<String>,
    /// Example: `max_body = "1MiB"` (the default)
    max_body: Option<ByteSize>,
    /// Example: `rate = 20` (the default)
    rate: Option<u32>,
    /// Example: `retries = 3` (the default)
    retries: Option<u32>,
    /// Example: `retry_backoff = "30s"` (the default)
    retry_backoff: Option<HumanDuration>,
    /// Example: `timeout = "1m"`
    timeout: Option<HumanDuration>,
}

/// `verify = { … }` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    hmac_sha256: Option<String>,
    encoding: Option<Encoding>,
    prefix: Option<String>,
    stripe: Option<String>,
    tolerance: Option<HumanDuration>,
    bearer_env: Option<String>,
    secret_env: Option<String>,
    none: Option<bool>,
}

impl RawWebhooks {
    /// `[webhooks]` validated: each webhook's plugin is a task plugin among
    /// `plugins`, and one without verification needs a loopback listener.
    pub(super) fn validate(self, plugins: &[PluginConfig]) -> Result<WebhooksConfig, String> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "webhooks.listen: `{}` is not an address and port, e.g. \"127.0.0.1:8641\"",
                self.listen
            )
        })?;
        let request_timeout = self.request_timeout.map_or(Duration::from_secs(10), |t| t.0);
        if request_timeout.is_zero() {
            return Err("webhooks.request_timeout: must be more than zero".into());
        }
        let max_backlog = self.max_backlog.unwrap_or(1000);
        if max_backlog == 0 {
            return Err("webhooks.max_backlog: must be at least 1".into());
        }
        let loopback = listen.ip().to_canonical().is_loopback();
        let hooks = self
            .hooks
            .into_iter()
            .map(|(name, value)| validate_hook(&name, value, plugins, loopback))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebhooksConfig {
            listen,
            request_timeout,
            max_backlog,
            hooks,
        })
    }
}

fn validate_hook(
    name: &str,
    value: toml::Value,
    plugins: &[PluginConfig],
    loopback: bool,
) -> Result<WebhookConfig, String> {
    let field = format!("webhooks.{name}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(format!(
            "{field}: a webhook's name is its path (/hooks/NAME): use lower-case letters, digits, `-` and `_`"
        ));
    }
    if !value.is_table() {
        return Err(format!(
            "{field}: not a setting of [webhooks] (listen, request_timeout, max_backlog) nor a [{field}] table"
        ));
    }
    let raw: RawWebhook = value.try_into().map_err(|e| format!("{field}: {e}"))?;
    let plugin = plugins
        .iter()
        .find(|p| p.name.as_str() == raw.plugin)
        .ok_or_else(|| format!("{field}.plugin: no plugin named `{}`", raw.plugin))?;
    if plugin.world != World::Task {
        return Err(format!(
            "{field}.plugin: `{}` is a {} plugin; a webhook runs a task plugin",
            plugin.name, plugin.world
        ));
    }
    let verify = raw.verify.validate(&format!("{field}.verify"), loopback)?;
    let max_body = raw.max_body.map_or(1 << 20, |b| b.0);
    if max_body == 0 || max_body > MAX_BODY_LIMIT {
        return Err(format!(
            "{field}.max_body: must be more than zero and at most {} MiB",
            MAX_BODY_LIMIT >> 20
        ));
    }
    let rate = raw.rate.unwrap_or(20);
    if rate == 0 {
        return Err(format!("{field}.rate: must be at least 1 request per second"));
    }
    let delivery_id = match raw.delivery_id {
        Some(header) => Some(header_name(&format!("{field}.delivery_id"), &header)?),
        None => None,
    };
    Ok(WebhookConfig {
        name: name.to_owned(),
        plugin: plugin.name.clone(),
        verify,
        delivery_id,
        max_body,
        rate,
        retries: raw.retries.unwrap_or(3),
        retry_backoff: raw.retry_backoff.map_or(Duration::from_secs(30), |b| b.0),
        timeout: raw.timeout.map(|t| t.0),
    })
}

impl RawVerify {
    fn validate(self, field: &str, loopback: bool) -> Result<Verify, String> {
        let ways = [
            self.hmac_sha256.is_some(),
            self.stripe.is_some(),
            self.bearer_env.is_some(),
            self.none == Some(true),
        ];
        if ways.iter().filter(|&&w| w).count() != 1 {
            return Err(format!(
                "{field}: name one way: `hmac_sha256 = \"HEADER\"`, `stripe = \"HEADER\"`, \
                 `bearer_env = \"VARIABLE\"`, or `none = true` (only on a loopback listener)"
            ));
        }
        let secret = |secret_env: Option<String>| {
            secret_env
                .filter(|n| !n.is_empty() && !n.contains('='))
                .ok_or_else(|| {
                    format!("{field}.secret_env: name the environment variable that holds the secret")
                })
        };
        if let Some(header) = self.hmac_sha256 {
            return Ok(Verify::HmacSha256 {
                header: header_name(&format!("{field}.hmac_sha256"), &header)?,
                encoding: self.encoding.unwrap_or_default(),
                prefix: self.prefix.unwrap_or_default(),
                secret_env: secret(self.secret_env)?,
            });
        }
        if self.encoding.is_some() || self.prefix.is_some() {
            return Err(format!("{field}: `encoding` and `prefix` go with `hmac_sha256`"));
        }
        if let Some(header) = self.stripe {
            let tolerance = self.tolerance.map_or(Duration::from_secs(300), |t| t.0);
            return Ok(Verify::Stripe {
                header: header_name(&format!("{field}.stripe"), &header)?,
                secret_env: secret(self.secret_env)?,
                tolerance,
            });
        }
        if self.tolerance.is_some() {
            return Err(format!("{field}.tolerance: goes with `stripe`"));
        }
        if let Some(variable) = self.bearer_env {
            if self.secret_env.is_some() {
                return Err(format!(
                    "{field}: `bearer_env` names the token's variable; drop `secret_env`"
                ));
            }
            return Ok(Verify::Bearer {
                secret_env: secret(Some(variable))
                    .map_err(|_| format!("{field}.bearer_env: name a variable"))?,
            });
        }
        if !loopback {
            return Err(format!(
                "{field}: `none = true` is allowed only when webhooks.listen is a loopback address: \
                 anyone who reaches the listener could start the plugin"
            ));
        }
        Ok(Verify::None)
    }
}

/// `header` as a lower-case HTTP header name.
fn header_name(field: &str, header: &str) -> Result<String, String> {
    http::HeaderName::from_bytes(header.as_bytes())
        .map(|h| h.as_str().to_owned())
        .map_err(|_| format!("{field}: `{header}` is not a header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugins() -> Vec<PluginConfig> {
        let config = crate::config::Config::parse(
            std::path::Path::new("/tmp/mission.toml"),
            "data_dir = \"d\"\n[plugins.sync]\nworld = \"task\"\nwasm = \"s.wasm\"\n[plugins.echo]\nworld = \"chat\"\nwasm = \"e.wasm\"\n",
        )
        .unwrap();
        config.plugins
    }

    fn parse(text: &str) -> Result<WebhooksConfig, String> {
        let raw: RawWebhooks = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.validate(&plugins())
    }

    #[test]
    fn each_way_of_verifying_reads_with_its_defaults() {
        let config = parse(
            "listen = \"127.0.0.1:8641\"\n\
             [gh]\nplugin = \"sync\"\nverify = { hmac_sha256 = \"X-Hub-Signature-256\", prefix = \"sha256=\", secret_env = \"GH\" }\ndelivery_id = \"X-GitHub-Delivery\"\n\
             [stripe]\nplugin = \"sync\"\nverify = { stripe = \"Stripe-Signature\", secret_env = \"ST\" }\n\
             [form]\nplugin = \"sync\"\nverify = { bearer_env = \"TOKEN\" }\nrate = 5\n\
             [local]\nplugin = \"sync\"\nverify = { none = true }\n",
        )
        .unwrap();
        let gh = config.hook("gh").unwrap();
        assert_eq!(gh.delivery_id.as_deref(), Some("x-github-delivery"));
        assert_eq!(gh.verify.header(), Some("x-hub-signature-256"));
        assert_eq!((gh.max_body, gh.retries, gh.rate), (1 << 20, 3, 20));
        assert!(
            matches!(config.hook("stripe").unwrap().verify, Verify::Stripe { tolerance, .. } if tolerance == Duration::from_secs(300))
        );
        assert_eq!(config.hook("form").unwrap().verify.secret_env(), Some("TOKEN"));
        assert_eq!(config.hook("local").unwrap().verify, Verify::None);
    }

    #[test]
    fn mistakes_are_named_by_field() {
        let cases = [
            ("listen = \"0.0.0.0:8641\"\n[open]\nplugin = \"sync\"\nverify = { none = true }\n", "webhooks.open.verify: `none = true` is allowed only"),
            ("listen = \"127.0.0.1:1\"\n[x]\nplugin = \"echo\"\nverify = { none = true }\n", "webhooks.x.plugin: `echo` is a chat plugin"),
            ("listen = \"127.0.0.1:1\"\n[x]\nplugin = \"nope\"\nverify = { none = true }\n", "webhooks.x.plugin: no plugin named `nope`"),
            ("listen = \"127.0.0.1:1\"\n[x]\nplugin = \"sync\"\nverify = { hmac_sha256 = \"X-Sig\" }\n", "webhooks.x.verify.secret_env"),
            ("listen = \"127.0.0.1:1\"\n[x]\nplugin = \"sync\"\nverify = { bearer_env = \"A\", none = true }\n", "webhooks.x.verify: name one way"),
            ("listen = \"127.0.0.1:1\"\nlisten_too = 3\n", "webhooks.listen_too: not a setting"),
            ("listen = \"127.0.0.1:1\"\n[Big]\nplugin = \"sync\"\nverify = { none = true }\n", "webhooks.Big: a webhook's name is its path"),
            ("listen = \"127.0.0.1:1\"\n[x]\nplugin = \"sync\"\nverify = { none = true }\nmax_body = \"1GiB\"\n", "webhooks.x.max_body"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
