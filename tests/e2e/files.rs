//! The `files` grant on real directories: what a plugin sees through
//! `std::fs` (Rust's own file API over wasi:filesystem), what it cannot
//! reach (a sibling, `..`, an absolute host path, a symlink out, for
//! reading or writing), read-only enforced, and the write quota per call.

use std::path::Path;

use serde_json::Value;

use crate::support::{guest, python_guest, wait_for, PluginSpec, Setup};

/// Directories beside the config: `exports/` (granted read), `out/`
/// (granted write), `sibling/` and `secret.txt` (not granted), with a
/// symlink to the secret inside each granted one.
fn tree(root: &Path) {
    std::fs::create_dir_all(root.join("exports")).unwrap();
    std::fs::create_dir_all(root.join("out")).unwrap();
    std::fs::create_dir_all(root.join("sibling")).unwrap();
    std::fs::write(
        root.join("exports/leads.csv"),
        "name,email\nAda,ada@example.com\n",
    )
    .unwrap();
    std::fs::write(root.join("sibling/other.csv"), "not yours").unwrap();
    std::fs::write(root.join("secret.txt"), "the host's secret").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("exports/secret-link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("out/secret-link")).unwrap();
}

fn setup(ops: &str, max_write: &str) -> Setup {
    let setup = Setup::new();
    tree(setup.dir.path());
    setup.config(vec![PluginSpec::task("files", guest("files")).with(&format!(
        "grants = [\"files\"]\nconfig = {{ ops = {ops:?} }}\n\
         [plugins.files.files]\nread = [\"exports\"]\nwrite = [\"out\"]\nmax_write = \"{max_write}\""
    ))]);
    setup
}

/// Runs the plugin; its run record and each op's result by op.
fn run(setup: &Setup) -> (Value, Vec<Value>) {
    let (ok, record) = setup.run_json("files");
    assert!(ok, "{record}");
    let results: Vec<Value> = serde_json::from_str(record["summary"].as_str().unwrap()).unwrap();
    (record, results)
}

fn result<'a>(results: &'a [Value], op: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["op"] == op)
        .unwrap_or_else(|| panic!("no {op} in {results:#?}"))
}

#[test]
fn a_plugin_reads_and_writes_its_directories_and_nothing_beside_them() {
    let probe = |setup_dir: &Path| {
        let secret = setup_dir.join("secret.txt");
        [
            "read /read/exports/leads.csv".to_owned(),
            "list /read/exports".to_owned(),
            "list /".to_owned(),
            "read /read/exports/../../sibling/other.csv".to_owned(),
            "read /read/exports/secret-link".to_owned(),
            format!("read {}", secret.display()),
            "read /sibling/other.csv".to_owned(),
            "write /read/exports/new.csv 10".to_owned(),
            "remove /read/exports/leads.csv".to_owned(),
            "write /write/out/report.txt 100".to_owned(),
            "mkdir /write/out/2026".to_owned(),
            "write /write/out/secret-link 5".to_owned(),
            "read /write/out/secret-link".to_owned(),
        ]
        .join(";")
    };
    // The ops name the setup's own path, so write the config twice.
    let setup = setup("", "1MiB");
    let ops = probe(setup.dir.path());
    let setup_dir = setup.dir.path().to_owned();
    let text = std::fs::read_to_string(setup.config_path()).unwrap();
    std::fs::write(
        setup.config_path(),
        text.replace("ops = \"\"", &format!("ops = {ops:?}")),
    )
    .unwrap();

    let (record, results) = run(&setup);
    let read = result(&results, "read /read/exports/leads.csv");
    assert_eq!(read["ok"], true, "{read}");
    assert!(read["detail"].as_str().unwrap().contains("Ada,ada@example.com"));
    let listed = result(&results, "list /read/exports");
    assert_eq!(listed["detail"], serde_json::json!(["leads.csv", "secret-link"]));
    for refused in [
        "list /",
        "read /read/exports/../../sibling/other.csv",
        "read /read/exports/secret-link",
        &format!("read {}", setup_dir.join("secret.txt").display()),
        "read /sibling/other.csv",
        "write /read/exports/new.csv 10",
        "remove /read/exports/leads.csv",
        "write /write/out/secret-link 5",
        "read /write/out/secret-link",
    ] {
        let r = result(&results, refused);
        assert_eq!(r["ok"], false, "{refused} should be refused: {r}");
    }
    for written in ["write /write/out/report.txt 100", "mkdir /write/out/2026"] {
        assert_eq!(result(&results, written)["ok"], true, "{:#?}", results);
    }
    // On the host: the write landed, nothing else changed.
    assert_eq!(
        std::fs::read(setup_dir.join("out/report.txt")).unwrap().len(),
        100
    );
    assert!(setup_dir.join("out/2026").is_dir());
    assert!(!setup_dir.join("exports/new.csv").exists());
    assert!(setup_dir.join("exports/leads.csv").exists());
    assert_eq!(
        std::fs::read_to_string(setup_dir.join("secret.txt")).unwrap(),
        "the host's secret"
    );
    assert_eq!(record["files_written"], 100);
}

#[test]
fn writes_past_max_write_are_refused_with_the_wasi_error_and_each_call_starts_at_zero() {
    let ops =
        "write /write/out/a 600; write /write/out/b 600; append /write/out/a 300; append /write/out/a 200";
    let setup = setup(ops, "1KiB");
    let first = setup.mission(&["run", "--json", "files"]);
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(
        log.contains("file write refused: over the call's max_write") && log.contains("plugin=files"),
        "{log}"
    );
    // The second run has its own quota: the same writes, the same outcome.
    let (record, results) = run(&setup);
    assert_eq!(result(&results, "write /write/out/a 600")["ok"], true);
    let over = result(&results, "write /write/out/b 600");
    assert_eq!(over["ok"], false, "{over}");
    // A stream's failed write, which wasi-libc reports as EIO.
    assert!(over["error"].as_str().unwrap().contains("I/O error"), "{over}");
    assert_eq!(
        std::fs::metadata(setup.dir.path().join("out/b"))
            .map(|m| m.len())
            .unwrap_or(0),
        0
    );
    assert_eq!(
        result(&results, "append /write/out/a 300")["ok"],
        true,
        "{results:#?}"
    );
    assert_eq!(result(&results, "append /write/out/a 200")["ok"], false);
    assert_eq!(record["files_written"], 900, "{record}");
    assert_eq!(std::fs::read(setup.dir.path().join("out/a")).unwrap().len(), 900);
}

#[test]
fn a_python_plugin_uses_open_on_its_directories_and_only_there() {
    let setup = Setup::new();
    tree(setup.dir.path());
    let spec = |name: &str, read: &str, write: &str| {
        PluginSpec::task(name, python_guest("probe")).with(&format!(
            "grants = [\"files\"]\nconfig = {{ read = {read:?}, write = {write:?} }}\n\
             [plugins.{name}.files]\nread = [\"exports\"]\nwrite = [\"out\"]"
        ))
    };
    setup.config(vec![
        spec("granted", "/read/exports/leads.csv", "/write/out/py.txt"),
        spec("outside", "/read/exports/secret-link", "/read/exports/py.txt"),
    ]);
    let (ok, record) = setup.run_json("granted");
    assert!(ok, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(summary.contains("read=reached 'name,email"), "{summary}");
    assert!(summary.contains("write=reached 17"), "{summary}");
    assert!(
        summary.contains("root=refused"),
        "only the grant's directories: {summary}"
    );
    assert_eq!(
        std::fs::read_to_string(setup.dir.path().join("out/py.txt")).unwrap(),
        "written by python"
    );
    let (ok, record) = setup.run_json("outside");
    assert!(ok, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.contains("read=refused") && summary.contains("write=refused"),
        "{summary}"
    );
    assert!(!setup.dir.path().join("exports/py.txt").exists());
}

/// Makes a FIFO at `path` with `mkfifo(3)`.
fn mkfifo(path: &Path) {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives through the call.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
}

/// `mission run --json files` that must end within `within`: its exit
/// status and record, or a panic naming what it printed.
fn run_within(setup: &Setup, within: std::time::Duration) -> (bool, Value) {
    let child = setup
        .command(&["run", "--json", "files"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = Killed(Some(child));
    let child = run.0.as_mut().unwrap();
    wait_for(&format!("`mission run` to end within {within:?}"), within, || {
        child.try_wait().unwrap().ok_or("still running")
    });
    let output = run.0.take().unwrap().wait_with_output().unwrap();
    let record = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no record ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), record)
}

/// A child process killed if the test fails while it runs, its log printed.
struct Killed(Option<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            if let Ok(output) = child.wait_with_output() {
                eprintln!("its log: {}", String::from_utf8_lossy(&output.stderr));
            }
        }
    }
}

#[test]
fn a_fifo_or_a_socket_in_a_granted_directory_is_refused_without_blocking() {
    let setup = Setup::new();
    tree(setup.dir.path());
    let exports = setup.dir.path().join("exports");
    // Nobody ever writes to the FIFO: opening it to read would block.
    mkfifo(&exports.join("fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(exports.join("socket")).unwrap();
    mkfifo(&setup.dir.path().join("out/fifo"));
    let ops = "read /read/exports/fifo; read /read/exports/socket; write /write/out/fifo 5; \
               list /read/exports; read /read/exports/leads.csv";
    setup.config(vec![PluginSpec::task("files", guest("files")).with(&format!(
        "grants = [\"files\"]\ntimeout = \"3s\"\nconfig = {{ ops = {ops:?} }}\n\
         [plugins.files.files]\nread = [\"exports\"]\nwrite = [\"out\"]"
    ))]);
    // Before, the run timed out at 3 s and `mission run` never exited: the
    // open held a thread the runtime waits for.
    let (ok, record) = run_within(&setup, std::time::Duration::from_secs(20));
    assert!(ok, "{record}");
    let results: Vec<Value> = serde_json::from_str(record["summary"].as_str().unwrap()).unwrap();
    for refused in [
        "read /read/exports/fifo",
        "read /read/exports/socket",
        "write /write/out/fifo 5",
    ] {
        let r = result(&results, refused);
        assert_eq!(r["ok"], false, "{r}");
        assert!(
            r["error"].as_str().unwrap().contains("Not supported"),
            "{refused}: {r}"
        );
    }
    // They are still listed, and the rest of the directory reads as before.
    assert_eq!(
        result(&results, "list /read/exports")["detail"],
        serde_json::json!(["fifo", "leads.csv", "secret-link", "socket"])
    );
    assert_eq!(result(&results, "read /read/exports/leads.csv")["ok"], true);
}

#[test]
fn creating_past_max_create_is_refused_and_each_call_counts_only_what_it_creates() {
    let setup = Setup::new();
    tree(setup.dir.path());
    let ops = "mkdir /write/out/d; create /write/out/d 30";
    setup.config(vec![PluginSpec::task("files", guest("files")).with(&format!(
        "grants = [\"files\"]\nconfig = {{ ops = {ops:?} }}\n\
         [plugins.files.files]\nwrite = [\"out\"]\nmax_create = 20"
    ))]);
    let first = setup.mission(&["run", "--json", "files"]);
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(
        log.contains("file create refused: over the call's max_create") && log.contains("plugin=files"),
        "{log}"
    );
    let record: Value = serde_json::from_slice(&first.stdout).unwrap();
    let results: Vec<Value> = serde_json::from_str(record["summary"].as_str().unwrap()).unwrap();
    assert_eq!(result(&results, "mkdir /write/out/d")["ok"], true);
    let refused = result(&results, "create /write/out/d 30");
    assert_eq!(refused["ok"], false, "{refused}");
    assert_eq!(refused["kind"], "QuotaExceeded", "{refused}");
    assert!(
        refused["error"].as_str().unwrap().starts_with("created 19 of 30"),
        "the directory and 19 files make 20: {refused}"
    );
    let count = || std::fs::read_dir(setup.dir.path().join("out/d")).unwrap().count();
    assert_eq!(count(), 19);

    // A new call starts at zero, and what is there already does not count:
    // the directory and 19 files exist, 11 are new.
    let (record, results) = run(&setup);
    assert_eq!(result(&results, "mkdir /write/out/d")["ok"], false);
    assert_eq!(result(&results, "create /write/out/d 30")["ok"], true, "{record}");
    assert_eq!(count(), 30);
}

#[test]
fn a_name_that_is_not_utf8_is_left_out_of_a_listing_and_the_log_says_so() {
    use std::os::unix::ffi::OsStrExt;
    let setup = setup("list /read/exports; read /read/exports/leads.csv", "1MiB");
    let exports = setup.dir.path().join("exports");
    std::fs::write(
        exports.join(std::ffi::OsStr::from_bytes(b"r\xe9sum\xe9.csv")),
        "latin-1",
    )
    .unwrap();
    let output = setup.mission(&["run", "--json", "files"]);
    let log = String::from_utf8_lossy(&output.stderr);
    let record: Value = serde_json::from_slice(&output.stdout).unwrap();
    let results: Vec<Value> = serde_json::from_str(record["summary"].as_str().unwrap()).unwrap();
    // Before, the whole listing failed: "Illegal byte sequence" (EILSEQ).
    let listed = result(&results, "list /read/exports");
    assert_eq!(
        listed["detail"],
        serde_json::json!(["leads.csv", "secret-link"]),
        "{listed}"
    );
    assert!(
        log.contains("directory listing cut: names that are not UTF-8 left out")
            && log.contains("plugin=files")
            // How many: a field, or in the line once it goes through the
            // plugin's log rate.
            && (log.contains("left_out=1") || log.contains("left out (1)")),
        "{log}"
    );
}
