//! The status page of `mission up` (`[web]`): every route over plain HTTP,
//! who may look and who may press the buttons, and the page in a real
//! headless browser (Debian's Chromium, which `./dev test` installs), with
//! a screenshot left in target/screenshots/ for people to look at.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::bot_host::{up_command, BotHost};
use crate::http_client::{self, Answer};
use crate::support::{guest, repo_root, text, wait_for, PluginSpec, RunningHost, Setup};

const TOKEN: &str = "page-token-for-tests";

/// A config with a schedule that succeeds (`nightly`) and one whose
/// program fails (`broken`), the page on `listen`, and one failed run.
fn setup(listen: &str) -> Setup {
    let setup = Setup::new();
    setup.config_with(
        &format!("[web]\nlisten = \"{listen}\"\ntoken_env = \"MISSION_TEST_WEB_TOKEN\"\n"),
        vec![
            PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
            PluginSpec::task("job", guest("run_command")).with(
                "grants = [\"process\"]\nconfig = { program = \"/bin/sh\", args = '[\"-c\", \"echo disk full >&2; exit 3\"]' }\n\
                 [plugins.job.process]\nprograms = [\"/bin/sh\"]",
            ),
        ],
    );
    setup.schedule(
        "nightly",
        "plugin = \"briefing\"\ncron = \"0 3 * * *\"\ntimezone = \"UTC\"\n",
    );
    setup.schedule(
        "broken",
        "plugin = \"job\"\ncron = \"0 4 1 1 *\"\ntimezone = \"Europe/Berlin\"\n",
    );
    let output = setup
        .command(&["trigger", "broken"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(!output.status.success(), "the broken schedule should fail");
    setup
}

/// `mission up` on `setup`, and where its page is.
fn start(setup: &Setup) -> (RunningHost, SocketAddr) {
    let mut command = setup.command(&["up"]);
    command.env("MISSION_TEST_WEB_TOKEN", TOKEN);
    serve(command)
}

/// Starts `command` (a `mission up`, in UTC) and reads where its page is.
fn serve(mut command: std::process::Command) -> (RunningHost, SocketAddr) {
    command.env("TZ", "UTC");
    let mut host = RunningHost::spawn(command);
    let address = host.status_page();
    (host, address)
}

/// A button's form posted to `path` on `address`, with `headers`.
fn post(address: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let headers: Vec<(&str, &str)> = headers.iter().copied().chain([form]).collect();
    http_client::request(address, "POST", path, &headers, body.as_bytes())
}

fn get(address: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    http_client::request(address, "GET", path, headers, b"")
}

/// The next 03:00 UTC as the page shows it (the host runs with TZ=UTC).
fn next_three_oclock() -> String {
    let now = chrono::Utc::now();
    let today = now.date_naive().and_hms_opt(3, 0, 0).unwrap().and_utc();
    let next = if today > now {
        today
    } else {
        today + chrono::Duration::days(1)
    };
    next.format("%Y-%m-%d %H:%M:%S").to_string()
}

#[test]
fn every_route_answers_a_loopback_client() {
    let setup = setup("127.0.0.1:0");
    setup.schedule("typo", "plugin = \"briefing\"\ncron = \"0 25 * * *\"\n");
    setup.schedule(
        "berlin",
        "plugin = \"briefing\"\ncron = \"0 7 * * *\"\ntimezone = \"Europe/Berlin\"\n",
    );
    let (host, address) = start(&setup);

    let health = get(address, "/healthz", &[]);
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    let page = get(address, "/", &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.head.contains("content-type: text/html"), "{}", page.head);
    assert!(page.body.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(page.body.contains("0 3 * * *") && page.body.contains(&format!("{} UTC", next_three_oclock())));
    // A schedule's next run in its own zone, named, not in the host's.
    assert!(
        page.body.contains(" 07:00:00 CET") || page.body.contains(" 07:00:00 CEST"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("exit 3") && page.body.contains("disk full"),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-schedule=\"broken\""));
    // Nothing loaded from elsewhere.
    for outside in ["src=\"http", "href=\"http", "@import"] {
        assert!(!page.body.contains(outside), "{outside}");
    }
    // No buttons without the token.
    assert!(!page.body.contains("Run now"));
    // A refused schedule file is on the page with why, and logged once,
    // not at every look.
    assert!(
        page.body.contains("typo.toml: cron: `0 25 * * *`"),
        "{}",
        page.body
    );
    get(address, "/", &[]);

    let api = get(address, "/api/status", &[]);
    assert_eq!(api.status, 200);
    let status: serde_json::Value = serde_json::from_str(&api.body).unwrap();
    let schedule = |name: &str| {
        status["schedules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        schedule("nightly")["next"],
        format!("{} UTC", next_three_oclock())
    );
    assert_eq!(schedule("broken")["last"]["outcome"], "failed");
    assert!(schedule("broken")["last"]["error"]
        .as_str()
        .unwrap()
        .contains("exit 3"));
    let plugins: Vec<&str> = status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["briefing", "job"]);
    assert_eq!(status["plugins"][0]["hash"].as_str().unwrap().len(), 12);

    let unknown = post(address, "/schedules/nightly/explode", &[], "csrf=x");
    assert_eq!(unknown.status, 403, "no token: refused before anything else");
    host.signal("-TERM");
    let (ok, log) = host.wait();
    assert!(ok);
    assert_eq!(log.matches("typo.toml").count(), 1, "{log}");
}

/// The page's form value, read from the page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("no csrf field") + "name=\"csrf\" value=\"".len();
    page[at..at + 64].to_owned()
}

#[test]
fn the_buttons_need_the_token_and_refuse_other_sites() {
    let setup = setup("127.0.0.1:0");
    let (host, address) = start(&setup);

    // The token in the address becomes a cookie, and leaves the address.
    let login = get(address, &format!("/?token={TOKEN}"), &[]);
    assert_eq!(login.status, 303);
    assert!(login.head.contains("location: /\r\n"), "{}", login.head);
    assert!(
        login.head.contains(&format!(
            "set-cookie: mission_token={TOKEN}; httponly; samesite=strict"
        )),
        "{}",
        login.head
    );
    let wrong = get(address, "/?token=guess", &[]);
    assert_eq!(wrong.status, 200, "a loopback client still sees the page");
    assert!(!wrong.body.contains("Run now"));

    let cookie = format!("mission_token={TOKEN}");
    let page = get(address, "/", &[("Cookie", &cookie)]);
    assert!(
        page.body.contains("Run now") && page.body.contains("Pause"),
        "{}",
        page.body
    );
    let form = format!("csrf={}", csrf(&page.body));
    let origin = format!("http://{address}");

    let press = |path: &str, headers: &[(&str, &str)], body: &str| post(address, path, headers, body);
    // Without the token, from another site, without the page's value: no.
    let refused: [(&[(&str, &str)], &str); 4] = [
        (&[("Origin", &origin)], &form),
        (&[("Cookie", &cookie), ("Origin", "http://evil.example")], &form),
        (&[("Cookie", &cookie), ("Sec-Fetch-Site", "cross-site")], &form),
        (&[("Cookie", &cookie), ("Origin", &origin)], "csrf=0000"),
    ];
    for (headers, body) in refused {
        let answer = press("/schedules/nightly/pause", headers, body);
        assert_eq!(answer.status, 403, "{headers:?} {body}");
    }
    assert_eq!(
        press(
            "/schedules/nope/pause",
            &[("Cookie", &cookie), ("Origin", &origin)],
            &form
        )
        .status,
        404
    );
    let paused_now = || {
        let output = setup.mission(&["schedules", "--json"]);
        let schedules: Vec<serde_json::Value> = serde_json::from_str(&text(&output).0).unwrap();
        schedules.iter().find(|s| s["name"] == "nightly").unwrap()["paused"] == true
    };
    assert!(!paused_now(), "a refused press changed nothing");

    // From the page itself: done, and back to the page.
    let pause = press(
        "/schedules/nightly/pause",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &form,
    );
    assert_eq!(pause.status, 303, "{}", pause.body);
    assert!(paused_now());
    let page = get(address, "/", &[("Cookie", &cookie)]);
    assert!(page.body.contains("Resume"));
    let resume = press(
        "/schedules/nightly/resume",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &form,
    );
    assert_eq!(resume.status, 303);
    assert!(!paused_now());

    // Run now goes through the running host like `mission trigger`.
    let run = press(
        "/schedules/nightly/run",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &form,
    );
    assert_eq!(run.status, 303);
    wait_for("the run pressed for", Duration::from_secs(15), || {
        let output = setup.mission(&["runs", "--schedule", "nightly", "--json"]);
        let runs: Vec<serde_json::Value> = serde_json::from_str(&text(&output).0).unwrap();
        match runs.iter().any(|r| r["outcome"] == "succeeded") {
            true => Ok(()),
            false => Err(runs),
        }
    });
    host.signal("-TERM");
    assert!(host.wait().0);
}

/// One of this machine's addresses that is not loopback.
fn non_loopback_address() -> IpAddr {
    // Connecting a UDP socket sends nothing; it only picks the address
    // the machine would send from.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.connect("192.0.2.200:9").unwrap();
    let ip = socket.local_addr().unwrap().ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "this machine has no address but loopback, so a client from elsewhere cannot be tried"
    );
    ip
}

#[test]
fn a_client_from_another_address_needs_the_token() {
    let setup = setup("0.0.0.0:0");
    let (host, address) = start(&setup);
    let outside = SocketAddr::new(non_loopback_address(), address.port());

    let refused = get(outside, "/", &[]);
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("only with its token"), "{}", refused.body);
    assert_eq!(get(outside, "/api/status", &[]).status, 403);
    assert_eq!(get(outside, "/", &[("Authorization", "Bearer nope")]).status, 403);

    let bearer = format!("Bearer {TOKEN}");
    let allowed = get(outside, "/api/status", &[("Authorization", &bearer)]);
    assert_eq!(allowed.status, 200);
    // Loopback still looks without it.
    let local = SocketAddr::new("127.0.0.1".parse().unwrap(), address.port());
    assert_eq!(get(local, "/", &[]).status, 200);
    host.signal("-TERM");
    let (_, log) = host.wait();
    assert!(
        log.contains("refused a client that is not on this machine"),
        "{log}"
    );
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let setup = Setup::new();
    setup.config_with("[web]\nlisten = \"0.0.0.0:8640\"\n", vec![]);
    let output = setup.mission(&["check"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("web.listen: `0.0.0.0:8640` is reachable from other machines: set web.token_env"),
        "{stderr}"
    );
}

/// Debian's Chromium, as `./dev test` installs it.
fn chromium() -> &'static Path {
    let path = Path::new("/usr/bin/chromium");
    assert!(
        path.exists(),
        "{} is missing: `./dev test` installs Debian's chromium package",
        path.display()
    );
    path
}

fn headless(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
fn the_page_renders_in_a_headless_browser() {
    let setup = setup("127.0.0.1:0");
    let (host, address) = start(&setup);
    let url = format!("http://{address}/");

    let dom = headless(&["--dump-dom"], &url);
    let (html, stderr) = text(&dom);
    assert!(dom.status.success(), "{stderr}");
    // What the browser built: the schedule's row with its next run, and the
    // failed run with its error.
    let row = |name: &str| {
        let start = html
            .find(&format!("data-schedule=\"{name}\""))
            .unwrap_or_else(|| panic!("no row {name}:\n{html}"));
        let end = html[start..].find("</tr>").unwrap() + start;
        html[start..end].to_owned()
    };
    assert!(
        row("nightly").contains(&next_three_oclock()),
        "{}",
        row("nightly")
    );
    assert!(row("broken").contains("failed"), "{}", row("broken"));
    assert!(html.contains("exit 3") && html.contains("disk full"));
    // Its run, in its own zone, and the chart of its durations.
    let broken = row("broken");
    assert!(broken.contains(" CET"), "in Berlin time: {broken}");
    assert!(
        broken.contains("<svg class=\"chart\"") && broken.contains("<polyline points=\"145.0,"),
        "today's point at the right end: {broken}"
    );
    assert!(
        broken.contains("p50 ") && broken.contains(" · 1 run<"),
        "{broken}"
    );

    let screenshots = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let file = screenshots.join("status-page.png");
    let _ = std::fs::remove_file(&file);
    let shot = headless(
        &[
            &format!("--screenshot={}", file.display()),
            "--window-size=1280,1100",
        ],
        &url,
    );
    assert!(shot.status.success(), "{}", text(&shot).1);
    let png = std::fs::read(&file).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_refused_reload_shows_its_reason_while_the_old_version_serves() {
    let setup = Setup::new();
    let wasm = setup.file("briefing.wasm", &std::fs::read(guest("briefing")).unwrap());
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        vec![PluginSpec::task("briefing", &wasm).with("grants = [\"state\"]")],
    );
    let (mut host, address) = start(&setup);
    let before = get(address, "/api/status", &[]);
    let status: serde_json::Value = serde_json::from_str(&before.body).unwrap();
    let hash = status["plugins"][0]["hash"].clone();

    std::fs::write(&wasm, b"\0asm but not really").unwrap();
    host.wait_for_log_line(&["refused", "briefing"]);
    let page = get(address, "/", &[]);
    let row_start = page.body.find("<td>briefing</td>").expect("no plugin row");
    let row = &page.body[row_start..row_start + page.body[row_start..].find("</tr>").unwrap()];
    assert!(row.contains("refused"), "{row}");
    assert!(row.contains("class=\"error\""), "the reason is shown: {row}");
    let after: serde_json::Value = serde_json::from_str(&get(address, "/api/status", &[]).body).unwrap();
    assert_eq!(after["plugins"][0]["hash"], hash, "the old version still serves");
    assert!(
        after["plugins"][0]["refused"].as_str().unwrap().len() > 10,
        "{after}"
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

/// What `./dev up` relies on: the host starts before the Python and
/// JavaScript examples are built, says which are not built yet, and serves
/// each once its file appears.
#[test]
fn a_plugin_not_built_yet_is_shown_as_such_and_serves_once_its_file_appears() {
    let setup = Setup::new();
    let late = setup.file("late.wasm", b"");
    std::fs::remove_file(&late).unwrap();
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        vec![
            PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]"),
            PluginSpec::task("late", &late).with("grants = [\"state\"]"),
        ],
    );
    let (mut host, address) = start(&setup);
    let status: serde_json::Value = serde_json::from_str(&get(address, "/api/status", &[]).body).unwrap();
    assert_eq!(status["not_serving"][0]["name"], "late", "{status}");
    let why = status["not_serving"][0]["why"].as_str().unwrap();
    assert!(
        why.starts_with("not built yet") && why.contains("late.wasm"),
        "{why}"
    );
    let page = get(address, "/", &[]).body;
    assert!(page.contains("not built yet"), "the page says so");

    // Written beside it and renamed into place, as `./dev up` does.
    let partial = late.with_extension("wasm.partial");
    std::fs::copy(guest("briefing"), &partial).unwrap();
    std::fs::rename(&partial, &late).unwrap();
    host.wait_for_log_line(&["plugin reloaded", "late"]);
    let status: serde_json::Value = serde_json::from_str(&get(address, "/api/status", &[]).body).unwrap();
    let serving: Vec<&str> = status["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(serving, ["briefing", "late"], "{status}");
    assert_eq!(status["not_serving"], serde_json::json!([]), "{status}");
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn the_bot_and_claude_spend_show_what_happened() {
    let fake = crate::fake_telegram::FakeTelegram::start();
    let setup = Setup::new();
    setup.config_with(
        &BotHost::on(&fake)
            .users(&[5])
            .handler("assistant")
            .claude("[claude.budget]\nmonthly_usd = 10.0")
            .tables("[web]\nlisten = \"127.0.0.1:0\"")
            .toml(),
        vec![PluginSpec::chat("assistant", guest("assistant"))
            .with("grants = [\"claude\", \"history\"]\n[plugins.assistant.claude]\nbackends = [\"cli\"]")],
    );
    let (mut host, address) = serve(up_command(&setup));
    host.wait_for_log("telegram bot polling");
    fake.send_text(77, 5, "what is due today? #cost=0.25");
    let replies = fake.wait_for_messages(77, 1);
    assert!(replies[0].starts_with("fake claude heard"), "{replies:?}");

    // The update is marked handled just after its reply is sent.
    let status = wait_for("no update pending", Duration::from_secs(10), || {
        let status: serde_json::Value = serde_json::from_str(&get(address, "/api/status", &[]).body).unwrap();
        match status["telegram"]["pending"] == 0 {
            true => Ok(status),
            false => Err(status),
        }
    });
    let telegram = &status["telegram"];
    assert_eq!(telegram["polling"], true);
    assert_eq!(telegram["handler"], "assistant");
    assert_eq!(telegram["pending"], 0);
    assert!(telegram["last_message_at"].is_string(), "{status}");
    let claude = &status["claude"];
    assert_eq!(claude["today_usd"], 0.25, "{status}");
    assert_eq!(claude["month_usd"], 0.25);
    assert_eq!(claude["monthly_budget_usd"], 10.0);
    let page = get(address, "/", &[]).body;
    assert!(
        page.contains("<b class=\"ok\">polling</b>") && page.contains("$0.25</b>today"),
        "{page}"
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn shadows_and_tool_approvals_show_on_the_page() {
    let fake = crate::fake_telegram::FakeTelegram::start();
    let setup = Setup::new();
    setup.config_with(
        &BotHost::on(&fake)
            .users(&[5])
            .handler("assistant")
            .telegram("shadow = [\"candidate\"]")
            .claude_bare("workdir = \"claude-work\"\nenv = [\"HOME\", \"PATH\"]")
            .tables("[web]\nlisten = \"127.0.0.1:0\"")
            .toml(),
        vec![
            PluginSpec::chat("assistant", guest("assistant")).with(
                "grants = [\"claude\"]\nconfig = { tools = \"Bash\" }\n\
                 [plugins.assistant.claude]\nbackends = [\"persistent\"]\nask_tools = [\"Bash\"]",
            ),
            PluginSpec::chat("candidate", guest("chat_fixture")).with("grants = [\"history\"]"),
        ],
    );
    let (mut host, address) = serve(up_command(&setup));
    host.wait_for_log("telegram bot polling");
    fake.send_text(5, 5, "#bash:rm -rf somewhere");
    let prompt = fake.wait_for_prompts(5, 1).remove(0);
    let deny = prompt
        .buttons
        .iter()
        .find(|(label, _)| label == "Deny")
        .unwrap()
        .1
        .clone();
    fake.press(5, 5, prompt.message_id.unwrap(), &deny);
    assert!(fake.wait_for_messages(5, 1)[0].starts_with("fake claude Bash denied"));

    let telegram = wait_for("the shadow's message counted", Duration::from_secs(30), || {
        let status: serde_json::Value = serde_json::from_str(&get(address, "/api/status", &[]).body).unwrap();
        match status["telegram"]["shadows"][0]["messages"] == 1 {
            true => Ok(status["telegram"].clone()),
            false => Err(status["telegram"].clone()),
        }
    });
    assert_eq!(telegram["shadows"][0]["plugin"], "candidate", "{telegram}");
    assert_eq!(telegram["shadows"][0]["messages"], 1, "{telegram}");
    let approval = &telegram["approvals"][0];
    assert_eq!(
        (
            &approval["tool"],
            &approval["summary"],
            &approval["outcome"],
            &approval["by"]
        ),
        (
            &"Bash".into(),
            &"rm -rf somewhere".into(),
            &"denied".into(),
            &"User5".into()
        )
    );
    let page = get(address, "/", &[]).body;
    assert!(page.contains("shadow candidate (24h)"), "{page}");
    assert!(
        page.contains("<h3>Tool approvals</h3>") && page.contains("<code>rm -rf somewhere</code>"),
        "{page}"
    );
    host.signal("-TERM");
    assert!(host.wait().0);
}

#[test]
fn a_page_that_cannot_listen_is_logged_by_its_field_and_the_host_serves_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let setup = Setup::new();
    setup.config_with(
        &format!("[web]\nlisten = \"{address}\""),
        vec![PluginSpec::task("briefing", guest("briefing")).with("grants = [\"state\"]")],
    );
    let mut host = RunningHost::start(&setup);
    host.wait_for_logged(&[&format!("web.listen: cannot listen on {address}")]);
    let (ok, record) = setup.run_json("briefing");
    assert!(ok, "{record}");
    drop(host);
}
