//! Outbound HTTP from a plugin, through the real binary, against real HTTP
//! servers on 127.0.0.1: what is allowed is served, everything else is
//! denied before anything is sent, secrets reach only their host, limits
//! hold, and every request is recorded without query or secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{guest, python_guest, text, PluginSpec, Setup};

const SECRET_ENV: &str = "MISSION_TEST_SHOP_TOKEN";
const SECRET: &str = "s3cr3t-value-42";

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

/// An HTTP server on loopback that records what it gets: `/big` answers
/// 3 MiB, `/slow` waits 5 s, `/redirect` points at `location`, anything else
/// answers `hello`.
struct Server {
    url: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(location: &str) -> Server {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (log, location) = (seen.clone(), location.to_owned());
        let url = crate::loopback::serve(move |request| {
            let (log, location) = (log.clone(), location.clone());
            async move {
                log.lock().unwrap().push(Seen {
                    line: request.line.clone(),
                    headers: request.headers.clone(),
                });
                let (status, extra, body) = match request.path() {
                    "/big" => ("200 OK", String::new(), "x".repeat(3 << 20)),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        ("200 OK", String::new(), "late".to_owned())
                    }
                    "/redirect" => ("302 Found", format!("Location: {location}\r\n"), String::new()),
                    _ => ("200 OK", String::new(), "hello".to_owned()),
                };
                format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        });
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        Server { url, port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A setup with the `fetch` fixture granted `grant` (TOML lines after
/// `grants`), asking for `config`.
fn fetch(grant: &str, config: &str) -> Setup {
    Setup::with_plugins(vec![PluginSpec::task("fetch", guest("fetch"))
        .with(&format!("timeout = \"10s\"\nconfig = {{ {config} }}\n{grant}"))])
}

fn http_grant(allowed: &[&str], extra: &str) -> String {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "grants = [\"http\"]\n[plugins.fetch.http]\nallowed = [{}]\n{extra}",
        allowed.join(", ")
    )
}

/// Runs `fetch` with the secret in the environment: (succeeded, record, log).
fn run(setup: &Setup) -> (bool, serde_json::Value, String) {
    let output = setup
        .command(&["run", "fetch", "--json"])
        .env(SECRET_ENV, SECRET)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    let record = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.success(), record, stderr)
}

/// `mission http --json`: the recorded requests, newest first.
fn recorded(setup: &Setup) -> Vec<serde_json::Value> {
    let output = setup.mission(&["http", "--json"]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn an_allowed_request_is_served_and_recorded_without_its_query() {
    let server = Server::start("");
    let setup = fetch(
        &http_grant(&[&server.url], ""),
        &format!("url = \"{}/hello?token=abc\"", server.url),
    );
    let (succeeded, record, _) = run(&setup);
    assert!(succeeded, "{record}");
    assert_eq!(record["summary"], "status=200|bytes=5|body=hello");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].line.starts_with("GET /hello?token=abc "), "{seen:?}");
    let requests = recorded(&setup);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["origin"], format!("http://127.0.0.1:{}", server.port));
    assert_eq!(request["path"], "/hello");
    assert_eq!(request["status"], 200);
    assert_eq!(request["bytes_in"], 5);
    assert_eq!(request["denied"], false);
    assert_eq!(request["run"], record["id"]);
    assert!(!request.to_string().contains("token=abc"), "{request}");
}

#[test]
fn without_a_grant_or_outside_the_list_nothing_is_sent() {
    let server = Server::start("");
    let other = Server::start("");
    let ungranted = fetch("", &format!("url = \"{}/hello\"", server.url));
    let (succeeded, record, log) = run(&ungranted);
    assert!(succeeded, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("error=")
            && summary
                .ends_with("/hello: the host refused the request (why: mission http, and the host's log)"),
        "{summary}"
    );
    assert!(
        log.contains(&format!(
            "HTTP request to http://127.0.0.1:{} denied",
            server.port
        )) && log.contains("has no `http` grant"),
        "{log}"
    );

    let unlisted = fetch(
        &http_grant(&[&server.url], ""),
        &format!("url = \"{}/hello\"", other.url),
    );
    let (_, record, log) = run(&unlisted);
    assert!(
        record["summary"]
            .as_str()
            .unwrap()
            .contains("the host refused the request"),
        "{record}"
    );
    assert!(log.contains("is not in plugins.fetch.http.allowed"), "{log}");
    assert!(server.seen().is_empty() && other.seen().is_empty());
    let requests = recorded(&unlisted);
    assert_eq!(requests[0]["denied"], true);
    assert_eq!(requests[0]["status"], serde_json::Value::Null);
}

#[test]
fn a_secret_header_reaches_only_its_host_and_appears_nowhere_else() {
    let elsewhere = Server::start("");
    let shop = Server::start(&format!("http://localhost:{}/landing", elsewhere.port));
    let secrets = format!(
        "[plugins.fetch.http.secrets.\"{}\"]\nheader = \"Authorization\"\nenv = \"{SECRET_ENV}\"\nprefix = \"Bearer \"\n",
        shop.url
    );
    let setup = fetch(
        &http_grant(
            &[&shop.url, &format!("http://localhost:{}", elsewhere.port)],
            &secrets,
        ),
        &format!(
            "urls = \"{0}/api,http://localhost:{1}/other,{0}/redirect\"",
            shop.url, elsewhere.port
        ),
    );
    let (succeeded, record, log) = run(&setup);
    assert!(succeeded, "{record}");
    let lines: Vec<&str> = record["summary"].as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "status=200|bytes=5|body=hello");
    assert_eq!(lines[1], "status=200|bytes=5|body=hello");
    // A redirect is not followed: the plugin sees it, and the other host
    // gets only what the plugin sends there itself.
    assert!(lines[2].starts_with("status=302"), "{lines:?}");
    let authorization = |seen: &Seen| {
        seen.headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
    };
    let to_shop = shop.seen();
    assert_eq!(to_shop.len(), 2);
    for seen in &to_shop {
        assert_eq!(authorization(seen).as_deref(), Some("Bearer s3cr3t-value-42"));
        assert!(seen
            .headers
            .iter()
            .any(|(n, v)| n == "x-plugin-header" && v == "from-the-plugin"));
    }
    let to_elsewhere = elsewhere.seen();
    assert_eq!(to_elsewhere.len(), 1, "{to_elsewhere:?}");
    assert_eq!(authorization(&to_elsewhere[0]), None);
    assert!(!log.contains(SECRET), "the secret is in the log");
    assert!(!record.to_string().contains(SECRET));
    let requests = recorded(&setup);
    assert_eq!(requests.len(), 3);
    assert!(!serde_json::to_string(&requests).unwrap().contains(SECRET));
    let db = std::fs::read(setup.dir.path().join("data/mission.db")).unwrap();
    let wal = std::fs::read(setup.dir.path().join("data/mission.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret is in the database"
        );
    }
}

#[test]
fn a_body_over_the_cap_is_an_error_and_a_slow_server_times_out() {
    let server = Server::start("");
    let setup = fetch(
        &http_grant(&[&server.url], "max_response = \"1MiB\"\ntimeout = \"500ms\"\n"),
        &format!("urls = \"{0}/big,{0}/slow,{0}/hello\"", server.url),
    );
    let started = Instant::now();
    let (succeeded, record, _) = run(&setup);
    assert!(succeeded, "{record}");
    let lines: Vec<&str> = record["summary"].as_str().unwrap().lines().collect();
    assert!(
        lines[0].starts_with("error=") && lines[0].contains("body size exceeds limit: 1048576 bytes"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("error=") && lines[1].contains("took too long to answer"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "status=200|bytes=5|body=hello");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let requests = recorded(&setup);
    let big = requests.iter().find(|r| r["path"] == "/big").unwrap();
    assert!(
        big["bytes_in"].as_u64().unwrap() <= (1 << 20) + (64 << 10),
        "{big}"
    );
    assert!(
        big["error"].as_str().unwrap().contains("over 1048576 bytes"),
        "{big}"
    );
}

#[test]
fn a_plugin_waiting_on_a_slow_server_still_times_out_at_its_deadline() {
    let server = Server::start("");
    let setup = Setup::with_plugins(vec![PluginSpec::task("fetch", guest("fetch")).with(&format!(
        "timeout = \"1s\"\nconfig = {{ url = \"{}/slow\" }}\n{}",
        server.url,
        http_grant(&[&server.url], "")
    ))]);
    let started = Instant::now();
    let (succeeded, record, _) = run(&setup);
    assert!(!succeeded);
    assert_eq!(record["outcome"], "timed_out", "{record}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn requests_past_the_count_are_denied_and_an_exact_name_may_reach_loopback() {
    let server = Server::start("");
    let by_name = format!("http://localhost:{}", server.port);
    let setup = fetch(
        &http_grant(&[&by_name], "max_requests = 2\n"),
        &format!("urls = \"{0}/a,{0}/b,{0}/c\"", by_name),
    );
    let (succeeded, record, log) = run(&setup);
    assert!(succeeded, "{record}");
    let lines: Vec<&str> = record["summary"].as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "status=200|bytes=5|body=hello");
    assert_eq!(lines[1], "status=200|bytes=5|body=hello");
    assert!(lines[2].contains("the host refused the request"), "{lines:?}");
    assert!(log.contains("max_requests"), "{log}");
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn a_bad_http_grant_is_named_by_check() {
    let setup = fetch(
        "grants = [\"http\"]\n[plugins.fetch.http]\nallowed = [\"ftp://files.example\"]\n",
        "url = \"x\"",
    );
    let output = setup.mission(&["check"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("plugins.fetch.http.allowed: `ftp://files.example` is not an origin pattern"),
        "{stderr}"
    );
    let missing_env = fetch(
        &http_grant(
            &["https://api.example.com"],
            "[plugins.fetch.http.secrets.\"api.example.com\"]\nheader = \"Authorization\"\nenv = \"MISSION_TEST_UNSET_VAR\"\n",
        ),
        "url = \"x\"",
    );
    let output = missing_env
        .command(&["check"])
        .env_remove("MISSION_TEST_UNSET_VAR")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("warning: plugins.fetch.http.secrets.\"api.example.com\".env: `MISSION_TEST_UNSET_VAR` is not set"),
        "{stdout}"
    );
}

#[test]
fn the_feed_digest_example_sends_only_new_items_to_its_chat() {
    use crate::bot_host::{BotHost, TOKEN, TOKEN_ENV};
    let items: Arc<Mutex<Vec<(String, String)>>> =
        Arc::new(Mutex::new(vec![("1".into(), "First post".into())]));
    let feed_items = items.clone();
    let feed = crate::loopback::serve(move |_request| {
        let items = feed_items.clone();
        async move {
            let items: Vec<serde_json::Value> = items
                .lock()
                .unwrap()
                .iter()
                .rev()
                .map(|(id, title)| serde_json::json!({"id": id, "title": title, "url": format!("https://blog.example/{id}")}))
                .collect();
            let body = serde_json::json!({"version": "https://jsonfeed.org/version/1.1", "title": "Blog", "items": items})
                .to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/feed+json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
    });
    let telegram = crate::fake_telegram::FakeTelegram::start();
    let setup = BotHost::on(&telegram).users(&[1]).handler("echo").setup(vec![
            PluginSpec::task("digest", guest("feed_digest")).with(&format!(
                "grants = [\"http\", \"state\", \"notify\"]\nconfig = {{ feed = \"{feed}/feed.json\", chat = \"77\" }}\n\
                 [plugins.digest.http]\nallowed = [\"{feed}\"]\n[plugins.digest.notify]\nchats = [77]\n"
            )),
            PluginSpec::chat("echo", guest("echo_chat")),
    ]);
    let run = || {
        let output = setup
            .command(&["run", "digest", "--json"])
            .env(TOKEN_ENV, TOKEN)
            .output()
            .unwrap();
        let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(record["outcome"], "succeeded", "{record}");
        record["summary"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        run(),
        format!("1 items in {feed}/feed.json; from now on new ones are sent")
    );
    assert!(telegram.messages(77).is_empty());
    items.lock().unwrap().push(("2".into(), "Second post".into()));
    items.lock().unwrap().push(("3".into(), "Third post".into()));
    assert_eq!(run(), "2 new of 3 items, newest: Third post");
    assert_eq!(
        telegram.wait_for_messages(77, 1),
        [format!(
            "New in {feed}/feed.json:\n• Third post https://blog.example/3\n• Second post https://blog.example/2"
        )]
    );
    assert_eq!(run(), "0 new of 3 items");
    assert_eq!(telegram.messages(77).len(), 1);
}

#[test]
fn a_python_guest_with_its_stock_http_helper_follows_the_same_rules() {
    let server = Server::start("");
    let plugin = |grant: &str| {
        vec![PluginSpec::task("fetch", python_guest("fetch")).with(&format!(
            "timeout = \"30s\"\nmemory = \"128MiB\"\nconfig = {{ url = \"{}/hello\" }}\n{grant}",
            server.url
        ))]
    };
    // One data directory, so the 20 MB component is compiled once.
    let setup = Setup::with_plugins(plugin(&http_grant(&[&server.url], "")));
    let (succeeded, record, _) = run(&setup);
    assert!(succeeded, "{record}");
    assert_eq!(record["summary"], "status=200|body=hello");
    assert_eq!(server.seen().len(), 1);

    setup.config(plugin(""));
    let (succeeded, record, _) = run(&setup);
    assert!(succeeded, "{record}");
    let summary = record["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("error=") && summary.contains("HttpRequestDenied"),
        "{summary}"
    );
    assert_eq!(server.seen().len(), 1, "a denied request reached the server");
}

#[test]
fn a_failed_request_is_told_in_words_not_as_a_debug_dump() {
    let setup = fetch(
        &http_grant(&["https://nowhere.invalid"], ""),
        "url = \"https://nowhere.invalid/feed.json\", fail_on_error = \"yes\"",
    );
    let (succeeded, record, _) = run(&setup);
    assert!(!succeeded, "{record}");
    assert_eq!(
        record["error"],
        "the plugin returned an error: GET https://nowhere.invalid/feed.json: cannot resolve nowhere.invalid",
        "{record}"
    );
}
