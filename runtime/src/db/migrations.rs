//! The schema's history: one migration per version, in order, applied by
//! `PRAGMA user_version` (`Database::open`). Each owner's tables are
//! created and changed here, since SQLite has one version for the file:
//! append a migration for a new table; never edit a shipped one.

/// The schema, one entry per version; entry `i` takes a database from
/// version `i` to `i + 1`. Append only: never edit a shipped migration.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: run records, plugin state, conversation history.
    "CREATE TABLE runs (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         trigger TEXT NOT NULL,
         scheduled_at INTEGER NOT NULL,
         attempt INTEGER NOT NULL,
         started_at INTEGER NOT NULL,
         finished_at INTEGER,
         outcome TEXT NOT NULL,
         error TEXT,
         summary TEXT,
         output TEXT NOT NULL DEFAULT '',
         output_bytes INTEGER NOT NULL DEFAULT 0,
         output_truncated INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX runs_by_plugin ON runs (plugin, started_at);
     CREATE TABLE plugin_state (
         plugin TEXT NOT NULL,
         key TEXT NOT NULL,
         value TEXT NOT NULL,
         PRIMARY KEY (plugin, key)
     ) WITHOUT ROWID;
     CREATE TABLE history (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         conversation TEXT NOT NULL,
         role TEXT NOT NULL,
         text TEXT NOT NULL,
         at INTEGER NOT NULL
     );
     CREATE INDEX history_by_conversation ON history (plugin, conversation, id);",
    // 2: schedules: runs know their schedule; per-schedule state; requests
    // from the CLI to a running host; the host's heartbeat.
    "ALTER TABLE runs ADD COLUMN schedule TEXT;
     ALTER TABLE runs ADD COLUMN request INTEGER;
     CREATE INDEX runs_by_schedule ON runs (schedule, id);
     CREATE TABLE schedule_state (
         schedule TEXT PRIMARY KEY,
         last_due_at INTEGER,
         paused INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE requests (
         id INTEGER PRIMARY KEY,
         kind TEXT NOT NULL,
         target TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         taken_at INTEGER,
         done_at INTEGER
     );
     CREATE TABLE host (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         pid INTEGER NOT NULL,
         started_at INTEGER NOT NULL,
         heartbeat_at INTEGER NOT NULL
     );",
    // 3: every load and reload of a plugin, and its outcome.
    "CREATE TABLE plugin_loads (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         at INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         old_hash TEXT,
         new_hash TEXT,
         compile_ms REAL,
         error TEXT
     );
     CREATE INDEX plugin_loads_by_plugin ON plugin_loads (plugin, id);",
    // 4: Telegram updates, stored before their offset is confirmed, and
    // marked when handled.
    "CREATE TABLE telegram_updates (
         update_id INTEGER PRIMARY KEY,
         chat_id INTEGER,
         sender_id INTEGER,
         sender_name TEXT NOT NULL DEFAULT '',
         text TEXT,
         sent_at INTEGER NOT NULL,
         received_at INTEGER NOT NULL,
         handled_at INTEGER,
         outcome TEXT
     );
     CREATE INDEX telegram_unhandled ON telegram_updates (handled_at, update_id);",
    // 5: Claude: the cost ledger (one row per call, spent or refused), the
    // CLI session behind each plugin's session key, and the API backend's
    // transcripts.
    "CREATE TABLE claude_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         backend TEXT NOT NULL,
         model TEXT,
         session_key TEXT,
         input_tokens INTEGER NOT NULL,
         output_tokens INTEGER NOT NULL,
         cache_write_tokens INTEGER NOT NULL,
         cache_read_tokens INTEGER NOT NULL,
         cost_usd REAL NOT NULL,
         turns INTEGER NOT NULL,
         duration_ms INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT
     );
     CREATE INDEX claude_calls_by_time ON claude_calls (at);
     CREATE TABLE claude_sessions (
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         session_id TEXT NOT NULL,
         updated_at INTEGER NOT NULL,
         PRIMARY KEY (plugin, session_key)
     ) WITHOUT ROWID;
     CREATE TABLE claude_transcripts (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         role TEXT NOT NULL,
         text TEXT NOT NULL,
         at INTEGER NOT NULL
     );
     CREATE INDEX claude_transcripts_by_key ON claude_transcripts (plugin, session_key, id);",
    // 6: a chat plugin's reply, stored before it is sent, so a restart sends
    // it again rather than asking the plugin (and Claude) twice.
    "ALTER TABLE telegram_updates ADD COLUMN reply TEXT;
     ALTER TABLE telegram_updates ADD COLUMN reply_mode TEXT;",
    // 7: the process that runs each run, so a host starting up interrupts
    // only runs whose process is gone (not a `mission run` still going).
    "ALTER TABLE runs ADD COLUMN pid INTEGER;",
    // 8: every outbound HTTP request of a plugin, sent or refused.
    "CREATE TABLE http_requests (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         run INTEGER,
         chat INTEGER,
         method TEXT NOT NULL,
         origin TEXT NOT NULL,
         path TEXT NOT NULL,
         status INTEGER,
         bytes_out INTEGER NOT NULL,
         bytes_in INTEGER NOT NULL,
         ms INTEGER NOT NULL,
         denied INTEGER NOT NULL,
         error TEXT
     );
     CREATE INDEX http_requests_by_plugin ON http_requests (plugin, id);",
    // 9: retention prunes by time: the time columns indexed; a run's output
    // in a table of its own, so dropping it frees whole pages rather than
    // leaving the run's pages half empty.
    "CREATE TABLE run_outputs (
         run_id INTEGER PRIMARY KEY,
         output TEXT NOT NULL
     );
     INSERT INTO run_outputs (run_id, output) SELECT id, output FROM runs WHERE output != '';
     ALTER TABLE runs DROP COLUMN output;
     CREATE INDEX runs_by_time ON runs (started_at);
     CREATE INDEX history_by_time ON history (at);
     CREATE INDEX claude_transcripts_by_time ON claude_transcripts (at);
     CREATE INDEX plugin_loads_by_time ON plugin_loads (at);
     CREATE INDEX http_requests_by_time ON http_requests (at);",
    // 10: tool uses asked about in the chat and each decision; tools a
    // person allowed for a whole conversation; every chat handler call
    // (live and shadow) measured; button presses among Telegram updates.
    "CREATE TABLE tool_approvals (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         session_key TEXT,
         chat_id INTEGER,
         tool TEXT NOT NULL,
         summary TEXT NOT NULL,
         asked_at INTEGER NOT NULL,
         message_id INTEGER,
         outcome TEXT NOT NULL,
         decided_at INTEGER,
         decided_by INTEGER,
         decided_by_name TEXT,
         reason TEXT
     );
     CREATE INDEX tool_approvals_by_time ON tool_approvals (asked_at);
     CREATE TABLE tool_allowances (
         plugin TEXT NOT NULL,
         session_key TEXT NOT NULL,
         tool TEXT NOT NULL,
         allowed_by INTEGER NOT NULL,
         allowed_at INTEGER NOT NULL,
         PRIMARY KEY (plugin, session_key, tool)
     );
     CREATE TABLE chat_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         update_id INTEGER,
         chat_id INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         role TEXT NOT NULL,
         latency_ms INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT,
         reply_chars INTEGER NOT NULL,
         claude_calls INTEGER NOT NULL,
         input_tokens INTEGER NOT NULL,
         output_tokens INTEGER NOT NULL,
         context_tokens INTEGER NOT NULL,
         cost_usd REAL NOT NULL,
         history_given INTEGER NOT NULL
     );
     CREATE INDEX chat_calls_by_time ON chat_calls (at);
     ALTER TABLE telegram_updates ADD COLUMN callback_id TEXT;
     ALTER TABLE telegram_updates ADD COLUMN callback_data TEXT;",
    // 11: messages the shadow handlers still owe an answer to, so a restart
    // hands them on rather than losing them from the pilot's figures.
    "ALTER TABLE telegram_updates ADD COLUMN shadows_owed INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX chat_calls_by_update ON chat_calls (update_id);",
    // 12: what each plugin keeps in `state`, kept by the database itself,
    // so a quota is checked without reading the values.
    "CREATE TABLE plugin_state_usage (
         plugin TEXT PRIMARY KEY,
         keys INTEGER NOT NULL,
         bytes INTEGER NOT NULL
     );
     INSERT INTO plugin_state_usage
         SELECT plugin, count(*), total(octet_length(key) + octet_length(value)) FROM plugin_state GROUP BY plugin;
     CREATE TRIGGER plugin_state_added AFTER INSERT ON plugin_state BEGIN
         INSERT INTO plugin_state_usage VALUES (NEW.plugin, 1, octet_length(NEW.key) + octet_length(NEW.value))
             ON CONFLICT (plugin) DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;
     END;
     CREATE TRIGGER plugin_state_changed AFTER UPDATE OF value ON plugin_state BEGIN
         UPDATE plugin_state_usage SET bytes = bytes - octet_length(OLD.value) + octet_length(NEW.value)
             WHERE plugin = NEW.plugin;
     END;
     CREATE TRIGGER plugin_state_removed AFTER DELETE ON plugin_state BEGIN
         UPDATE plugin_state_usage SET keys = keys - 1, bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
             WHERE plugin = OLD.plugin;
     END;",
    // 13: webhook deliveries, each stored (and synced) before it is
    // acknowledged; a redelivery of the same id is recorded as a duplicate,
    // a refused request without its body. A run names its delivery.
    "CREATE TABLE webhook_deliveries (
         id INTEGER PRIMARY KEY,
         webhook TEXT NOT NULL,
         delivery_id TEXT NOT NULL,
         received_at INTEGER NOT NULL,
         status INTEGER NOT NULL,
         verified TEXT NOT NULL,
         state TEXT NOT NULL,
         method TEXT NOT NULL,
         path TEXT NOT NULL,
         query TEXT NOT NULL,
         headers TEXT,
         body BLOB,
         bytes INTEGER NOT NULL,
         ack_ms REAL,
         outcome TEXT,
         finished_at INTEGER
     );
     CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (webhook, delivery_id)
         WHERE state IN ('pending', 'done');
     CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (received_at);
     CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id) WHERE state = 'pending';
     ALTER TABLE runs ADD COLUMN delivery INTEGER;
     CREATE INDEX runs_by_delivery ON runs (delivery) WHERE delivery IS NOT NULL;",
    // 14: what a run wrote to the directories of its `files` grant.
    "ALTER TABLE runs ADD COLUMN files_written INTEGER NOT NULL DEFAULT 0;",
    // 15: what each watch saw of its directories after its last run, so the
    // changes since (the host running or down) are a difference of scans.
    "CREATE TABLE watch_state (
         watch TEXT PRIMARY KEY,
         seen_at INTEGER NOT NULL,
         files INTEGER NOT NULL,
         last_run INTEGER,
         runs INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE watch_files (
         watch TEXT NOT NULL,
         root TEXT NOT NULL,
         path TEXT NOT NULL,
         size INTEGER NOT NULL,
         mtime_ns INTEGER NOT NULL,
         PRIMARY KEY (watch, root, path)
     );",
    // 16: messages the host sends itself (alerts), kept until sent, and
    // each schedule's failure streak.
    "CREATE TABLE outbox (
         id INTEGER PRIMARY KEY,
         chat_id INTEGER NOT NULL,
         text TEXT NOT NULL,
         queued_at INTEGER NOT NULL,
         sent_at INTEGER
     );
     CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
     CREATE TABLE schedule_streaks (
         schedule TEXT PRIMARY KEY,
         failing_since INTEGER NOT NULL,
         failures INTEGER NOT NULL,
         alerted INTEGER NOT NULL
     );",
    // 17: the run a `mission rerun` repeats.
    "ALTER TABLE runs ADD COLUMN rerun_of INTEGER;",
    // 18: what an alert is about (its buttons act on it) and whether quiet
    // hours hold it; mutes; missed runs told; thresholds told.
    "ALTER TABLE outbox ADD COLUMN schedule TEXT;
     ALTER TABLE outbox ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE alert_mutes (
         schedule TEXT PRIMARY KEY,
         until INTEGER NOT NULL
     );
     CREATE TABLE schedule_misses (
         schedule TEXT NOT NULL,
         reason TEXT NOT NULL,
         told_at INTEGER NOT NULL,
         missed INTEGER NOT NULL,
         PRIMARY KEY (schedule, reason)
     );
     CREATE TABLE alerts_told (
         key TEXT NOT NULL,
         level INTEGER NOT NULL,
         at INTEGER NOT NULL,
         PRIMARY KEY (key, level)
     );",
    // 19: whether a Claude call drew from the Agent SDK credit.
    "ALTER TABLE claude_calls ADD COLUMN credit INTEGER NOT NULL DEFAULT 0;",
    // 20: the task run a tool approval holds up.
    "ALTER TABLE tool_approvals ADD COLUMN run INTEGER;
     CREATE INDEX tool_approvals_pending_by_run ON tool_approvals (run) WHERE outcome = 'pending';",
    // 21: the files of a Telegram message (JSON), downloaded when handled.
    "ALTER TABLE telegram_updates ADD COLUMN files TEXT;",
    // 22: the files sent with a stored reply (JSON), and the message that
    // showed Claude's text while it was written in a group, to remove if
    // the host died before the reply went out.
    "ALTER TABLE telegram_updates ADD COLUMN reply_files TEXT;
     ALTER TABLE telegram_updates ADD COLUMN preview_message INTEGER;",
    // 23: every call Claude made of a tools plugin's tool.
    "CREATE TABLE tool_calls (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         caller TEXT NOT NULL,
         plugin TEXT NOT NULL,
         tool TEXT NOT NULL,
         chat INTEGER,
         run INTEGER,
         plugin_hash TEXT,
         input_bytes INTEGER NOT NULL,
         output_bytes INTEGER NOT NULL,
         outcome TEXT NOT NULL,
         error TEXT,
         ms INTEGER NOT NULL
     );
     CREATE INDEX tool_calls_by_time ON tool_calls (at);",
    // 24: a tools plugin's calls with their input and result, where its
    // config says `record_contents = true`.
    "ALTER TABLE tool_calls ADD COLUMN input TEXT;
     ALTER TABLE tool_calls ADD COLUMN output TEXT;",
    // 25: the plugin a tools plugin's Claude call was made for (the one
    // whose Claude called the tool), whose budgets count it too.
    "ALTER TABLE claude_calls ADD COLUMN on_behalf_of TEXT;",
    // 26: the buttons under an alert (their names, space-separated: a
    // schedule's alert queued before had all three of them) and the run
    // its Details button shows.
    "ALTER TABLE outbox ADD COLUMN actions TEXT;
     ALTER TABLE outbox ADD COLUMN run INTEGER;
     UPDATE outbox SET actions = 'run pause mute' WHERE schedule IS NOT NULL;",
    // 27: requests refused to a webhook, counted per webhook, reason and
    // hour (`hour`: Unix ms of its start); only a sample of them is kept as
    // rows of `webhook_deliveries`.
    "CREATE TABLE webhook_refusals (
         webhook TEXT NOT NULL,
         reason TEXT NOT NULL,
         hour INTEGER NOT NULL,
         count INTEGER NOT NULL,
         last_at INTEGER NOT NULL,
         PRIMARY KEY (webhook, reason, hour)
     );
     CREATE INDEX webhook_refusals_by_hour ON webhook_refusals (hour);",
    // 28: a watch that is not watching (its directory gone): why, and since
    // when; both null while it watches.
    "ALTER TABLE watch_state ADD COLUMN broken TEXT;
     ALTER TABLE watch_state ADD COLUMN broken_since INTEGER;",
    // 29: wake-ups a plugin asked for with `later` (`state`: pending,
    // running, done, cancelled; ids never reused, so a plugin's `cancel`
    // never reaches a later one), and the wake-up a run was started for.
    "CREATE TABLE wakeups (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         plugin TEXT NOT NULL,
         due_at INTEGER NOT NULL,
         payload BLOB NOT NULL,
         created_at INTEGER NOT NULL,
         created_by_run INTEGER,
         state TEXT NOT NULL,
         started_at INTEGER,
         finished_at INTEGER,
         outcome TEXT
     );
     CREATE INDEX wakeups_waiting ON wakeups (due_at) WHERE state = 'pending';
     CREATE INDEX wakeups_waiting_by_plugin ON wakeups (plugin) WHERE state = 'pending';
     ALTER TABLE runs ADD COLUMN wakeup INTEGER;
     CREATE INDEX runs_by_wakeup ON runs (wakeup) WHERE wakeup IS NOT NULL;",
    // 30: runs that start runs: what a schedule's or a task plugin's
    // `after` starts (`kind`: schedule or plugin, and its name), queued
    // here in the transaction that records its parent's outcome (`state`:
    // pending, running, done), and the run whose end started a run.
    "CREATE TABLE follow_ups (
         id INTEGER PRIMARY KEY,
         parent_run INTEGER NOT NULL,
         kind TEXT NOT NULL,
         name TEXT NOT NULL,
         state TEXT NOT NULL,
         queued_at INTEGER NOT NULL,
         finished_at INTEGER,
         outcome TEXT,
         UNIQUE (parent_run, kind, name)
     );
     CREATE INDEX follow_ups_waiting ON follow_ups (state) WHERE state != 'done';
     ALTER TABLE runs ADD COLUMN parent_run INTEGER;
     CREATE INDEX runs_by_parent ON runs (parent_run) WHERE parent_run IS NOT NULL;",
    // 31: messages a plugin posted with buttons (`state`: open, pressed,
    // closed, expired), their buttons with the plugin's data, the presses
    // on them (`state`: pending, running, done), and the press a run was
    // started for.
    "CREATE TABLE posts (
         id INTEGER PRIMARY KEY,
         plugin TEXT NOT NULL,
         chat INTEGER NOT NULL,
         message_id INTEGER,
         text TEXT NOT NULL,
         html INTEGER NOT NULL,
         posted_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         state TEXT NOT NULL,
         pressed_by INTEGER,
         pressed_by_name TEXT,
         pressed_at INTEGER,
         pressed_label TEXT
     );
     CREATE INDEX posts_by_message ON posts (chat, message_id);
     CREATE TABLE post_buttons (
         post INTEGER NOT NULL,
         place TEXT NOT NULL,
         label TEXT NOT NULL,
         data BLOB NOT NULL,
         PRIMARY KEY (post, place)
     );
     CREATE TABLE presses (
         id INTEGER PRIMARY KEY,
         post INTEGER NOT NULL,
         plugin TEXT NOT NULL,
         chat INTEGER NOT NULL,
         message_id INTEGER NOT NULL,
         label TEXT NOT NULL,
         data BLOB NOT NULL,
         user_id INTEGER NOT NULL,
         user_name TEXT NOT NULL,
         pressed_at INTEGER NOT NULL,
         state TEXT NOT NULL,
         outcome TEXT
     );
     CREATE INDEX presses_waiting ON presses (state) WHERE state != 'done';
     ALTER TABLE runs ADD COLUMN press INTEGER;
     CREATE INDEX runs_by_press ON runs (press) WHERE press IS NOT NULL;",
    // 32: changes made through the host's own tools (a schedule created,
    // changed, deleted or brought back; a run started, a pause): the tool,
    // what it acted on, who pressed for it (none: allowed outright), for
    // whose Claude in which chat, and the text before and after.
    "CREATE TABLE changes (
         id INTEGER PRIMARY KEY,
         at INTEGER NOT NULL,
         tool TEXT NOT NULL,
         target TEXT NOT NULL,
         summary TEXT NOT NULL,
         caller TEXT NOT NULL,
         chat INTEGER,
         by_id INTEGER,
         by_name TEXT,
         before TEXT,
         after TEXT
     );
     CREATE INDEX changes_by_target ON changes (target, at);",
];
