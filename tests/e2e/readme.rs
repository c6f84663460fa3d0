//! The shipped example run the way README.md says: `mission up --config
//! mission.toml` from a directory laid out as the repository's root, the
//! shipped `mission.toml` as it is, and `claude` found on `PATH` (the fake).
//! The other tests hand the host absolute paths; these hand it the relative
//! ones a user does, so every path the host gives a program (the CLI's
//! `--mcp-config`, a voice note for the transcriber) must have been made
//! absolute, as those programs run in directories of their own.

use std::path::Path;
use std::process::Command;

use crate::bot_host::{polling, BotHost, TOKEN, TOKEN_ENV};
use crate::fake_telegram::{FakeFile, FakeTelegram};
use crate::support::{fake_claude, repo_root, text, Setup};

/// A directory laid out as the repository's root: the shipped
/// `mission.toml` with `more` appended (its fixed ports made free, so tests
/// and a running `./dev up` do not collide), `plugins/` and `schedules/`
/// linked to the repository's, a data directory of its own, and a `bin/`
/// holding the fake as `claude`.
fn checkout(more: &str) -> Setup {
    let setup = Setup::new();
    let root = repo_root();
    let shipped = std::fs::read_to_string(root.join("mission.toml")).unwrap();
    let config = shipped
        .replace("127.0.0.1:8640", "127.0.0.1:0")
        .replace("127.0.0.1:8641", "127.0.0.1:0");
    setup.file("mission.toml", format!("{config}\n{more}").as_bytes());
    for linked in ["plugins", "schedules"] {
        std::os::unix::fs::symlink(root.join(linked), setup.dir.path().join(linked)).unwrap();
    }
    std::fs::create_dir(setup.dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(fake_claude(), setup.dir.path().join("bin/claude")).unwrap();
    setup
}

/// `mission ARGS --config mission.toml`, run from `dir`, with `dir/bin`
/// first on `PATH`.
fn mission_from(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mission"));
    command
        .args(args)
        .args(["--config", "mission.toml"])
        .current_dir(dir);
    let path = std::env::var("PATH").unwrap_or_default();
    command.env("PATH", format!("{}:{path}", dir.join("bin").display()));
    command
}

#[test]
fn the_shipped_assistant_works_started_as_the_readme_says() {
    let telegram = FakeTelegram::start();
    // A stand-in for ffmpeg and whisper-cli: it opens the path it is given
    // last (from its own working directory, `data/transcribe`).
    let setup = checkout(
        &BotHost::on(&telegram)
            .handler("assistant")
            .telegram("[telegram.transcribe]\ncommand = [\"transcribe.sh\", \"--model\", \"base.en\"]\ntimeout = \"10s\"")
            .toml(),
    );
    let script = setup.file(
        "transcribe.sh",
        b"#!/bin/sh\nfor last; do :; done\ntr 'a-z' 'A-Z' < \"$last\"\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let dir = setup.dir.path();

    // `mission check` compiles every plugin (the slow part of a first start).
    let output = mission_from(dir, &["check"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "stdout: {stdout}\nstderr: {stderr}");

    // A turn of the shipped assistant whose Claude calls one of its tools.
    let output = mission_from(
        dir,
        &[
            "chat",
            "assistant",
            "#tool:dates.weekday {\"date\":\"2026-12-07\"}",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("ran mcp__dates__weekday and got: {\"date\":\"2026-12-07\",\"weekday\":\"Monday\"}"),
        "the shipped assistant's Claude called the dates tool over MCP: {stdout}\nstderr: {stderr}"
    );

    // `mission up`, and a voice note through the transcriber.
    let mut command = mission_from(dir, &["up"]);
    command.env(TOKEN_ENV, TOKEN);
    let host = polling(command);
    telegram.send_file(3, 100, "voice", FakeFile::voice("remind me to call ada"));
    let replies = telegram.wait_for_messages(3, 1);
    assert!(
        replies[0].starts_with("🎙 I heard your voice note: “REMIND ME TO CALL ADA”"),
        "{replies:?}"
    );
    assert!(
        replies[0].contains("fake claude heard \"REMIND ME TO CALL ADA\""),
        "{replies:?}"
    );
    // The shipped assistant asks Claude, who writes Markdown: its replies go
    // as Telegram HTML without a line in the config saying so.
    let reply = telegram.calls_of("sendMessage", 3).pop().unwrap();
    assert_eq!(reply.parse_mode.as_deref(), Some("HTML"));
    drop(host);
}
