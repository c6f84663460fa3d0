//! `[web]`: the status page `mission up` serves.
//!
//! ```toml
//! [web]
//! listen = "127.0.0.1:8640"          # loopback unless a token is set
//! token_env = "MISSION_WEB_TOKEN"    # the token's variable; needed for the
//!                                    # buttons and for any non-loopback client
//! hosts = ["mini.lan"]               # names the page may be asked for by,
//!                                    # beside the loopback names and `listen`
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

/// The validated `[web]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// The address the page is served on.
    pub listen: SocketAddr,
    /// The environment variable holding the page's token, if it has one.
    pub token_env: Option<String>,
    /// Host names the page answers to beside `localhost`, the loopback
    /// addresses and `listen`'s own (lowercase, without a port).
    pub hosts: Vec<String>,
}

/// `[web]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWeb {
    /// Example: `listen = "127.0.0.1:8640"`
    listen: String,
    /// Example: `token_env = "MISSION_WEB_TOKEN"`
    token_env: Option<String>,
    /// Example: `hosts = ["mini.lan"]`: the `Host` names a browser may use
    /// for the page beyond the loopback names and the listen address;
    /// requests for any other name are refused (DNS rebinding).
    #[serde(default)]
    hosts: Vec<String>,
}

impl RawWeb {
    pub(crate) fn validate(self) -> Result<WebConfig, String> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "web.listen: `{}` is not an address and port, e.g. \"127.0.0.1:8640\"",
                self.listen
            )
        })?;
        if let Some(bad) = self
            .token_env
            .as_ref()
            .filter(|n| n.is_empty() || n.contains('='))
        {
            return Err(format!(
                "web.token_env: `{bad}` is not an environment variable name"
            ));
        }
        let mut hosts = Vec::new();
        for host in self.hosts {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!(
                    "web.hosts: `{host}` is not a host name (letters, digits, `-` and `.`, no port)"
                ));
            }
            hosts.push(host.to_ascii_lowercase());
        }
        if !listen.ip().to_canonical().is_loopback() && self.token_env.is_none() {
            return Err(format!(
                "web.listen: `{listen}` is reachable from other machines: set web.token_env to the \
                 variable holding the page's token, or listen on 127.0.0.1"
            ));
        }
        Ok(WebConfig {
            listen,
            token_env: self.token_env,
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(text: &str) -> Result<WebConfig, String> {
        toml::from_str::<RawWeb>(text).unwrap().validate()
    }

    #[test]
    fn a_mapped_loopback_address_is_loopback() {
        let config = web("listen = \"[::ffff:127.0.0.1]:8640\"").unwrap();
        assert!(config.token_env.is_none());
        let error = web("listen = \"[::ffff:10.0.0.5]:8640\"").unwrap_err();
        assert!(error.contains("reachable from other machines"), "{error}");
    }

    #[test]
    fn extra_host_names_are_names_without_ports() {
        assert_eq!(
            web("listen = \"127.0.0.1:8640\"\nhosts = [\"Mini.LAN\"]")
                .unwrap()
                .hosts,
            ["mini.lan"]
        );
        let error = web("listen = \"127.0.0.1:8640\"\nhosts = [\"mini.lan:8640\"]").unwrap_err();
        assert!(
            error.contains("web.hosts: `mini.lan:8640` is not a host name"),
            "{error}"
        );
    }
}
