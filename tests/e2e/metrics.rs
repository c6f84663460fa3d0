//! `GET /metrics` from outside: what a running host shows passes
//! `promtool check metrics`, a real Prometheus scrapes it and answers a
//! query about a run that happened, and it keeps the page's access rules.
//! Debian's `prometheus` package (installed by `./dev test`) provides both.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::http_client::{get, request, send};
use crate::support::{guest, text, wait_for, PluginSpec, RunningHost, Setup};

/// A real Prometheus server, stopped when dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Prometheus scraping `target`'s `/metrics` every second.
    fn scraping(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mission\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let address = {
            let free = TcpListener::bind("127.0.0.1:0").unwrap();
            free.local_addr().unwrap()
        };
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus is not installed (./dev test installs Debian's prometheus)");
        Prometheus {
            child,
            address,
            _dir: dir,
        }
    }

    /// The value of the instant query `query`'s first result, if any yet.
    fn query(&self, query: &str) -> Result<String, String> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let answer = send(
            self.address,
            "GET",
            &format!("/api/v1/query?query={encoded}"),
            &[],
            b"",
        )
        .ok_or("prometheus is not answering yet")?;
        let body: serde_json::Value =
            serde_json::from_str(&answer.body).map_err(|e| format!("{e}: {}", answer.body))?;
        body["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| answer.body.clone())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prometheus_scrapes_the_host_and_answers_about_a_run_that_happened() {
    let setup = Setup::new();
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"",
        vec![PluginSpec::task("briefing", guest("briefing"))
            .with("grants = [\"state\"]\nconfig = { greeting = \"Hi\", recipient = \"Anna\" }")],
    );
    setup.schedule("morning", "plugin = \"briefing\"\ncron = \"0 7 * * *\"");
    let mut host = RunningHost::start(&setup);
    let page = host.status_page();
    host.wait_for_log("mission control is up");
    let ran = setup.mission(&["trigger", "morning"]);
    assert!(ran.status.success(), "{:?}", text(&ran));

    let metrics = get(page, "/metrics");
    assert!(
        metrics.contains(
            "mission_runs_total{plugin=\"briefing\",trigger=\"trigger\",outcome=\"succeeded\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("mission_schedule_last_success_timestamp_seconds{schedule=\"morning\"} "));
    assert!(metrics.contains("mission_build_info{version=\""), "{metrics}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is not installed (./dev test installs Debian's prometheus)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {:?}\n{metrics}",
        text(&checked)
    );

    // What Prometheus asks for, OpenMetrics, it gets.
    let openmetrics = request(
        page,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
        b"",
    );
    assert!(
        openmetrics
            .head
            .contains("content-type: application/openmetrics-text"),
        "{}",
        openmetrics.head
    );
    assert!(openmetrics.body.ends_with("# EOF\n"));

    let prometheus = Prometheus::scraping(page);
    let runs = wait_for("Prometheus to know of the run", Duration::from_secs(60), || {
        prometheus.query("mission_runs_total{plugin=\"briefing\",outcome=\"succeeded\"}")
    });
    assert_eq!(runs, "1");
    let last = prometheus
        .query("time() - mission_schedule_last_success_timestamp_seconds{schedule=\"morning\"}")
        .unwrap();
    let age: f64 = last.parse().unwrap();
    assert!((0.0..120.0).contains(&age), "the run ended {age} s ago");
}

#[test]
fn metrics_keep_the_page_s_access_rules() {
    let setup = Setup::new();
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"",
        vec![PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")],
    );
    let mut host = RunningHost::start(&setup);
    let page = host.status_page();
    let foreign = request(page, "GET", "/metrics", &[("Host", "attacker.example")], b"");
    assert_eq!(foreign.status, 421, "{}", foreign.body);
    assert!(!foreign.body.contains("mission_"));
}

#[test]
fn the_scrape_config_and_alert_rules_in_the_docs_pass_promtool() {
    let docs = std::fs::read_to_string(crate::support::repo_root().join("docs/operations.md")).unwrap();
    let section = docs
        .split("## Metrics")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 2, "a scrape config and the rules");
    assert!(blocks[1].matches("- alert:").count() == 3, "{}", blocks[1]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), blocks[0]).unwrap();
    std::fs::write(dir.path().join("mission-rules.yml"), blocks[1]).unwrap();
    let checked = Command::new("promtool")
        .args(["check", "config", "prometheus.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool is not installed (./dev test installs Debian's prometheus)");
    assert!(checked.status.success(), "{:?}", text(&checked));
    let (said, _) = text(&checked);
    assert!(said.contains("SUCCESS: 3 rules found"), "{said}");
}
