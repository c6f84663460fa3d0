//! `mission backup` and `mission restore` from outside: an archive taken
//! while the chat flows restores into a fresh folder whose host answers
//! with the history and runs it had; a backup killed mid-way leaves no
//! archive that looks whole; `[backup]` keeps the newest and tells a
//! failing `then`; a restore refuses a running host, a damaged archive and
//! a newer schema.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bot_host::{up, up_command, BotHost, ANNA};
use crate::fake_telegram::FakeTelegram;
use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

const CHAT: i64 = ANNA as i64;

fn echo() -> PluginSpec {
    PluginSpec::chat("echo", guest("echo_chat")).with("grants = [\"history\"]")
}

fn briefing() -> PluginSpec {
    PluginSpec::task("briefing", guest("briefing"))
        .with("grants = [\"state\"]\nconfig = { greeting = \"Hi\", recipient = \"Anna\" }")
}

/// The complete archives in `dir`, by name.
fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        name.starts_with("mission-") && name.ends_with(".tar.gz")
    });
    found.sort();
    found
}

fn backup_dir(setup: &Setup) -> PathBuf {
    setup.dir.path().join("data/backups")
}

/// How many user messages of the chat a database holds.
fn history_count(database: &Path) -> i64 {
    rusqlite::Connection::open(database)
        .unwrap()
        .query_row("SELECT count(*) FROM history WHERE role = 'user'", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// `mission restore` of `archive` into `into`.
fn restore(archive: &Path, into: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mission"))
        .arg("restore")
        .arg(archive)
        .arg("--into")
        .arg(into)
        .output()
        .unwrap()
}

#[test]
fn a_backup_taken_while_the_chat_flows_restores_with_the_history_and_runs_it_had() {
    let telegram = FakeTelegram::start();
    let bot = BotHost::on(&telegram)
        .handler("echo")
        .tables("[history]\nmax_exchanges = 100");
    let (setup, host) = bot.up(vec![echo(), briefing()]);
    setup.schedule("morning", "plugin = \"briefing\"\ncron = \"0 7 * * *\"");
    let ran = setup.mission(&["trigger", "morning"]);
    assert!(ran.status.success(), "{:?}", text(&ran));

    // 20 messages a second for three seconds, the backup once 20 are
    // answered.
    let (before, output, after) = std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..60 {
                telegram.send_text(CHAT, ANNA, &format!("order {i}"));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        telegram.wait_for_texts(CHAT, 20);
        let before = telegram.texts(CHAT).len();
        let output = setup.mission(&["backup", "--json"]);
        (before, output, telegram.texts(CHAT).len())
    });
    assert!(output.status.success(), "{:?}", text(&output));
    telegram.wait_for_texts(CHAT, 60);
    let taken: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let archive = PathBuf::from(taken["archive"].as_str().unwrap());
    assert!(
        before > 0 && before < 60,
        "the backup was taken while messages flowed ({before} answered)"
    );

    let fresh = tempfile::tempdir().unwrap();
    let restored = restore(&archive, fresh.path());
    assert!(restored.status.success(), "{:?}", text(&restored));
    let (said, _) = text(&restored);
    assert!(said.contains("Start it with: mission up --config"), "{said}");
    // The archive holds the chat as it stood at one moment in the flow.
    let kept = history_count(&fresh.path().join("data/mission.db"));
    assert!(
        kept >= before as i64 && kept <= after as i64 + 1,
        "{kept} messages kept; {before} answered before the backup, {after} after"
    );

    // The restored host answers with the history it had.
    let restored_setup = Setup { dir: fresh };
    let runs = restored_setup.mission(&["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["schedule"] == "morning" && r["outcome"] == "succeeded"),
        "{runs}"
    );
    // The same bot, now served by the restored host.
    drop(host);
    bot.write(&restored_setup, vec![echo(), briefing()]);
    let _restored_host = up(&restored_setup);
    // A message stored but not yet answered when the backup was taken is
    // answered again by the restored host; then the new one.
    telegram.send_text(CHAT, ANNA, "still there?");
    let answer = wait_for("the restored host's answer", Duration::from_secs(30), || {
        let texts = telegram.texts(CHAT);
        texts
            .iter()
            .find(|t| t.starts_with("User100 said: still there?"))
            .cloned()
            .ok_or(texts.len())
    });
    let now = history_count(&restored_setup.dir.path().join("data/mission.db"));
    assert!(now > kept, "{now} messages in its history now, {kept} restored");
    assert_eq!(
        answer,
        format!("User100 said: still there? (message {now} in this chat)")
    );
}

#[test]
fn a_backup_killed_mid_way_leaves_the_earlier_archives_and_none_that_looks_whole() {
    let setup = Setup::with_plugins(vec![briefing()]);
    let first = setup.mission(&["backup"]);
    assert!(first.status.success(), "{:?}", text(&first));
    let earlier = archives(&backup_dir(&setup));
    let earlier_bytes = std::fs::read(&earlier[0]).unwrap();
    // A database big enough (and incompressible) for the backup to take a
    // while: 32 MiB of plugin state.
    let database = setup.dir.path().join("data/mission.db");
    {
        let connection = rusqlite::Connection::open(&database).unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut noise = vec![0_u8; 1 << 20];
        for key in 0..32 {
            for byte in noise.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *byte = seed as u8;
            }
            connection
                .execute(
                    "INSERT INTO plugin_state (plugin, key, value) VALUES ('briefing', ?1, ?2)",
                    (format!("k{key}"), &noise),
                )
                .unwrap();
        }
    }
    let mut backup = setup.command(&["backup"]).spawn().unwrap();
    let partial = wait_for("the backup's partial files", Duration::from_secs(60), || {
        let partials: Vec<_> = std::fs::read_dir(backup_dir(&setup))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".mission-partial-"))
            .collect();
        if partials.is_empty() {
            Err(partials)
        } else {
            Ok(partials)
        }
    });
    backup.kill().unwrap();
    let status = backup.wait().unwrap();
    assert!(
        !status.success(),
        "the backup was killed mid-way, after {partial:?} appeared"
    );
    assert_eq!(
        archives(&backup_dir(&setup)),
        earlier,
        "no archive named as complete"
    );
    assert_eq!(std::fs::read(&earlier[0]).unwrap(), earlier_bytes);

    // The next backup clears what the killed one left, and completes.
    let next = setup.mission(&["backup"]);
    assert!(next.status.success(), "{:?}", text(&next));
    let left: Vec<_> = std::fs::read_dir(backup_dir(&setup))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let now = archives(&backup_dir(&setup));
    assert_eq!(now.len(), 2);
    let restored = restore(&now[1], &setup.dir.path().join("restored"));
    assert!(restored.status.success(), "{:?}", text(&restored));
}

#[test]
fn the_host_keeps_the_newest_archives_and_tells_a_failing_then() {
    let telegram = FakeTelegram::start();
    let setup = Setup::new();
    let offsite = setup.dir.path().join("offsite");
    std::fs::create_dir(&offsite).unwrap();
    let script = setup.file(
        "copy-off",
        format!(
            "#!/bin/sh\nenv > {0}/env\nif [ -n \"$FAIL\" ]; then echo 'no remote called offsite' >&2; exit 3; fi\ncp \"$1\" {0}/\n",
            offsite.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let tables = |fail: bool| {
        format!(
            "[alerts]\nchat = {CHAT}\n[backup]\nevery = \"1d\"\nkeep = 2\nthen = [\"./copy-off\"]\nthen_env = [{}]\n",
            if fail { "\"FAIL\"" } else { "\"KEPT\"" }
        )
    };
    BotHost::on(&telegram)
        .handler("echo")
        .tables(&tables(true))
        .write(&setup, vec![echo()]);
    // Three archives from last week: the host is a day late, so backs up at once.
    std::fs::create_dir_all(backup_dir(&setup)).unwrap();
    for day in 1..=3 {
        std::fs::write(
            backup_dir(&setup).join(format!("mission-2026110{day}T030000.000Z.tar.gz")),
            "old",
        )
        .unwrap();
    }
    let mut command = up_command(&setup);
    command
        .env("FAIL", "yes")
        .env("MISSION_TEST_SECRET", "not for then");
    let mut host = RunningHost::spawn(command);
    host.wait_for_log("telegram bot polling");
    let alert = telegram.wait_for_texts(CHAT, 1).remove(0);
    assert!(
        alert.starts_with("The backup's `then` (")
            && alert.contains("copy-off) exited 3: no remote called offsite; the archive "),
        "{alert}"
    );
    let kept = archives(&backup_dir(&setup));
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept[0].ends_with("mission-20261103T030000.000Z.tar.gz"),
        "{kept:?}"
    );
    assert!(alert.contains(&kept[1].display().to_string()), "{alert}");
    let env = std::fs::read_to_string(offsite.join("env")).unwrap();
    assert!(env.contains("FAIL=yes"), "{env}");
    assert!(
        !env.contains("MISSION_TEST_SECRET"),
        "then gets only the variables named: {env}"
    );
    drop(host);

    // `mission backup` keeps the newest too, and `then` copies it off.
    BotHost::on(&telegram)
        .handler("echo")
        .tables(&tables(false))
        .write(&setup, vec![echo()]);
    let output = setup.mission(&["backup"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let kept = archives(&backup_dir(&setup));
    assert_eq!(kept.len(), 2, "{kept:?}");
    let copied = offsite.join(kept[1].file_name().unwrap());
    assert_eq!(std::fs::read(&copied).unwrap(), std::fs::read(&kept[1]).unwrap());
}

/// `archive` with `name`'s content replaced, the manifest kept.
fn tampered(archive: &Path, name: &str, to: &Path) {
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(archive).unwrap(),
    ));
    let gzip = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
    let mut output = tar::Builder::new(gzip);
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if path == name {
            data = b"data_dir = \"elsewhere\"\n".to_vec();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        output.append_data(&mut header, &path, data.as_slice()).unwrap();
    }
    output.into_inner().unwrap().finish().unwrap();
}

/// `archive` as a newer `mission` would have written it: its database
/// (and manifest) one schema version on. The version this one knows.
fn from_a_newer_mission(archive: &Path, to: &Path) -> u32 {
    use sha2::Digest;
    let scratch = tempfile::tempdir().unwrap();
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(archive).unwrap(),
    ));
    let mut entries = Vec::new();
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        entries.push((path, data));
    }
    let mut known = 0;
    let (mut size, mut sha256) = (0, String::new());
    for (path, data) in entries.iter_mut() {
        if path == "database/mission.db" {
            let copy = scratch.path().join("mission.db");
            std::fs::write(&copy, &data).unwrap();
            let connection = rusqlite::Connection::open(&copy).unwrap();
            known = connection
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            connection.pragma_update(None, "user_version", known + 1).unwrap();
            drop(connection);
            *data = std::fs::read(&copy).unwrap();
            (size, sha256) = (data.len(), hex::encode(sha2::Sha256::digest(&data)));
        }
    }
    for (path, data) in entries.iter_mut() {
        if path == "manifest.json" {
            let mut manifest: serde_json::Value = serde_json::from_slice(data).unwrap();
            manifest["schema_version"] = (known + 1).into();
            for file in manifest["files"].as_array_mut().unwrap() {
                if file["path"] == "database/mission.db" {
                    file["size"] = size.into();
                    file["sha256"] = sha256.clone().into();
                }
            }
            *data = serde_json::to_vec(&manifest).unwrap();
        }
    }
    let gzip = flate2::write::GzEncoder::new(std::fs::File::create(to).unwrap(), flate2::Compression::fast());
    let mut output = tar::Builder::new(gzip);
    for (path, data) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        output.append_data(&mut header, path, data.as_slice()).unwrap();
    }
    output.into_inner().unwrap().finish().unwrap();
    known
}

#[test]
fn a_restore_refuses_a_running_host_a_damaged_archive_and_a_newer_schema() {
    let setup = Setup::with_plugins(vec![briefing()]);
    let output = setup.mission(&["backup", "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let taken: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let archive = PathBuf::from(taken["archive"].as_str().unwrap());

    let mut host = RunningHost::start(&setup);
    host.wait_for_log("mission control is up");
    let refused = restore(&archive, setup.dir.path());
    assert!(!refused.status.success());
    let (_, error) = text(&refused);
    assert!(
        error.contains(&format!("a host (pid {}) is running on ", host.pid()))
            && error.contains("stop it first"),
        "{error}"
    );
    drop(host);

    let damaged = setup.dir.path().join("damaged.tar.gz");
    tampered(&archive, "config/mission.toml", &damaged);
    let into = setup.dir.path().join("into");
    let refused = restore(&damaged, &into);
    assert!(!refused.status.success());
    let (_, error) = text(&refused);
    assert!(
        error.contains("damaged.tar.gz cannot be restored")
            && error.contains("`config/mission.toml` in it does not match its manifest"),
        "{error}"
    );
    assert!(!into.join("mission.toml").exists());

    let newer = setup.dir.path().join("newer.tar.gz");
    let version = from_a_newer_mission(&archive, &newer);
    let refused = restore(&newer, &into);
    assert!(!refused.status.success());
    let (_, error) = text(&refused);
    assert!(
        error.contains(&format!(
            "schema is version {}, newer than this mission knows (version {version})",
            version + 1
        )),
        "{error}"
    );
    // So does every command on such a database, by version: backing it up too.
    let database = setup.dir.path().join("data/mission.db");
    let connection = rusqlite::Connection::open(&database).unwrap();
    connection
        .pragma_update(None, "user_version", version + 1)
        .unwrap();
    drop(connection);
    let runs = setup.mission(&["backup"]);
    assert!(!runs.status.success());
    let (_, error) = text(&runs);
    assert!(error.contains("newer than this mission knows"), "{error}");
}
