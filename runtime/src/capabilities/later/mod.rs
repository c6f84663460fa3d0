//! `mission:plugin/later`: a task plugin wakes itself later — a run of its
//! own at a time it chooses, given back a payload in `event.wake`. Needs
//! the `later` grant; at most `[plugins.NAME.later] max_pending` wake-ups
//! wait at once. The wake-ups are rows of `wakeups` ([`wakeups`]); the
//! trigger that runs them is `triggers::wakeups`. The host keeps
//! [`reminders`] of its own among them.

pub mod reminders;
pub mod wakeups;

use chrono::Utc;

use super::Capabilities;
use crate::config::units::ByteSize;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::later::Host;
use crate::wasm::bindings::CapabilityError;
use wakeups::{Added, NewWakeUp};

/// The largest payload a wake-up takes.
pub const MAX_PAYLOAD: usize = 64 << 10;

impl Capabilities {
    /// Adds a wake-up due at `due_at` (Unix ms) with `payload`, within the
    /// plugin's limit, and tells the waker.
    async fn wake_at(&mut self, call: &str, due_at: i64, payload: Vec<u8>) -> Result<u64, CapabilityError> {
        self.check(Grant::Later)?;
        if payload.len() > MAX_PAYLOAD {
            return Err(CapabilityError::Failed(format!(
                "{call}: the payload is {}; at most {} is kept",
                ByteSize(payload.len() as u64),
                ByteSize(MAX_PAYLOAD as u64)
            )));
        }
        let limit = self.config.later_pending;
        let wake_up = NewWakeUp {
            plugin: self.config.name.to_string(),
            due_at,
            payload,
            run: self.context.run.map(|run| run.id),
        };
        match wakeups::add(&self.services.db, wake_up, limit).await {
            Ok(Added::Id(id)) => {
                self.services.wakeups.notify_one();
                Ok(id as u64)
            }
            Ok(Added::OverLimit) => Err(CapabilityError::OverBudget(format!(
                "{call}: plugin `{}` already has {limit} wake-ups waiting, its \
                 [plugins.{}.later] max_pending; cancel one or raise it",
                self.config.name, self.config.name
            ))),
            Err(e) => Err(self.failed(call, e)),
        }
    }
}

impl Host for Capabilities {
    async fn at(&mut self, at: i64, payload: Vec<u8>) -> wasmtime::Result<Result<u64, CapabilityError>> {
        Ok(self.wake_at("later.at", at, payload).await)
    }

    async fn after(
        &mut self,
        milliseconds: u64,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<u64, CapabilityError>> {
        let due_at = Utc::now()
            .timestamp_millis()
            .saturating_add(i64::try_from(milliseconds).unwrap_or(i64::MAX));
        Ok(self.wake_at("later.after", due_at, payload).await)
    }

    async fn cancel(&mut self, id: u64) -> wasmtime::Result<Result<bool, CapabilityError>> {
        if let Err(denied) = self.check(Grant::Later) {
            return Ok(Err(denied));
        }
        let Ok(id) = i64::try_from(id) else {
            return Ok(Ok(false));
        };
        let plugin = self.config.name.to_string();
        Ok(wakeups::cancel(&self.services.db, &plugin, id)
            .await
            .map_err(|e| self.failed("later.cancel", e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::for_test;
    use crate::db::Database;

    #[tokio::test]
    async fn a_wake_up_is_kept_until_cancelled_and_the_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let mut caps = for_test(&db, "nudger", &[Grant::Later]);
        caps.config = std::sync::Arc::new(crate::config::PluginConfig {
            later_pending: 2,
            ..(*caps.config).clone()
        });
        let first = caps.after(60_000, b"one".to_vec()).await.unwrap().unwrap();
        let second = caps.at(0, b"two".to_vec()).await.unwrap().unwrap();
        assert_ne!(first, second);
        let over = caps.after(1, Vec::new()).await.unwrap().unwrap_err();
        assert!(
            matches!(&over, CapabilityError::OverBudget(why) if why.contains("already has 2 wake-ups waiting")),
            "{over:?}"
        );
        assert!(caps.cancel(first).await.unwrap().unwrap());
        assert!(!caps.cancel(first).await.unwrap().unwrap(), "cancelled once");
        // Room again, for one.
        caps.after(1, Vec::new()).await.unwrap().unwrap();
        let pending = wakeups::pending(&db).await.unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].payload_bytes, 3, "the one due first: `two`");
        // Another plugin cannot cancel it.
        let mut other = for_test(&db, "other", &[Grant::Later]);
        assert!(!other.cancel(second).await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn without_the_grant_or_over_64_kib_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let mut denied = for_test(&db, "p", &[]);
        let error = denied.after(1, Vec::new()).await.unwrap().unwrap_err();
        assert!(matches!(error, CapabilityError::Denied(_)), "{error:?}");
        let mut caps = for_test(&db, "p", &[Grant::Later]);
        let error = caps
            .after(1, vec![0; MAX_PAYLOAD + 1])
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&error, CapabilityError::Failed(why) if why.contains("at most 64KiB")),
            "{error:?}"
        );
        assert!(wakeups::pending(&db).await.unwrap().is_empty());
    }
}
