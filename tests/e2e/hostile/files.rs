//! Stray files where the host reads: a FIFO or a device among the schedule
//! files, a `.wasm` that is a device or a 3 GB sparse file. Each is refused
//! by name without blocking or reading it, and nothing else stops.

use std::time::{Duration, Instant};

use super::Siege;
use crate::support::{guest, text, PluginSpec, Setup};

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_or_a_device_among_the_schedules_wedges_nothing() {
    let mut siege = Siege::start(vec![], &[]);
    let schedules = siege.setup.dir.path().join("schedules");
    // Nobody ever writes to the FIFO: opening it to read would block.
    mkfifo(&schedules.join("fifo.toml"));
    siege
        .host
        .wait_for_log_line(&["schedule refused", "fifo.toml", "not a regular file but a FIFO"]);
    std::os::unix::fs::symlink("/dev/zero", schedules.join("zero.toml")).unwrap();
    siege.host.wait_for_log_line(&[
        "schedule refused",
        "zero.toml",
        "not a regular file but a character device",
    ]);
    siege.assert_serving();

    // The command line reads the directory too, and returns at once.
    let started = Instant::now();
    let output = siege.setup.mission(&["schedules"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (stdout, stderr) = text(&output);
    assert!(stdout.contains("calm"), "{stdout}");
    assert!(
        stderr.contains("fifo.toml: cannot read the schedule file: not a regular file but a FIFO"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("zero.toml: cannot read the schedule file: not a regular file but a character device"),
        "{stderr}"
    );
    siege.stop();
}

#[test]
fn a_component_that_is_a_device_or_too_big_is_refused_by_name() {
    let setup = Setup::new();
    let sparse = setup.dir.path().join("sparse.wasm");
    std::fs::File::create(&sparse).unwrap().set_len(3 << 30).unwrap();
    setup.config(vec![
        PluginSpec::task("zero", "/dev/zero"),
        PluginSpec::task("sparse", sparse.clone()),
        PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
    ]);
    let started = Instant::now();
    let output = setup.mission(&["check"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let (stdout, stderr) = text(&output);
    let said = format!("{stdout}{stderr}");
    assert!(!output.status.success());
    assert!(
        said.contains("plugin `zero`: cannot read /dev/zero: not a regular file but a character device"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "plugin `sparse`: cannot read {}: 3072.0 MiB is more than the 256.0 MiB this file may be",
            sparse.display()
        )),
        "{said}"
    );
    // The good plugin beside them still runs.
    let (succeeded, record) = setup.run_json("briefing");
    assert!(succeeded, "{record}");
}
