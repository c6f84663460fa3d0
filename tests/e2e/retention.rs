//! `[retention]` and `mission db`: old records pruned, recent ones kept,
//! the file compacted, and the sizes shown table by table.

use crate::support::{guest, text, PluginSpec, Setup};

const DAY_MS: i64 = 86_400_000;

#[test]
fn db_compact_prunes_what_retention_no_longer_keeps() {
    let setup = Setup::new();
    setup.config_with(
        "[retention]\nruns = \"30d\"\nrun_output = \"2d\"\n",
        vec![PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")],
    );
    // A real run now, then 2,000 runs from 60 days ago with output, and
    // 2,000 from 5 days ago.
    let (ok, record) = setup.run_json("briefing");
    assert!(ok, "{record}");
    let db = rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let output = "x".repeat(2000);
    for (days, count) in [(60, 2000), (5, 2000)] {
        let tx = db.unchecked_transaction().unwrap();
        for _ in 0..count {
            let at = now - days * DAY_MS;
            tx.execute(
                "INSERT INTO runs (plugin, trigger, scheduled_at, attempt, started_at, finished_at, outcome)
                 VALUES ('briefing', 'manual', ?1, 1, ?1, ?1, 'succeeded')",
                [at],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO run_outputs (run_id, output) VALUES (last_insert_rowid(), ?1)",
                [&output],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    drop(db);

    let output = setup.mission(&["db", "--compact", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["pruned"]["runs"], 2000, "{report}");
    assert_eq!(report["pruned"]["run_outputs"], 4000, "{report}");
    let before =
        report["before"]["file_bytes"].as_u64().unwrap() + report["before"]["wal_bytes"].as_u64().unwrap();
    let after =
        report["after"]["file_bytes"].as_u64().unwrap() + report["after"]["wal_bytes"].as_u64().unwrap();
    assert!(after * 3 < before, "{before} -> {after} bytes");
    let rows = |table: &str| {
        report["after"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .map(|t| t["rows"].as_u64().unwrap())
    };
    // The recent runs and the real one stay; only the real one's output does.
    assert_eq!(rows("runs"), Some(2001));
    assert_eq!(
        rows("run_outputs").unwrap_or(0),
        u64::from(!record["output"].as_str().unwrap().is_empty())
    );

    // The real run is still there, whole.
    let output = setup.mission(&["runs", "--json", "--limit", "5000"]);
    let (stdout, _) = text(&output);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let real = runs.iter().find(|r| r["id"] == record["id"]).unwrap();
    assert_eq!(real, &record);

    let output = setup.mission(&["db"]);
    let (stdout, _) = text(&output);
    let runs_line = stdout.lines().find(|l| l.starts_with("runs ")).unwrap();
    assert!(
        runs_line.contains("2001") && runs_line.ends_with("30d (output 2d)"),
        "{runs_line}"
    );
}

#[test]
fn a_retention_period_too_short_is_named() {
    let setup = Setup::new();
    setup.config_with("[retention]\nclaude_calls = \"7d\"\n", vec![]);
    let output = setup.mission(&["db"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("mission.toml: retention.claude_calls: must be at least 31d"),
        "{stderr}"
    );
}

#[test]
fn compiled_code_no_plugin_uses_is_swept_once_unused_for_its_period() {
    let setup = Setup::new();
    setup.own_compile_cache();
    let config = |wasm: &str| {
        setup.config_with(
            "[retention]\ncompile_cache = \"3d\"\n",
            vec![PluginSpec::task("briefing", guest(wasm)).with("grants = [\"state\"]")],
        );
    };
    // A run of one build, then of another: both compiled into the cache.
    config("briefing");
    assert!(setup.run_json("briefing").0);
    let cache = setup.dir.path().join("data/cache");
    let entries = || -> Vec<std::path::PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        entries
    };
    let old_build = entries();
    assert_eq!(old_build.len(), 1, "{old_build:?}");
    config("feed_digest");
    setup.run_json("briefing");
    assert_eq!(entries().len(), 2);
    let age = |days: u64| {
        for entry in entries() {
            let file = std::fs::File::options().write(true).open(entry).unwrap();
            let when = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
            file.set_modified(when).unwrap();
        }
    };

    // Two days unused: within the period, both stay.
    age(2);
    let output = setup.mission(&["db", "--compact", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["swept"]["files"], 0, "{report}");
    assert_eq!(report["after"]["compile_cache"]["files"], 2, "{report}");

    // Past it: the old build goes, the configured one stays whatever its age.
    age(4);
    let output = setup.mission(&["db", "--compact"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("swept 1 file of compiled code no plugin uses"),
        "{stdout}"
    );
    assert!(
        stdout.contains("data/cache: 1 file,") && stdout.contains("goes after 3d unused"),
        "{stdout}"
    );
    let left = entries();
    assert_eq!(left.len(), 1);
    assert!(
        !old_build.contains(&left[0]),
        "the configured build's code was swept"
    );
}
