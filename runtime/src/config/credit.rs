//! `[claude.credit]`: the monthly Agent SDK credit that `claude -p` draws
//! from on a subscription login (since June 15, 2026), and what happens
//! once it is spent.
//!
//! ```toml
//! [claude.credit]
//! plan = "max5x"          # pro ($20) | max5x ($100) | max20x ($200); or:
//! # monthly_usd = 100.0
//! resets = 1              # the day of the month it starts again
//! then = "stop"           # stop | api | continue, once it is spent
//! login = "auto"          # auto | subscription | api_key: whose calls draw from it
//! ```

use serde::Deserialize;

/// The validated `[claude.credit]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CreditConfig {
    /// The credit of each period, in USD.
    pub monthly_usd: f64,
    /// The day of the month a period begins (1 to 28).
    pub resets: u32,
    /// What a call does once the period's credit is spent.
    pub then: WhenSpent,
    /// How the host tells whether the CLI draws from the credit.
    pub login: Login,
}

/// What a `cli` or `persistent` call does once the credit is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WhenSpent {
    /// Refused before anything is spent; the user is told.
    #[default]
    Stop,
    /// Sent to the API backend instead, if the plugin's grant allows it.
    Api,
    /// Made anyway, as extra usage at API rates, with a warning.
    Continue,
}

/// Whose calls draw from the credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Login {
    /// By what the CLI says: the `apiKeySource` of its `system/init` event
    /// (`"none"`: a subscription login), and before it has said, whether
    /// its environment carries `ANTHROPIC_API_KEY`.
    #[default]
    Auto,
    /// The CLI is logged in with a subscription: every call draws.
    Subscription,
    /// The CLI runs on an API key: no call draws.
    ApiKey,
}

/// `[claude.credit]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredit {
    /// Example: `plan = "max5x"`
    plan: Option<String>,
    /// Example: `monthly_usd = 100.0`
    monthly_usd: Option<f64>,
    /// Example: `resets = 1` (the default)
    resets: Option<u32>,
    /// Example: `then = "api"` (default `"stop"`)
    #[serde(default)]
    then: WhenSpent,
    /// Example: `login = "subscription"` (default `"auto"`)
    #[serde(default)]
    login: Login,
}

impl RawCredit {
    pub(crate) fn validate(self) -> Result<CreditConfig, String> {
        let monthly_usd = match (self.plan.as_deref(), self.monthly_usd) {
            (Some(_), Some(_)) => return Err("claude.credit: give `plan` or `monthly_usd`, not both".into()),
            (None, None) => {
                return Err("claude.credit: give `plan` (pro, max5x, max20x) or `monthly_usd`".into())
            }
            (None, Some(usd)) if usd.is_finite() && usd > 0.0 => usd,
            (None, Some(_)) => return Err("claude.credit.monthly_usd: must be more than zero".into()),
            (Some("pro"), None) => 20.0,
            (Some("max5x"), None) => 100.0,
            (Some("max20x"), None) => 200.0,
            (Some(other), None) => {
                return Err(format!(
                    "claude.credit.plan: `{other}` is not one of pro, max5x, max20x (or give monthly_usd)"
                ))
            }
        };
        let resets = self.resets.unwrap_or(1);
        if !(1..=28).contains(&resets) {
            return Err(format!(
                "claude.credit.resets: `{resets}` must be a day of the month from 1 to 28"
            ));
        }
        Ok(CreditConfig {
            monthly_usd,
            resets,
            then: self.then,
            login: self.login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit(toml: &str) -> Result<CreditConfig, String> {
        toml::from_str::<RawCredit>(toml)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn a_plan_names_its_credit_and_bad_values_name_the_field() {
        let max = credit("plan = \"max5x\"\nthen = \"api\"").unwrap();
        assert_eq!(
            (max.monthly_usd, max.resets, max.then),
            (100.0, 1, WhenSpent::Api)
        );
        assert_eq!(
            credit("monthly_usd = 42.5\nresets = 15").unwrap().monthly_usd,
            42.5
        );
        assert!(credit("plan = \"team\"")
            .unwrap_err()
            .contains("claude.credit.plan: `team`"));
        assert!(credit("plan = \"pro\"\nmonthly_usd = 5.0")
            .unwrap_err()
            .contains("not both"));
        assert!(credit("monthly_usd = 100.0\nresets = 31")
            .unwrap_err()
            .contains("claude.credit.resets"));
        assert!(credit("monthly_usd = -1.0")
            .unwrap_err()
            .contains("more than zero"));
        assert!(credit("").is_err());
    }
}
