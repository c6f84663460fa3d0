//! `mission:plugin/state`: a key-value store private to each plugin, in the
//! `plugin_state` table. Needs the `state` grant.

use rusqlite::OptionalExtension;

use super::Capabilities;
use crate::config::Grant;
use crate::wasm::bindings::task::mission::plugin::state::Host;
use crate::wasm::bindings::CapabilityError;

/// The longest key accepted.
const MAX_KEY_BYTES: usize = 256;
/// The largest value accepted.
const MAX_VALUE_BYTES: usize = 1 << 20;

impl Host for Capabilities {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, CapabilityError>> {
        if let Err(denied) = self.check(Grant::State) {
            return Ok(Err(denied));
        }
        let plugin = self.plugin.to_string();
        let value = self
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT value FROM plugin_state WHERE plugin = ?1 AND key = ?2",
                    (plugin, key),
                    |row| row.get(0),
                )
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
        let plugin = self.plugin.to_string();
        let result = self
            .db
            .call(move |c| {
                c.execute(
                    "INSERT INTO plugin_state (plugin, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                    (plugin, key, value),
                )
            })
            .await;
        Ok(result.map(drop).map_err(|e| self.failed("state.set", e)))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::State) {
            return Ok(Err(denied));
        }
        let plugin = self.plugin.to_string();
        let result = self
            .db
            .call(move |c| {
                c.execute(
                    "DELETE FROM plugin_state WHERE plugin = ?1 AND key = ?2",
                    (plugin, key),
                )
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
