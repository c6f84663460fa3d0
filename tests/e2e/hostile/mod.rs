//! The hostile corpus: what a buggy or hostile plugin, a hostile web page
//! or a stray file can try, each against a running `mission up`. Every test
//! asserts the limit held and that the host goes on serving: its heartbeat
//! fresh, its page answering, a benign schedule still running through it,
//! and SIGTERM ending it within its grace.
//!
//! The guests are real components: `plugins/fixtures/hostile` (a huge
//! summary or error, a state filler, a log flood) and the shipped
//! `run-command` for programs that try to outlive their run.

mod files;
mod page;
mod processes;
mod results;
mod secrets;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{guest, text, PluginSpec, RunningHost, Setup};

/// The grace the hosts here get at SIGTERM.
const GRACE: Duration = Duration::from_secs(2);

/// A `mission up` under attack, with its page on loopback and a benign
/// `briefing` schedule (`calm`) beside whatever the test adds.
pub struct Siege {
    pub setup: Setup,
    pub host: RunningHost,
    pub page: SocketAddr,
}

impl Siege {
    /// Starts `mission up` with `plugins` beside `briefing`, each schedule
    /// of `schedules` (name, TOML) written first.
    pub fn start(plugins: Vec<PluginSpec>, schedules: &[(&str, &str)]) -> Siege {
        Siege::start_with_env(plugins, schedules, &[])
    }

    /// [`Siege::start`], with `env` in the host's environment.
    pub fn start_with_env(
        plugins: Vec<PluginSpec>,
        schedules: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Siege {
        let setup = Setup::new();
        let mut all = vec![PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")];
        all.extend(plugins);
        setup.config_with(
            &format!(
                "shutdown_grace = \"{}s\"\n[web]\nlisten = \"127.0.0.1:0\"\n",
                GRACE.as_secs()
            ),
            all,
        );
        setup.schedule("calm", "plugin = \"briefing\"\ncron = \"0 3 1 1 *\"\n");
        for (name, toml) in schedules {
            setup.schedule(name, toml);
        }
        let mut command = setup.command(&["up"]);
        command.envs(env.iter().copied());
        let mut host = RunningHost::spawn(command);
        let page = host.status_page();
        Siege { setup, host, page }
    }

    /// `mission trigger --json NAME` through the running host: the run's
    /// record.
    pub fn trigger(&self, schedule: &str) -> serde_json::Value {
        let output = self.setup.mission(&["trigger", "--json", schedule]);
        let (stdout, stderr) = text(&output);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
    }

    /// A GET of `path` on the page, as the browser on this machine sends it:
    /// (status, headers lowercased, body).
    pub fn get(&self, path: &str, host: &str) -> (u16, String, String) {
        let answer = crate::http_client::request(self.page, "GET", path, &[("Host", host)], b"");
        (answer.status, answer.head, answer.body)
    }

    /// The host goes on: a fresh heartbeat, the page answering, and the
    /// benign schedule run through it.
    pub fn assert_serving(&self) {
        let output = self.setup.mission(&["service", "status", "--json"]);
        let status: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output).1));
        assert_eq!(
            status["host"]["running"], true,
            "the heartbeat is stale: {status}"
        );
        let started = Instant::now();
        let (code, _, body) = self.get("/healthz", &self.page.to_string());
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the page took {:?}",
            started.elapsed()
        );
        let calm = self.trigger("calm");
        assert_eq!(calm["outcome"], "succeeded", "{calm}");
    }

    /// SIGTERM ends the host within its grace (and a margin for the
    /// machine), cleanly; returns its whole log.
    pub fn stop(self) -> String {
        self.host.signal("-TERM");
        let started = Instant::now();
        let (clean, log) = self.host.wait();
        assert!(clean, "mission up did not stop cleanly:\n{log}");
        assert!(
            started.elapsed() < GRACE + Duration::from_secs(5),
            "SIGTERM took {:?}",
            started.elapsed()
        );
        log
    }
}

/// The `hostile` fixture making `attack`, as plugin `hostile`, with `extra`
/// config lines.
pub fn hostile(extra: &str) -> PluginSpec {
    PluginSpec::task("hostile", guest("hostile")).with(extra)
}

/// A schedule of `plugin` that runs only when triggered, with `config`.
pub fn on_demand(plugin: &str, config: &str) -> String {
    format!("plugin = \"{plugin}\"\ncron = \"0 4 1 1 *\"\nconfig = {{ {config} }}\n")
}
