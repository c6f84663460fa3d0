//! Checking that a request comes from the webhook's sender: an HMAC-SHA256
//! of the raw body (hex or base64, after an optional prefix), Stripe's
//! signed timestamp, or a bearer token, each compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::webhooks::{Encoding, Verify};

type HmacSha256 = Hmac<Sha256>;

/// Why a request was not accepted as the sender's: logged and recorded,
/// never with the secret or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The proof's header is absent.
    #[error("no {0} header")]
    Missing(String),
    /// The header is there but cannot be read.
    #[error("the {0} header is malformed")]
    Malformed(String),
    /// The proof does not match.
    #[error("the signature does not match")]
    Mismatch,
    /// A Stripe-style timestamp too far from now.
    #[error("the signed timestamp is {0} s from now, beyond the tolerance")]
    Stale(i64),
    /// The host has no secret to check with.
    #[error("the secret's variable `{0}` is not set")]
    NoSecret(String),
}

/// What the headers claim (at `now`, Unix seconds), read and checked as far as they can be without
/// the body: the secret there, the header present and well formed, a
/// signed timestamp within its tolerance, a bearer token compared. Only a
/// signature over the body is left, so a request that cannot be the
/// sender's is refused before its body is read.
pub fn proof(verify: &Verify, headers: &HeaderMap, now: i64) -> Result<Proof, Refusal> {
    let secret = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| Refusal::NoSecret(name.to_owned()))
    };
    match verify {
        Verify::None => Ok(Proof::Verified),
        Verify::HmacSha256 {
            header,
            encoding,
            prefix,
            secret_env,
        } => {
            let key = secret(secret_env)?;
            let value = header_text(headers, header)?;
            let written = value
                .trim()
                .strip_prefix(prefix.as_str())
                .ok_or_else(|| Refusal::Malformed(header.clone()))?;
            let mac = decode(written, *encoding).ok_or_else(|| Refusal::Malformed(header.clone()))?;
            Ok(Proof::Signed {
                key,
                signed_before: Vec::new(),
                signatures: vec![mac],
            })
        }
        Verify::Stripe {
            header,
            secret_env,
            tolerance,
        } => {
            let key = secret(secret_env)?;
            let value = header_text(headers, header)?;
            let (timestamp, signatures) = stripe(value).ok_or_else(|| Refusal::Malformed(header.clone()))?;
            let off = now.saturating_sub(timestamp);
            if off.unsigned_abs() > tolerance.as_secs() {
                return Err(Refusal::Stale(off));
            }
            Ok(Proof::Signed {
                key,
                signed_before: format!("{timestamp}.").into_bytes(),
                signatures,
            })
        }
        Verify::Bearer { secret_env } => {
            let token = secret(secret_env)?;
            let value = header_text(headers, "authorization")?;
            let given = value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
                .ok_or_else(|| Refusal::Malformed("authorization".into()))?;
            if bool::from(given.as_bytes().ct_eq(&token)) {
                Ok(Proof::Verified)
            } else {
                Err(Refusal::Mismatch)
            }
        }
    }
}

/// A request's proof, as far as its headers tell it.
#[derive(Debug)]
pub enum Proof {
    /// Nothing to check in the body: no verification, or a bearer token
    /// that matched.
    Verified,
    /// HMAC-SHA256 signatures under `key` of `signed_before` and the body;
    /// any of them may match (Stripe sends several while a secret is
    /// rolled).
    Signed {
        /// The secret.
        key: Vec<u8>,
        /// What is signed before the body (Stripe's `TIMESTAMP.`).
        signed_before: Vec<u8>,
        /// The signatures sent.
        signatures: Vec<Vec<u8>>,
    },
}

impl Proof {
    /// Whether `body` is what the proof signs.
    pub fn check(&self, body: &[u8]) -> Result<(), Refusal> {
        match self {
            Proof::Verified => Ok(()),
            Proof::Signed {
                key,
                signed_before,
                signatures,
            } => {
                let parts: [&[u8]; 2] = [signed_before, body];
                if signatures.iter().any(|mac| check_mac(key, &parts, mac).is_ok()) {
                    Ok(())
                } else {
                    Err(Refusal::Mismatch)
                }
            }
        }
    }
}

/// Stripe's `t=…,v1=…[,v1=…]`: the timestamp and the `v1` signatures, if
/// it reads as that.
fn stripe(value: &str) -> Option<(i64, Vec<Vec<u8>>)> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().ok()?),
            Some(("v1", v)) => signatures.push(hex::decode(v).ok()?),
            _ => {}
        }
    }
    (!signatures.is_empty()).then_some((timestamp?, signatures))
}

/// Whether `mac` is the HMAC-SHA256 under `key` of `parts` joined, in
/// constant time.
fn check_mac(key: &[u8], parts: &[&[u8]], mac: &[u8]) -> Result<(), Refusal> {
    let mut computed = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        computed.update(part);
    }
    computed.verify_slice(mac).map_err(|_| Refusal::Mismatch)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Refusal> {
    let value = headers
        .get(name)
        .ok_or_else(|| Refusal::Missing(name.to_owned()))?;
    value.to_str().map_err(|_| Refusal::Malformed(name.to_owned()))
}

fn decode(text: &str, encoding: Encoding) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(text).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Checks `body` with `headers` as `verify` says, at `now`: both steps.
    fn verified(verify: &Verify, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refusal> {
        proof(verify, headers, now)?.check(body)
    }

    // The example from GitHub's documentation on validating deliveries:
    // secret "It's a Secret to Everybody", payload "Hello, World!".
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_SIGNATURE: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    fn github(variable: &str) -> Verify {
        Verify::HmacSha256 {
            header: "x-hub-signature-256".into(),
            encoding: Encoding::Hex,
            prefix: "sha256=".into(),
            secret_env: variable.into(),
        }
    }

    #[test]
    fn githubs_documented_example_verifies_and_a_changed_byte_does_not() {
        std::env::set_var("MISSION_TEST_GH_SECRET", GITHUB_SECRET);
        let verify = github("MISSION_TEST_GH_SECRET");
        let signed = headers("x-hub-signature-256", GITHUB_SIGNATURE);
        assert_eq!(verified(&verify, &signed, b"Hello, World!", 0), Ok(()));
        assert_eq!(
            verified(&verify, &signed, b"Hello, World?", 0),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verified(&verify, &HeaderMap::new(), b"Hello, World!", 0),
            Err(Refusal::Missing("x-hub-signature-256".into()))
        );
        let unprefixed = headers("x-hub-signature-256", &GITHUB_SIGNATURE[7..]);
        assert!(matches!(
            verified(&verify, &unprefixed, b"Hello, World!", 0),
            Err(Refusal::Malformed(_))
        ));
        assert_eq!(
            verified(&github("MISSION_TEST_UNSET_SECRET"), &signed, b"Hello, World!", 0),
            Err(Refusal::NoSecret("MISSION_TEST_UNSET_SECRET".into()))
        );
    }

    #[test]
    fn a_stripe_signature_holds_within_its_tolerance_only() {
        std::env::set_var("MISSION_TEST_STRIPE_SECRET", "whsec_test");
        let verify = Verify::Stripe {
            header: "stripe-signature".into(),
            secret_env: "MISSION_TEST_STRIPE_SECRET".into(),
            tolerance: Duration::from_secs(300),
        };
        let body = br#"{"id":"evt_1"}"#;
        let mut mac = HmacSha256::new_from_slice(b"whsec_test").unwrap();
        mac.update(b"1700000000.");
        mac.update(body);
        let good = hex::encode(mac.finalize().into_bytes());
        let value = format!("t=1700000000,v1={},v1={good},v0=ignored", "0".repeat(64));
        let signed = headers("stripe-signature", &value);
        assert_eq!(verified(&verify, &signed, body, 1_700_000_100), Ok(()));
        assert_eq!(
            verified(&verify, &signed, body, 1_700_000_400),
            Err(Refusal::Stale(400))
        );
        assert_eq!(
            verified(&verify, &signed, b"{}", 1_700_000_000),
            Err(Refusal::Mismatch)
        );
    }

    #[test]
    fn a_bearer_token_must_match_exactly() {
        std::env::set_var("MISSION_TEST_BEARER", "s3cret");
        let verify = Verify::Bearer {
            secret_env: "MISSION_TEST_BEARER".into(),
        };
        let ok = headers("authorization", "Bearer s3cret");
        assert_eq!(verified(&verify, &ok, b"", 0), Ok(()));
        for wrong in ["Bearer s3cre", "Bearer s3cret!", "Basic s3cret"] {
            assert!(verified(&verify, &headers("authorization", wrong), b"", 0).is_err());
        }
    }
}
