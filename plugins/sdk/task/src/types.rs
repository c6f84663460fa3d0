//! `mission:plugin/types`, written by hand so its error reads well.

/// A moment in time: milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Configuration values as `key = value` pairs.
pub type Config = Vec<(String, String)>;

/// Why a capability call did not succeed.
#[derive(Clone, Debug, PartialEq)]
pub enum CapabilityError {
    Denied(String),
    OverBudget(String),
    TimedOut,
    Unavailable(String),
    Failed(String),
}
