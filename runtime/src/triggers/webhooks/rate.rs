//! Each webhook's request rate: a token bucket per webhook, refilled at
//! its `rate` per second and holding up to twice that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The buckets of every webhook.
#[derive(Default)]
pub struct Rates {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Rates {
    /// Takes one request of `webhook` at `now`, allowed `rate` per second;
    /// `Err` with how long until the next would be allowed.
    pub fn take(&self, webhook: &str, rate: u32, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(rate.max(1));
        let capacity = rate * 2.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(webhook.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_passes_then_the_rate_holds() {
        let rates = Rates::default();
        let start = Instant::now();
        let passed = (0..100).filter(|_| rates.take("a", 10, start).is_ok()).count();
        assert_eq!(passed, 20);
        let wait = rates.take("a", 10, start).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        // Another webhook has its own bucket.
        assert!(rates.take("b", 10, start).is_ok());
        // A second later, ten more.
        let later = start + Duration::from_secs(1);
        let passed = (0..100).filter(|_| rates.take("a", 10, later).is_ok()).count();
        assert_eq!(passed, 10);
    }
}
