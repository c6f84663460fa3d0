//! `mission:plugin/common` for Rust plugins: the types every world shares,
//! written by hand (the SDKs map the WIT interface onto this crate) so that
//! a [`CapabilityError`] prints as a sentence and `?` turns it into the
//! `String` error a plugin returns.
//!
//! ```ignore
//! fn run(invocation: Invocation) -> Result<Outcome, String> {
//!     let count = state::get("count")?;   // a CapabilityError becomes a String
//!     ...
//! }
//! ```

pub mod http;

use std::fmt;

/// A moment in time: milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Configuration values for one plugin or schedule, as `key = value` pairs,
/// sorted by key.
pub type Config = Vec<(String, String)>;

/// Why a capability call did not succeed. Every capability returns this
/// instead of trapping, so a plugin can always recover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapabilityError {
    /// The plugin's grants do not allow this call; the text says which grant.
    Denied(String),
    /// The call would go over a spending budget; nothing was spent.
    OverBudget(String),
    /// The call did not finish before its deadline and was abandoned.
    TimedOut,
    /// The host does not provide the capability here; the text says why.
    Unavailable(String),
    /// The call was made but failed; the text says why.
    Failed(String),
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapabilityError::Denied(why) => write!(f, "denied: {why}"),
            CapabilityError::OverBudget(why) => write!(f, "over budget: {why}"),
            CapabilityError::TimedOut => f.write_str("timed out"),
            CapabilityError::Unavailable(why) => write!(f, "unavailable: {why}"),
            CapabilityError::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::error::Error for CapabilityError {}

impl From<CapabilityError> for String {
    fn from(error: CapabilityError) -> String {
        error.to_string()
    }
}

/// The value of config key `key`, if set.
pub fn config_value<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Gives a world's generated `claude::Options` a `Default` (every field
/// unset) and builder methods, so a plugin names only what it sets and
/// keeps compiling when the WIT adds a field. Used by the SDKs.
#[macro_export]
macro_rules! claude_options_builder {
    ($options:path, $backend:path) => {
        impl ::core::default::Default for $options {
            fn default() -> Self {
                Self {
                    system: None,
                    model: None,
                    max_turns: None,
                    session_key: None,
                    allowed_tools: Vec::new(),
                    timeout_ms: None,
                    backend: None,
                }
            }
        }

        impl $options {
            /// Options with every field unset: the host's and the grant's
            /// defaults apply.
            pub fn new() -> Self {
                Self::default()
            }

            /// With the system prompt `system`.
            pub fn system(mut self, system: impl Into<String>) -> Self {
                self.system = Some(system.into());
                self
            }

            /// With the model `model`.
            pub fn model(mut self, model: impl Into<String>) -> Self {
                self.model = Some(model.into());
                self
            }

            /// Continuing the session `key`.
            pub fn session_key(mut self, key: impl Into<String>) -> Self {
                self.session_key = Some(key.into());
                self
            }

            /// At most `turns` agentic turns.
            pub fn max_turns(mut self, turns: u32) -> Self {
                self.max_turns = Some(turns);
                self
            }

            /// Allowing the tools `tools` (within the grant).
            pub fn allowed_tools(mut self, tools: impl IntoIterator<Item = impl Into<String>>) -> Self {
                self.allowed_tools = tools.into_iter().map(Into::into).collect();
                self
            }

            /// With a deadline of `timeout_ms` milliseconds (within the grant).
            pub fn timeout_ms(mut self, timeout_ms: u32) -> Self {
                self.timeout_ms = Some(timeout_ms);
                self
            }

            /// Through `backend` (one the grant allows).
            pub fn backend(mut self, backend: $backend) -> Self {
                self.backend = Some(backend);
                self
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_sentences_and_become_strings_with_question_mark() {
        fn denied() -> Result<(), String> {
            Err(CapabilityError::Denied("plugin `p` has no `state` grant".into()))?;
            Ok(())
        }
        assert_eq!(denied().unwrap_err(), "denied: plugin `p` has no `state` grant");
        assert_eq!(CapabilityError::TimedOut.to_string(), "timed out");
    }
}
