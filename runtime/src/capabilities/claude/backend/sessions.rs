//! Sessions behind each plugin's session keys: for the CLI backends the
//! CLI's `session_id` (to `--resume`), for the API backend the transcript
//! of earlier exchanges (sent again as messages). Keys are scoped by plugin.

use std::time::Duration;

use chrono::Utc;

use crate::config::{HistoryPolicy, PluginName};
use crate::db::retention::{period, Rule};
use crate::db::Database;

/// The CLI session last used under `plugin`'s `key`.
pub(crate) async fn session_id(
    db: &Database,
    plugin: &PluginName,
    key: &str,
) -> anyhow::Result<Option<String>> {
    let (plugin, key) = (plugin.to_string(), key.to_owned());
    db.call(move |c| {
        c.query_row(
            "SELECT session_id FROM claude_sessions WHERE plugin = ?1 AND session_key = ?2",
            (plugin, key),
            |row| row.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
    })
    .await
}

/// Remembers `session_id` as `plugin`'s session under `key`.
pub(crate) async fn remember(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    session_id: &str,
) -> anyhow::Result<()> {
    let (plugin, key, id) = (plugin.to_string(), key.to_owned(), session_id.to_owned());
    let now = Utc::now().timestamp_millis();
    db.call(move |c| {
        c.execute(
            "INSERT INTO claude_sessions (plugin, session_key, session_id, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin, session_key) DO UPDATE SET session_id = ?3, updated_at = ?4",
            (plugin, key, id, now),
        )
    })
    .await
    .map(drop)
}

/// Forgets `plugin`'s session under `key`: its CLI session id and its
/// transcript. The next call with the key starts afresh.
pub(crate) async fn forget(db: &Database, plugin: &PluginName, key: &str) -> anyhow::Result<()> {
    let (plugin, key) = (plugin.to_string(), key.to_owned());
    db.call(move |c| {
        c.execute(
            "DELETE FROM claude_sessions WHERE plugin = ?1 AND session_key = ?2",
            (&plugin, &key),
        )?;
        c.execute(
            "DELETE FROM claude_transcripts WHERE plugin = ?1 AND session_key = ?2",
            (&plugin, &key),
        )
    })
    .await
    .map(drop)
}

/// One line of a transcript: who said it and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Turn {
    /// `user` or `assistant`, as the Messages API names them.
    pub role: String,
    /// The text.
    pub text: String,
}

/// The transcript of `plugin`'s session `key`, oldest first, cut to what
/// `policy` allows (its last exchanges within its time to live).
pub(crate) async fn transcript(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    policy: HistoryPolicy,
) -> anyhow::Result<Vec<Turn>> {
    let (plugin, key) = (plugin.to_string(), key.to_owned());
    let since = Utc::now().timestamp_millis() - millis(policy.ttl);
    let limit = i64::from(policy.max_exchanges) * 2;
    let mut turns = db
        .call(move |c| {
            let mut query = c.prepare_cached(
                "SELECT role, text FROM claude_transcripts
                 WHERE plugin = ?1 AND session_key = ?2 AND at >= ?3 ORDER BY id DESC LIMIT ?4",
            )?;
            let rows = query.query_map((plugin, key, since, limit), |row| {
                Ok(Turn {
                    role: row.get(0)?,
                    text: row.get(1)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    turns.reverse();
    // The API wants the first message from the user.
    let first_user = turns.iter().position(|t| t.role == "user").unwrap_or(turns.len());
    turns.drain(..first_user);
    Ok(turns)
}

/// One exchange of a conversation: what was asked and what Claude answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange<'a> {
    pub prompt: &'a str,
    pub answer: &'a str,
}

/// Appends one exchange to `plugin`'s transcript `key`, and drops what
/// `policy` would never send again (older than its time to live).
pub(crate) async fn append_exchange(
    db: &Database,
    plugin: &PluginName,
    key: &str,
    exchange: Exchange<'_>,
    policy: HistoryPolicy,
) -> anyhow::Result<()> {
    let (plugin, key) = (plugin.to_string(), key.to_owned());
    let (prompt, answer) = (exchange.prompt.to_owned(), exchange.answer.to_owned());
    let now = Utc::now().timestamp_millis();
    let expired = now - millis(policy.ttl);
    db.call(move |c| {
        let transaction = c.transaction()?;
        transaction.execute(
            "DELETE FROM claude_transcripts WHERE plugin = ?1 AND session_key = ?2 AND at < ?3",
            (&plugin, &key, expired),
        )?;
        for (role, text) in [("user", prompt), ("assistant", answer)] {
            transaction.execute(
                "INSERT INTO claude_transcripts (plugin, session_key, role, text, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                (&plugin, &key, role, text, now),
            )?;
        }
        transaction.commit()
    })
    .await
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How the API backend's transcripts go: as history does.
pub const RETENTION: &[Rule] = &[Rule {
    table: "claude_transcripts",
    kind: "transcripts",
    delete: "DELETE FROM claude_transcripts WHERE id IN
                 (SELECT id FROM claude_transcripts WHERE at < ?1 LIMIT ?2)",
    keep: |p| p.history,
    kept: |p| period(p.history),
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_and_transcripts_are_per_plugin_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("m.db")).unwrap();
        let (a, b) = (PluginName::parse("a").unwrap(), PluginName::parse("b").unwrap());
        remember(&db, &a, "chat", "11111111-1111-1111-1111-111111111111")
            .await
            .unwrap();
        assert!(session_id(&db, &b, "chat").await.unwrap().is_none());
        assert_eq!(
            session_id(&db, &a, "chat").await.unwrap().as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        let policy = HistoryPolicy {
            ttl: Duration::from_secs(3600),
            max_exchanges: 2,
        };
        for n in 1..=3 {
            let (prompt, answer) = (format!("q{n}"), format!("a{n}"));
            let exchange = Exchange {
                prompt: &prompt,
                answer: &answer,
            };
            append_exchange(&db, &a, "chat", exchange, policy).await.unwrap();
        }
        let texts: Vec<_> = transcript(&db, &a, "chat", policy)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(texts, ["q2", "a2", "q3", "a3"]);
        assert!(transcript(&db, &b, "chat", policy).await.unwrap().is_empty());
        // Rows past the time to live are dropped on the next append.
        let two_hours_ago = Utc::now().timestamp_millis() - 2 * 3600 * 1000;
        let count = || {
            let db = db.clone();
            async move {
                db.call(|c| {
                    c.query_row("SELECT COUNT(*) FROM claude_transcripts", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .await
                .unwrap()
            }
        };
        db.call(move |c| c.execute("UPDATE claude_transcripts SET at = ?1", [two_hours_ago]))
            .await
            .unwrap();
        assert_eq!(count().await, 6);
        let exchange = Exchange {
            prompt: "q4",
            answer: "a4",
        };
        append_exchange(&db, &a, "chat", exchange, policy).await.unwrap();
        assert_eq!(count().await, 2);
        forget(&db, &a, "chat").await.unwrap();
        assert!(session_id(&db, &a, "chat").await.unwrap().is_none());
        assert!(transcript(&db, &a, "chat", policy).await.unwrap().is_empty());
    }
}
