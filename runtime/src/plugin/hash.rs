//! A component file's identity: the SHA-256 of its bytes, which names its
//! compiled code in the cache and tells versions apart in the load records.

use std::fmt;

use sha2::{Digest, Sha256};

/// The SHA-256 of a component file, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentHash(String);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The first 12 hex digits, enough to tell versions apart in a listing.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
