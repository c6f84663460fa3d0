//! `[plugins.NAME.http]`: which origins a plugin may send HTTP requests to,
//! its limits, and the secret headers the host adds for it.
//!
//! ```toml
//! [plugins.shop-sync.http]
//! allowed = ["https://api.myshop.example", "https://*.crm.example:8443"]
//! max_response = "8MiB"          # bigger bodies are an error
//! max_requests = 50              # per call
//! timeout = "20s"                # per request, never past the call's deadline
//!
//! [plugins.shop-sync.http.secrets."https://api.myshop.example"]   # one origin
//! header = "Authorization"
//! env = "SHOP_TOKEN"             # read from the host's environment at send time
//! prefix = "Bearer "
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::units::{ByteSize, HumanDuration};

/// What a plugin may reach over HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGrant {
    /// The origins it may send to; anything else is denied.
    pub allowed: Vec<OriginPattern>,
    /// The largest response body, in bytes.
    pub max_response: u64,
    /// The most requests one call may send.
    pub max_requests: u32,
    /// The longest one request may take (capped at the call's deadline).
    pub timeout: Duration,
    /// Headers the host adds for one origin each.
    pub secrets: Vec<HttpSecret>,
}

/// `scheme://host[:port]`, where the host's first label may be `*` (any one
/// label). Without a port, the scheme's default port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    text: String,
    scheme: String,
    /// The host in lower case; `*.example.com` keeps its star.
    host: String,
    port: u16,
}

/// A header the host adds to requests to one origin (scheme, host and
/// port), its value read from the host's environment when the request is
/// sent. The plugin never sees it. Over plain `http` only to loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSecret {
    /// The origin as written: `https://api.myshop.example`.
    pub origin: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The exact host (lower case) it is sent to.
    pub host: String,
    /// The port it is sent to.
    pub port: u16,
    /// The header's name.
    pub header: String,
    /// The environment variable holding the value.
    pub env: String,
    /// Text put before the value, e.g. `Bearer `.
    pub prefix: String,
}

impl OriginPattern {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        let wrong = |why: &str| format!("`{text}` is not an origin pattern: {why}");
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| wrong("write scheme://host[:port]"))?;
        let default_port = match scheme {
            "https" => 443,
            "http" => 80,
            _ => return Err(wrong("the scheme must be http or https")),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(wrong("only scheme://host[:port], with no path, query or user"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                let port = port.parse().map_err(|_| wrong("the port is not a number"))?;
                (host, port)
            }
            None => (rest, default_port),
        };
        let host = host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        let valid_label =
            |l: &&str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let wildcard_ok = labels.len() >= 3 && labels[0] == "*" && labels[1..].iter().all(valid_label);
        if !(labels.iter().all(valid_label) || wildcard_ok) {
            return Err(wrong(
                "the host must be a name (its first label may be `*`) or an IPv4 address",
            ));
        }
        Ok(OriginPattern {
            text: text.to_owned(),
            scheme: scheme.to_owned(),
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => host == self.host,
        }
    }

    /// Whether this pattern names `host` exactly (no wildcard): only then may
    /// a request reach a loopback or private address.
    pub fn names_exactly(&self, host: &str) -> bool {
        self.host == host.to_ascii_lowercase()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl HttpGrant {
    /// The first pattern allowing `scheme://host:port`, if any.
    pub fn allowing(&self, scheme: &str, host: &str, port: u16) -> Option<&OriginPattern> {
        self.allowed.iter().find(|p| p.matches(scheme, host, port))
    }

    /// The secret header for `scheme://host:port`, if one is configured.
    pub fn secret_for(&self, scheme: &str, host: &str, port: u16) -> Option<&HttpSecret> {
        let host = host.to_ascii_lowercase();
        self.secrets
            .iter()
            .find(|s| s.scheme == scheme && s.host == host && s.port == port)
    }
}

/// `[plugins.NAME.http]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpGrant {
    /// Example: `allowed = ["https://api.myshop.example"]`
    allowed: Vec<String>,
    /// Example: `max_response = "8MiB"` (the default)
    max_response: Option<ByteSize>,
    /// Example: `max_requests = 50` (the default)
    max_requests: Option<u32>,
    /// Example: `timeout = "20s"` (the default)
    timeout: Option<HumanDuration>,
    /// Example: `[plugins.NAME.http.secrets."https://api.myshop.example"]`
    /// (a bare host is `https://` on port 443)
    #[serde(default)]
    secrets: BTreeMap<String, RawHttpSecret>,
}

/// One `[plugins.NAME.http.secrets."ORIGIN"]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpSecret {
    /// Example: `header = "Authorization"`
    header: String,
    /// Example: `env = "SHOP_TOKEN"`
    env: String,
    /// Example: `prefix = "Bearer "` (default none)
    #[serde(default)]
    prefix: String,
}

impl RawHttpGrant {
    /// The grant validated; errors name `field` and what is wrong.
    pub(crate) fn validate(self, field: &str) -> Result<HttpGrant, String> {
        let allowed = self
            .allowed
            .iter()
            .map(|p| OriginPattern::parse(p).map_err(|e| format!("{field}.allowed: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if allowed.is_empty() {
            return Err(format!(
                "{field}.allowed: list at least one origin, e.g. \"https://api.example.com\""
            ));
        }
        let secrets = self
            .secrets
            .into_iter()
            .map(|(key, secret)| {
                let here = format!("{field}.secrets.\"{key}\"");
                let written = if key.contains("://") {
                    key.clone()
                } else {
                    format!("https://{key}")
                };
                let origin = OriginPattern::parse(&written).map_err(|e| format!("{here}: {e}"))?;
                if origin.host.starts_with('*') {
                    return Err(format!(
                        "{here}: a secret is sent to one host, not to a wildcard's"
                    ));
                }
                if !allowed
                    .iter()
                    .any(|p| p.matches(&origin.scheme, &origin.host, origin.port))
                {
                    return Err(format!(
                        "{here}: no pattern in {field}.allowed reaches {}://{}:{} (a secret goes to one \
                         origin: scheme, host and port, e.g. \"http://localhost:8080\")",
                        origin.scheme, origin.host, origin.port
                    ));
                }
                if origin.scheme == "http" && !is_loopback_host(&origin.host) {
                    return Err(format!(
                        "{here}: a secret is never sent over plain http except to this machine \
                         (localhost, 127.0.0.1): use https"
                    ));
                }
                http::HeaderName::from_bytes(secret.header.as_bytes())
                    .map_err(|_| format!("{here}.header: `{}` is not a header name", secret.header))?;
                Ok(HttpSecret {
                    origin: key,
                    scheme: origin.scheme,
                    host: origin.host,
                    port: origin.port,
                    header: secret.header,
                    env: secret.env,
                    prefix: secret.prefix,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(HttpGrant {
            allowed,
            max_response: self.max_response.map_or(8 << 20, |b| b.0),
            max_requests: self.max_requests.unwrap_or(50),
            timeout: self.timeout.map_or(Duration::from_secs(20), |t| t.0),
            secrets,
        })
    }
}

/// Whether `host` (a name or an address, lower case) is this machine.
pub(super) fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allowed: &[&str], secrets: &str) -> Result<HttpGrant, String> {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        let text = format!("allowed = [{}]\n{secrets}", allowed.join(", "));
        toml::from_str::<RawHttpGrant>(&text)
            .map_err(|e| e.to_string())?
            .validate("plugins.p.http")
    }

    fn secret(key: &str) -> String {
        format!("[secrets.{key:?}]\nheader = \"Authorization\"\nenv = \"TOKEN\"\n")
    }

    #[test]
    fn a_secret_is_bound_to_one_origin() {
        let both = ["http://localhost:18081", "http://localhost:18082"];
        let grant = grant(&both, &secret("http://localhost:18081")).unwrap();
        assert!(grant.secret_for("http", "localhost", 18081).is_some());
        assert!(grant.secret_for("http", "localhost", 18082).is_none());
        assert!(grant.secret_for("https", "localhost", 18081).is_none());
        // A bare host is https on 443.
        let grant = super::tests::grant(
            &["https://api.example.com", "http://api.example.com"],
            &secret("api.example.com"),
        )
        .unwrap();
        assert!(grant.secret_for("https", "api.example.com", 443).is_some());
        assert!(grant.secret_for("http", "api.example.com", 80).is_none());
    }

    #[test]
    fn a_secret_over_plain_http_goes_only_to_loopback() {
        let error = grant(&["http://api.example.com"], &secret("http://api.example.com")).unwrap_err();
        assert!(error.contains("never sent over plain http"), "{error}");
        for local in ["http://127.0.0.1:8080", "http://localhost:8080"] {
            grant(&[local], &secret(local)).unwrap();
        }
        let error = grant(&["http://localhost:8080"], &secret("localhost")).unwrap_err();
        assert!(
            error.contains("no pattern in plugins.p.http.allowed reaches https://localhost:443"),
            "{error}"
        );
    }

    #[test]
    fn patterns_match_scheme_host_and_port_with_one_wildcard_label() {
        let exact = OriginPattern::parse("https://api.myshop.example").unwrap();
        assert!(exact.matches("https", "API.myshop.example", 443));
        assert!(!exact.matches("http", "api.myshop.example", 80));
        assert!(!exact.matches("https", "api.myshop.example", 8443));
        assert!(!exact.matches("https", "evil.api.myshop.example", 443));
        let wild = OriginPattern::parse("https://*.crm.example:8443").unwrap();
        assert!(wild.matches("https", "eu.crm.example", 8443));
        assert!(!wild.matches("https", "crm.example", 8443));
        assert!(!wild.matches("https", "a.b.crm.example", 8443));
        assert!(!wild.matches("https", "eu.crm.example", 443));
        assert!(!wild.names_exactly("eu.crm.example"));
        let local = OriginPattern::parse("http://127.0.0.1:8080").unwrap();
        assert!(local.matches("http", "127.0.0.1", 8080) && local.names_exactly("127.0.0.1"));
    }

    #[test]
    fn bad_patterns_say_what_is_wrong() {
        for (text, why) in [
            ("api.example.com", "scheme://host"),
            ("ftp://example.com", "http or https"),
            ("https://example.com/path", "no path"),
            ("https://example.com:http", "not a number"),
            ("https://*.com", "first label may be `*`"),
            ("https://a.*.example.com", "first label may be `*`"),
        ] {
            let error = OriginPattern::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
