//! `mission:plugin/history`: conversation history per plugin, in the
//! `history` table. Needs the `history` grant. The chat path also records
//! each incoming message and reply through [`record_exchange`].

use super::Capabilities;
use crate::config::{Grant, PluginName};
use crate::db::retention::{period, Rule};
use crate::db::Database;
use crate::wasm::bindings::task::mission::plugin::history::{Entry, Host, Role};
use crate::wasm::bindings::CapabilityError;

/// The most entries one `read` returns, whatever the plugin asks for.
const MAX_READ: u32 = 1000;
/// The longest entry stored.
const MAX_TEXT_BYTES: usize = 256 << 10;

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// Appends one exchange to `plugin`'s `conversation`: the user's `message`
/// and, if the plugin answered, its `reply`. Runs on the caller's
/// transaction, so the exchange commits together with what else the caller
/// writes (the bot's stored reply).
pub fn record_exchange(
    transaction: &rusqlite::Transaction<'_>,
    plugin: &PluginName,
    conversation: &str,
    message: &str,
    reply: Option<&str>,
) -> rusqlite::Result<()> {
    insert(transaction, plugin, conversation, Role::User, message)?;
    if let Some(reply) = reply {
        insert(transaction, plugin, conversation, Role::Assistant, reply)?;
    }
    Ok(())
}

/// Appends one entry to `plugin`'s `conversation`, dated now.
fn insert(
    connection: &rusqlite::Connection,
    plugin: &PluginName,
    conversation: &str,
    role: Role,
    text: &str,
) -> rusqlite::Result<()> {
    let at = chrono::Utc::now().timestamp_millis();
    connection
        .prepare_cached(
            "INSERT INTO history (plugin, conversation, role, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute((plugin.as_str(), conversation, role_name(role), text, at))
        .map(drop)
}

/// Forgets every entry of `plugin`'s `conversation` (`/reset`).
pub async fn forget(db: &Database, plugin: &PluginName, conversation: &str) -> anyhow::Result<()> {
    let (plugin, conversation) = (plugin.to_string(), conversation.to_owned());
    db.call(move |c| {
        c.execute(
            "DELETE FROM history WHERE plugin = ?1 AND conversation = ?2",
            (plugin, conversation),
        )
    })
    .await
    .map(drop)
}

impl Host for Capabilities {
    async fn read(
        &mut self,
        conversation: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<Entry>, CapabilityError>> {
        if let Err(denied) = self.check(Grant::History) {
            return Ok(Err(denied));
        }
        let plugin = self.config.name.to_string();
        let limit = limit
            .min(MAX_READ)
            .min(self.config.history.max_exchanges.saturating_mul(2));
        let ttl = chrono::TimeDelta::from_std(self.config.history.ttl).unwrap_or(chrono::TimeDelta::MAX);
        let oldest = chrono::Utc::now()
            .checked_sub_signed(ttl)
            .map_or(i64::MIN, |t| t.timestamp_millis());
        let entries = self
            .services
            .db
            .call(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT role, text, at FROM (
                         SELECT id, role, text, at FROM history
                         WHERE plugin = ?1 AND conversation = ?2 AND at >= ?4
                         ORDER BY id DESC LIMIT ?3
                     ) ORDER BY id",
                )?;
                let rows = statement.query_map((plugin, conversation, limit, oldest), |row| {
                    let role: String = row.get(0)?;
                    Ok(Entry {
                        role: if role == "user" {
                            Role::User
                        } else {
                            Role::Assistant
                        },
                        text: row.get(1)?,
                        at: row.get(2)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await;
        if let Ok(entries) = &entries {
            self.stats.history_given += entries.len() as u64;
        }
        Ok(entries.map_err(|e| self.failed("history.read", e)))
    }

    async fn append(
        &mut self,
        conversation: String,
        role: Role,
        text: String,
    ) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::History) {
            return Ok(Err(denied));
        }
        if text.len() > MAX_TEXT_BYTES {
            return Ok(Err(CapabilityError::Failed(format!(
                "history.append: an entry is at most {MAX_TEXT_BYTES} bytes"
            ))));
        }
        let plugin = self.config.name.clone();
        let result = self
            .services
            .db
            .call(move |c| insert(c, &plugin, &conversation, role, &text))
            .await;
        Ok(result.map_err(|e| self.failed("history.append", e)))
    }

    async fn clear(&mut self, conversation: String) -> wasmtime::Result<Result<(), CapabilityError>> {
        if let Err(denied) = self.check(Grant::History) {
            return Ok(Err(denied));
        }
        let result = forget(&self.services.db, &self.config.name, &conversation).await;
        Ok(result.map_err(|e| self.failed("history.clear", e)))
    }
}

/// How history goes: after `[retention] history`, or the longest TTL a
/// plugin is given if that is longer.
pub const RETENTION: &[Rule] = &[Rule {
    table: "history",
    kind: "history",
    delete: "DELETE FROM history WHERE id IN (SELECT id FROM history WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.history,
    kept: |p| period(p.history),
}];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::for_test;
    use crate::config::HistoryPolicy;

    #[tokio::test]
    async fn reads_the_last_entries_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut chat = for_test(&db, "chat", &[Grant::History]);
        for (role, text) in [
            (Role::User, "one"),
            (Role::Assistant, "two"),
            (Role::User, "three"),
        ] {
            chat.append("42".into(), role, text.into())
                .await
                .unwrap()
                .unwrap();
        }
        let entries = chat.read("42".into(), 2).await.unwrap().unwrap();
        let texts: Vec<_> = entries.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["two", "three"]);
        assert!(matches!(entries[1].role, Role::User));
        assert!(chat.read("other".into(), 10).await.unwrap().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_plugin_never_sees_another_plugins_history() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut chat = for_test(&db, "chat", &[Grant::History]);
        let mut spy = for_test(&db, "spy", &[Grant::History]);
        chat.append("42".into(), Role::User, "my secret".into())
            .await
            .unwrap()
            .unwrap();
        assert!(spy.read("42".into(), 100).await.unwrap().unwrap().is_empty());
        spy.clear("42".into()).await.unwrap().unwrap();
        assert_eq!(chat.read("42".into(), 100).await.unwrap().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn clear_forgets_one_conversation() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut chat = for_test(&db, "chat", &[Grant::History]);
        chat.append("1".into(), Role::User, "a".into())
            .await
            .unwrap()
            .unwrap();
        chat.append("2".into(), Role::User, "b".into())
            .await
            .unwrap()
            .unwrap();
        chat.clear("1".into()).await.unwrap().unwrap();
        assert!(chat.read("1".into(), 10).await.unwrap().unwrap().is_empty());
        assert_eq!(chat.read("2".into(), 10).await.unwrap().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn errors_when_history_is_not_granted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let mut plugin = for_test(&db, "p", &[Grant::State]);
        assert!(matches!(
            plugin.read("1".into(), 1).await.unwrap(),
            Err(CapabilityError::Denied(_))
        ));
    }

    #[tokio::test]
    async fn reads_at_most_the_policys_exchanges_and_nothing_older_than_its_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("db")).unwrap();
        let policy = HistoryPolicy {
            ttl: std::time::Duration::from_secs(3600),
            max_exchanges: 1,
        };
        let mut chat = for_test(&db, "chat", &[Grant::History]);
        std::sync::Arc::make_mut(&mut chat.config).history = policy;
        let two_hours_ago = chrono::Utc::now().timestamp_millis() - 2 * 3600 * 1000;
        db.call(move |c| {
            c.execute(
                "INSERT INTO history (plugin, conversation, role, text, at) VALUES ('chat', '1', 'user', 'stale', ?1)",
                [two_hours_ago],
            )
        })
        .await
        .unwrap();
        assert!(
            chat.read("1".into(), 100).await.unwrap().unwrap().is_empty(),
            "an entry past the TTL was returned"
        );
        for text in ["a", "b", "c"] {
            chat.append("1".into(), Role::User, text.into())
                .await
                .unwrap()
                .unwrap();
        }
        let texts: Vec<_> = chat
            .read("1".into(), 100)
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(texts, ["b", "c"]);
    }
}
