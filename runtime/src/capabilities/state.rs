//! `mission:plugin/state`: a key-value store private to each plugin, in the
//! `plugin_state` table. Needs the `state` grant. What a plugin may keep is
//! capped (`state_bytes`, `state_keys`): a `set` past either is answered
//! `over-budget` and stores nothing.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::Capabilities;
use crate::config::units::ByteSize;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::state::Host;
use crate::wasm::bindings::CapabilityError;

/// The longest key accepted.
const MAX_KEY_BYTES: usize = 256;
/// The largest value accepted.
const MAX_VALUE_BYTES: usize = 1 << 20;

/// What one plugin may keep in `state`.
#[derive(Debug, Clone, Copy)]
pub struct StateQuota {
    /// Keys.
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

/// A `set` refused, with what the plugin keeps now.
struct Refused {
    keys: u64,
    bytes: u64,
}

/// The keys and bytes `plugin` keeps in `state` now.
fn usage(c: &rusqlite::Connection, plugin: &str) -> rusqlite::Result<(u64, u64)> {
    Ok(
        c.prepare_cached("SELECT keys, bytes FROM plugin_state_usage WHERE plugin = ?1")?
            .query_row([plugin], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?
            .unwrap_or((0, 0)),
    )
}

impl Host for Capabilities {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, CapabilityError>> {
        if let Err(denied) = self.check(Grant::State) {
            return Ok(Err(denied));
        }
        let plugin = self.config.name.to_string();
        let value = self
            .services
            .db
            .call(move |c| {
                c.prepare_cached("SELECT value FROM plugin_state WHERE plugin = ?1 AND key = ?2")?
                    .query_row((plugin, key), |row| row.get(0))
                    .optional()
            })
            .await;
        Ok(value.map_err(|e| self.failed("state.get", e)))
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::State) {
            return Ok(Err(denied));
        }
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Ok(Err(CapabilityError::Failed(format!(
                "state.set: keys are at most {MAX_KEY_BYTES} bytes and values at most {MAX_VALUE_BYTES} bytes"
            ))));
        }
        let plugin = self.config.name.to_string();
        let quota = StateQuota {
            keys: self.config.limits.state_keys,
            bytes: self.config.limits.state_bytes,
        };
        let result = self
            .services
            .db
            .call(move |c| {
                let transaction = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (keys, bytes) = usage(&transaction, &plugin)?;
                let old: Option<u64> = transaction
                    .prepare_cached(
                        "SELECT octet_length(key) + octet_length(value) FROM plugin_state
                         WHERE plugin = ?1 AND key = ?2",
                    )?
                    .query_row((&plugin, &key), |row| row.get(0))
                    .optional()?;
                let keys_after = keys + u64::from(old.is_none());
                let bytes_after = bytes - old.unwrap_or(0) + (key.len() + value.len()) as u64;
                if keys_after > quota.keys || bytes_after > quota.bytes {
                    return Ok(Err(Refused { keys, bytes }));
                }
                transaction
                    .prepare_cached(
                        "INSERT INTO plugin_state (plugin, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                    )?
                    .execute((plugin, key, value))?;
                transaction.commit()?;
                Ok(Ok(()))
            })
            .await;
        Ok(match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Refused { keys, bytes })) => {
                self.output.caused(
                    tracing::Level::WARN,
                    "refused state writes",
                    format_args!(
                        "state.set refused: over the plugin's state quota ({keys} keys, {bytes} bytes)"
                    ),
                );
                Err(CapabilityError::OverBudget(format!(
                    "state.set: plugin `{}` keeps {keys} keys in {} and may keep {} keys in {} \
                     (state_keys, state_bytes): delete some first",
                    self.config.name,
                    ByteSize(bytes),
                    quota.keys,
                    ByteSize(quota.bytes)
                )))
            }
            Err(e) => Err(self.failed("state.set", e)),
        })
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::State) {
            return Ok(Err(denied));
        }
        let plugin = self.config.name.to_string();
        let result = self
            .services
            .db
            .call(move |c| {
                c.prepare_cached("DELETE FROM plugin_state WHERE plugin = ?1 AND key = ?2")?
                    .execute((plugin, key))
            })
            .await;
        Ok(result.map(drop).map_err(|e| self.failed("state.delete", e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::for_test;
    use crate::db::Database;

    #[tokio::test]
    async fn values_are_private_to_each_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut alice = for_test(&db, "alice", &[Grant::State]);
        let mut bob = for_test(&db, "bob", &[Grant::State]);
        alice
            .set("token".into(), "a-secret".into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            alice.get("token".into()).await.unwrap().unwrap().as_deref(),
            Some("a-secret")
        );
        assert_eq!(bob.get("token".into()).await.unwrap().unwrap(), None);
        bob.delete("token".into()).await.unwrap().unwrap();
        assert_eq!(
            alice.get("token".into()).await.unwrap().unwrap().as_deref(),
            Some("a-secret")
        );
        alice.delete("token".into()).await.unwrap().unwrap();
        assert_eq!(alice.get("token".into()).await.unwrap().unwrap(), None);
    }

    #[tokio::test]
    async fn errors_when_state_is_not_granted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut plugin = for_test(&db, "nosy", &[Grant::History]);
        let error = plugin.get("k".into()).await.unwrap().unwrap_err();
        assert!(
            matches!(error, CapabilityError::Denied(ref why) if why.contains("`state` grant")),
            "{error:?}"
        );
        assert!(matches!(
            plugin.set("k".into(), "v".into()).await.unwrap(),
            Err(CapabilityError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn a_plugin_over_its_quota_is_refused_and_keeps_what_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut filler = for_test(&db, "filler", &[Grant::State]);
        let limits = &mut std::sync::Arc::make_mut(&mut filler.config).limits;
        (limits.state_keys, limits.state_bytes) = (3, 100);
        for key in ["a", "b", "c"] {
            filler.set(key.into(), "x".repeat(20)).await.unwrap().unwrap();
        }
        // A fourth key: over the key count.
        let error = filler.set("d".into(), "x".into()).await.unwrap().unwrap_err();
        assert!(
            matches!(error, CapabilityError::OverBudget(ref why) if why.contains("keeps 3 keys in 63B and may keep 3 keys in 100B")),
            "{error:?}"
        );
        // Replacing a value counts the new size, not both.
        filler.set("a".into(), "y".repeat(57)).await.unwrap().unwrap();
        let error = filler.set("a".into(), "y".repeat(58)).await.unwrap().unwrap_err();
        assert!(matches!(error, CapabilityError::OverBudget(_)), "{error:?}");
        assert_eq!(
            filler.get("a".into()).await.unwrap().unwrap(),
            Some("y".repeat(57))
        );
        // Deleting makes room; another plugin's quota is its own.
        filler.delete("b".into()).await.unwrap().unwrap();
        filler.set("d".into(), "x".into()).await.unwrap().unwrap();
        let usage = db.call(|c| usage(c, "filler")).await.unwrap();
        assert_eq!(usage, (3, 58 + 21 + 2));
        let mut other = for_test(&db, "other", &[Grant::State]);
        other.set("a".into(), "x".repeat(90)).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn refuses_oversized_values_without_storing_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut plugin = for_test(&db, "big", &[Grant::State]);
        let error = plugin
            .set("k".into(), "x".repeat(MAX_VALUE_BYTES + 1))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(error, CapabilityError::Failed(_)));
        assert_eq!(plugin.get("k".into()).await.unwrap().unwrap(), None);
    }
}
