//! The one harness every end-to-end test uses: builds the guest plugins
//! once, builds misbehaving components from WAT, writes a `mission.toml` in a
//! temporary directory and runs `mission` on it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mission::capabilities::http::records::Origin;
use mission::config::Config;
use mission::host::Host;
use tempfile::TempDir;

pub use crate::wat::wat_task;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The component built from the guest crate `name` under plugins/, building
/// the guest workspace (once per test run) if needed.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let plugins = repo_root().join("plugins");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&plugins)
            .status()
            .expect("failed to run cargo for the guest plugins");
        assert!(
            status.success(),
            "building the guest plugins failed; is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)"
        );
        plugins.join("target/wasm32-wasip2/release")
    });
    dir.join(format!("{name}.wasm"))
}

/// The component built from the Python plugin `plugins/python/NAME` (by
/// `./dev`, with componentize-py from the Python package registry).
pub fn python_guest(name: &str) -> PathBuf {
    let path = repo_root().join(format!("plugins/target/python/{name}_py.wasm"));
    assert!(
        path.exists(),
        "{} is missing: `./dev plugins` installs componentize-py and builds the Python plugins",
        path.display()
    );
    path
}

/// The component built from the JavaScript plugin `plugins/js/NAME` (by
/// `./dev`, with componentize-js from the npm registry).
pub fn js_guest(name: &str) -> PathBuf {
    let path = repo_root().join(format!("plugins/target/js/{name}_js.wasm"));
    assert!(
        path.exists(),
        "{} is missing: `./dev plugins` installs componentize-js and builds the JavaScript plugins",
        path.display()
    );
    path
}

/// The fake `claude` CLI (tests/fake-claude), built once per test run.
pub fn fake_claude() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = repo_root();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "fake-claude"])
                .current_dir(&root)
                .status()
                .expect("failed to run cargo for the fake claude");
            assert!(status.success(), "building tests/fake-claude failed");
            root.join("target/debug/fake-claude")
        })
        .clone()
}

/// A plugin to put in a test's `mission.toml`.
pub struct PluginSpec {
    name: String,
    world: &'static str,
    wasm: PathBuf,
    extra: String,
}

impl PluginSpec {
    /// A task plugin from `wasm`.
    pub fn task(name: &str, wasm: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            world: "task",
            wasm: wasm.into(),
            extra: String::new(),
        }
    }

    /// A chat plugin from `wasm`.
    pub fn chat(name: &str, wasm: impl Into<PathBuf>) -> Self {
        Self {
            world: "chat",
            ..Self::task(name, wasm)
        }
    }

    /// A tools plugin from `wasm`.
    pub fn tools(name: &str, wasm: impl Into<PathBuf>) -> Self {
        Self {
            world: "tools",
            ..Self::task(name, wasm)
        }
    }

    /// Adds raw TOML lines to the plugin's table (grants, limits, config).
    pub fn with(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }
}

/// The compile cache every test's data directory links to: compiling the
/// same components again in each test (a Python one takes 15 s in a debug
/// host) would be most of the suite's time. Hosts may share it as they are:
/// an entry is written whole and renamed into place.
fn shared_compile_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A temporary directory with a `mission.toml` and a data directory.
pub struct Setup {
    pub dir: TempDir,
}

impl Setup {
    /// An empty directory but for the compile cache every test shares (see
    /// [`shared_compile_cache`]); call [`Setup::config`] before running
    /// anything.
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::os::unix::fs::symlink(shared_compile_cache(), dir.path().join("data/cache")).unwrap();
        Setup { dir }
    }

    /// Gives this test a compile cache of its own, empty, in place of the
    /// shared one.
    pub fn own_compile_cache(&self) {
        let cache = self.dir.path().join("data/cache");
        std::fs::remove_file(&cache).unwrap();
        std::fs::create_dir(&cache).unwrap();
    }

    /// A directory with a config of `plugins`.
    pub fn with_plugins(plugins: Vec<PluginSpec>) -> Setup {
        let setup = Setup::new();
        setup.config(plugins);
        setup
    }

    /// Writes the config with `plugins`.
    pub fn config(&self, plugins: Vec<PluginSpec>) {
        self.config_with("", plugins);
    }

    /// Writes the config with top-level lines `top` and `plugins`.
    pub fn config_with(&self, top: &str, plugins: Vec<PluginSpec>) {
        let mut toml = format!("data_dir = \"data\"\n{top}\n");
        for plugin in plugins {
            toml.push_str(&format!(
                "\n[plugins.{}]\nworld = \"{}\"\nwasm = {:?}\n{}",
                plugin.name, plugin.world, plugin.wasm, plugin.extra
            ));
        }
        std::fs::write(self.config_path(), toml).unwrap();
    }

    /// Writes `bytes` as a file in the directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes `schedules/NAME.toml`.
    pub fn schedule(&self, name: &str, toml: &str) {
        let dir = self.dir.path().join("schedules");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.toml")), toml).unwrap();
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("mission.toml")
    }

    /// `mission ARGS --config <this config>`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mission"));
        command.args(args).arg("--config").arg(self.config_path());
        command
    }

    /// Runs `mission ARGS` to the end.
    pub fn mission(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("failed to start mission")
    }

    /// Runs `mission run --json PLUGIN` and returns its exit status and record.
    pub fn run_json(&self, plugin: &str) -> (bool, serde_json::Value) {
        let output = self.mission(&["run", "--json", plugin]);
        let record = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "`mission run --json {plugin}` printed no record ({e}):\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.success(), record)
    }

    /// A host on this config, in this process, with every plugin loaded.
    pub async fn host(&self) -> Host {
        let host = Host::open(Config::load(&self.config_path()).unwrap())
            .await
            .unwrap();
        let failures = host.load_all().await;
        assert!(failures.is_empty(), "plugins failed to load: {failures:?}");
        host
    }
}

/// How often [`wait_for`] looks again.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Looks with `check` every 100 ms until it gives `Ok(value)`, and returns
/// the value; `Err(seen)` means "not yet", with what it saw. Panics after
/// `limit`, saying what it waited for and what it last saw.
///
/// ```ignore
/// let runs = wait_for("a failed run", Duration::from_secs(30), || {
///     let failed = failed_runs(&setup);
///     if failed >= 1 { Ok(failed) } else { Err(failed) }
/// });
/// ```
#[track_caller]
pub fn wait_for<T, S: std::fmt::Debug>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<T, S>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {limit:?} for {what}; last saw: {seen:#?}")
            }
            Err(_) => std::thread::sleep(LOOK_EVERY),
        }
    }
}

/// [`wait_for`] in an async test: `check` is awaited, and between looks the
/// wait sleeps on tokio's timer, so the host's tasks on the test's runtime
/// go on meanwhile.
pub async fn wait_for_async<T, S: std::fmt::Debug, F: std::future::Future<Output = Result<T, S>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("waited {limit:?} for {what}; last saw: {seen:#?}")
            }
            Err(_) => tokio::time::sleep(LOOK_EVERY).await,
        }
    }
}

/// Text of a process's stdout and stderr, for assertions and messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An invocation like the one `mission run` makes.
pub fn invocation(name: &str) -> mission::plugin::call::Invocation {
    mission::plugin::call::Invocation {
        name: name.into(),
        scheduled_at: 0,
        attempt: 1,
        config: Vec::new(),
    }
}

/// Runs the loaded plugin `name` once through the library, with its own
/// deadline, and returns the typed report.
pub async fn call_task(host: &Host, name: &str) -> mission::plugin::call::CallReport<String> {
    let plugin = host.registry().get(name).unwrap();
    plugin
        .run_task(
            host.services(),
            &invocation(name),
            Default::default(),
            plugin.config.limits.timeout,
            Origin::Unrecorded,
        )
        .await
        .unwrap()
}

/// A `mission up` process and what it logged so far.
pub struct RunningHost {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Everything it logged so far.
    pub seen: String,
}

impl RunningHost {
    /// Starts `mission up` on `setup` and waits until it is serving.
    pub fn start(setup: &Setup) -> RunningHost {
        RunningHost::spawn(setup.command(&["up"]))
    }

    /// Starts `command` (a `mission up`) and waits until it is serving.
    pub fn spawn(command: Command) -> RunningHost {
        let mut host = RunningHost::starting(command);
        host.wait_for_log("mission control is up");
        host
    }

    /// Starts `command` (a `mission up`) and returns at once, whatever it
    /// has logged.
    pub fn starting(mut command: Command) -> RunningHost {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        RunningHost {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Reads the log until a line after what was read before contains every
    /// one of `texts`; panics after 30 s.
    pub fn wait_for_log_line(&mut self, texts: &[&str]) -> String {
        self.wait_for_log_line_within(texts, Duration::from_secs(30))
    }

    /// [`RunningHost::wait_for_log_line`], panicking after `limit`.
    pub fn wait_for_log_line_within(&mut self, texts: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if texts.iter().all(|t| line.contains(t)) {
                        return line;
                    }
                }
                Err(_) => panic!("no log line with {texts:?} within {limit:?}:\n{}", self.seen),
            }
        }
    }

    /// A line of the log, read so far or to come, that contains every one of
    /// `texts`; panics after 30 s.
    pub fn wait_for_logged(&mut self, texts: &[&str]) -> String {
        match self
            .seen
            .lines()
            .find(|line| texts.iter().all(|t| line.contains(t)))
        {
            Some(line) => line.to_owned(),
            None => self.wait_for_log_line(texts),
        }
    }

    /// Where its status page is, from its log (`[web]` must be set).
    pub fn status_page(&mut self) -> std::net::SocketAddr {
        self.logged_address("status page on http://")
    }

    /// Where its webhook listener is, from its log (`[webhooks]` must be set).
    pub fn webhooks(&mut self) -> std::net::SocketAddr {
        self.logged_address("webhooks listening on http://")
    }

    /// The address logged after `marker` (`… on http://ADDRESS/…`), before
    /// or after "mission control is up".
    fn logged_address(&mut self, marker: &str) -> std::net::SocketAddr {
        let line = match self.seen.lines().find(|l| l.contains(marker)) {
            Some(line) => line.to_owned(),
            None => self.wait_for_log_line(&[marker]),
        };
        line.split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"))
    }

    /// Reads the log until it contains `text`.
    pub fn wait_for_log(&mut self, text: &str) {
        if !self.seen.contains(text) {
            self.wait_for_log_line(&[text]);
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `-TERM`) to the host.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        assert!(status.unwrap().success());
    }

    /// Waits for the process to exit; returns whether it exited 0 and its
    /// whole log.
    pub fn wait(mut self) -> (bool, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "mission up did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (status.success(), std::mem::take(&mut self.seen))
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `pid` is a live process (a zombie, killed and waiting to be
/// reaped, is not).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        .is_some_and(|state| state != 'Z' && state != 'X')
}
