//! Webhooks on a real `mission up`: signatures computed here (HMAC written
//! out in this file over sha2, not the host's code) accepted and forged
//! ones refused with nothing stored or run, redeliveries, the limits, retries,
//! `kill -9` in a stream of deliveries, a hot-reloaded config, the page.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::http_client::{send, Answer};
use crate::support::{guest, js_guest, text, wait_for, PluginSpec, RunningHost, Setup};

const GH_SECRET: &str = "gh-secret-for-tests";
const SHOP_SECRET: &str = "shop-secret-for-tests";
const STRIPE_SECRET: &str = "whsec_for_tests";
const TOKEN: &str = "bearer-token-for-tests";

/// HMAC-SHA256 (RFC 2104), written out.
fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn post(address: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    send(address, "POST", path, headers, body).expect("the webhook listener answers")
}

/// `[webhooks]` on a free loopback port with `hooks`, the `hook` fixture,
/// and `top` lines before.
fn setup(top: &str, hooks: &str) -> Setup {
    let setup = Setup::new();
    setup.config_with(
        &format!("{top}\n[webhooks]\nlisten = \"127.0.0.1:0\"\n{hooks}"),
        vec![PluginSpec::task("hook", guest("hook"))],
    );
    setup
}

fn up(setup: &Setup) -> (RunningHost, SocketAddr) {
    let mut command = setup.command(&["up"]);
    command
        .env("GH_SECRET", GH_SECRET)
        .env("SHOP_SECRET", SHOP_SECRET)
        .env("STRIPE_SECRET", STRIPE_SECRET)
        .env("HOOK_TOKEN", TOKEN);
    let mut host = RunningHost::spawn(command);
    let address = host.webhooks();
    (host, address)
}

/// `mission webhooks --json`, oldest first.
fn deliveries(setup: &Setup) -> Vec<Value> {
    let output = setup.mission(&["webhooks", "--json", "--limit", "1000"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let mut all: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    all.reverse();
    all
}

/// Waits (up to 60 s) until `count` deliveries are done; returns them all.
fn wait_done(setup: &Setup, count: usize) -> Vec<Value> {
    wait_for(
        &format!("{count} deliveries done"),
        Duration::from_secs(60),
        || {
            let all = deliveries(setup);
            if all.iter().filter(|d| d["state"] == "done").count() >= count {
                Ok(all)
            } else {
                Err(all)
            }
        },
    )
}

/// The database, read directly.
fn db(setup: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open(setup.dir.path().join("data/mission.db")).unwrap()
}

/// The summaries (as JSON) of the runs of delivery row `id`, in order, with
/// their outcomes.
fn runs_of(setup: &Setup, id: i64) -> Vec<(String, Value)> {
    let c = db(setup);
    let mut statement = c
        .prepare("SELECT outcome, coalesce(summary, error) FROM runs WHERE delivery = ?1 ORDER BY id")
        .unwrap();
    statement
        .query_map([id], |row| {
            let detail: String = row.get(1)?;
            Ok((
                row.get(0)?,
                serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

const SIGNED_HOOKS: &str = "\
[webhooks.gh]
plugin = \"hook\"
verify = { hmac_sha256 = \"X-Hub-Signature-256\", prefix = \"sha256=\", secret_env = \"GH_SECRET\" }
delivery_id = \"X-GitHub-Delivery\"
[webhooks.shop]
plugin = \"hook\"
verify = { hmac_sha256 = \"X-Shopify-Hmac-Sha256\", encoding = \"base64\", secret_env = \"SHOP_SECRET\" }
delivery_id = \"X-Shopify-Webhook-Id\"
[webhooks.pay]
plugin = \"hook\"
verify = { stripe = \"Stripe-Signature\", secret_env = \"STRIPE_SECRET\", tolerance = \"5m\" }
[webhooks.form]
plugin = \"hook\"
verify = { bearer_env = \"HOOK_TOKEN\" }
";

#[test]
fn signatures_computed_here_are_accepted_and_forged_missing_or_stale_ones_refused() {
    let setup = setup("", SIGNED_HOOKS);
    let check = setup.mission(&["check"]);
    let (stdout, _) = text(&check);
    assert!(
        stdout.contains("webhooks.gh.verify: the environment variable `GH_SECRET` is not set"),
        "{stdout}"
    );
    let (host, address) = up(&setup);

    let push = br#"{"ref":"refs/heads/main"}"#;
    let gh_signature = format!("sha256={}", hex(&hmac(GH_SECRET.as_bytes(), push)));
    let order = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let shop_signature =
        base64::engine::general_purpose::STANDARD.encode(hmac(SHOP_SECRET.as_bytes(), order));
    let event = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let now = chrono::Utc::now().timestamp();
    let stripe = |t: i64, event: &[u8]| {
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(event);
        format!("t={t},v1={}", hex(&hmac(STRIPE_SECRET.as_bytes(), &signed)))
    };
    let bearer = format!("Bearer {TOKEN}");
    let good = [
        post(
            address,
            "/hooks/gh?source=test",
            &[
                ("X-Hub-Signature-256", &gh_signature),
                ("X-GitHub-Delivery", "gh-1"),
                ("X-GitHub-Event", "push"),
            ],
            push,
        ),
        post(
            address,
            "/hooks/shop",
            &[
                ("X-Shopify-Hmac-Sha256", &shop_signature),
                ("X-Shopify-Webhook-Id", "shop-1"),
                ("Content-Type", "application/json"),
            ],
            order,
        ),
        post(
            address,
            "/hooks/pay",
            &[("Stripe-Signature", &stripe(now, event))],
            event,
        ),
        post(
            address,
            "/hooks/form",
            &[("Authorization", &bearer), ("Cookie", "session=1")],
            b"name=Ada",
        ),
    ];
    for answer in &good {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let forged_gh = format!("sha256={}", hex(&hmac(b"another secret", push)));
    let other_body = base64::engine::general_purpose::STANDARD.encode(hmac(SHOP_SECRET.as_bytes(), b"{}"));
    let refused = [
        post(
            address,
            "/hooks/gh",
            &[("X-Hub-Signature-256", &forged_gh), ("X-GitHub-Delivery", "gh-2")],
            push,
        ),
        post(address, "/hooks/gh", &[("X-GitHub-Delivery", "gh-3")], push),
        post(
            address,
            "/hooks/shop",
            &[
                ("X-Shopify-Hmac-Sha256", &other_body),
                ("X-Shopify-Webhook-Id", "shop-2"),
            ],
            order,
        ),
        post(
            address,
            "/hooks/pay",
            &[("Stripe-Signature", &stripe(now - 600, event))],
            event,
        ),
        post(
            address,
            "/hooks/form",
            &[("Authorization", "Bearer guess")],
            b"name=Eve",
        ),
    ];
    for answer in &refused {
        assert_eq!(answer.status, 401, "{}", answer.body);
    }

    // One more verified delivery to each webhook, after the refusals: a
    // webhook's lane runs in arrival order, so once these are done, anything
    // a refusal had let in would have run.
    let event_2 = br#"{"id":"evt_2","type":"invoice.paid"}"#;
    let closing = [
        post(
            address,
            "/hooks/gh",
            &[
                ("X-Hub-Signature-256", &gh_signature),
                ("X-GitHub-Delivery", "gh-4"),
            ],
            push,
        ),
        post(
            address,
            "/hooks/shop",
            &[
                ("X-Shopify-Hmac-Sha256", &shop_signature),
                ("X-Shopify-Webhook-Id", "shop-3"),
            ],
            order,
        ),
        post(
            address,
            "/hooks/pay",
            &[("Stripe-Signature", &stripe(now, event_2))],
            event_2,
        ),
        post(address, "/hooks/form", &[("Authorization", &bearer)], b"name=Bo"),
    ];
    for answer in &closing {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let all = wait_done(&setup, 8);
    let done: Vec<i64> = all
        .iter()
        .filter(|d| d["state"] == "done")
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    let ran: Vec<i64> = {
        let db = db(&setup);
        let mut statement = db.prepare("SELECT delivery FROM runs ORDER BY id").unwrap();
        let rows = statement.query_map([], |r| r.get::<_, Option<i64>>(0)).unwrap();
        rows.map(|r| r.unwrap().unwrap_or(-1)).collect()
    };
    assert_eq!(ran.len(), 8, "only the eight verified deliveries ran: {ran:?}");
    assert!(
        ran.iter().all(|id| done.contains(id)),
        "each run is a verified delivery's: {ran:?}, done {done:?}"
    );
    let why: Vec<&str> = all
        .iter()
        .filter(|d| d["state"] == "refused")
        .map(|d| d["verified"].as_str().unwrap())
        .collect();
    assert_eq!(why.len(), 5, "{all:#?}");
    assert!(why.contains(&"the signature does not match"));
    assert!(why.contains(&"no x-hub-signature-256 header"));
    assert!(why.iter().any(|w| w.contains("beyond the tolerance")));
    let refused_bodies: i64 = db(&setup)
        .query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'refused' AND body IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(refused_bodies, 0, "a refused request's body is not stored");

    let gh = all.iter().find(|d| d["delivery_id"] == "gh-1").unwrap();
    let (outcome, seen) = &runs_of(&setup, gh["id"].as_i64().unwrap())[0];
    assert_eq!(outcome, "succeeded");
    assert_eq!(seen["webhook"], "gh");
    assert_eq!(seen["name"], "gh");
    assert_eq!(seen["path"], "/hooks/gh");
    assert_eq!(seen["query"], "source=test");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], String::from_utf8_lossy(push).as_ref());
    let headers: Vec<&str> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(
        headers.contains(&"x-github-event") && headers.contains(&"x-github-delivery"),
        "{headers:?}"
    );
    assert!(
        !headers.contains(&"x-hub-signature-256"),
        "the proof is kept from the plugin: {headers:?}"
    );
    let form = all
        .iter()
        .find(|d| d["webhook"] == "form" && d["state"] == "done") // the first: Ada's
        .unwrap();
    let (_, seen) = &runs_of(&setup, form["id"].as_i64().unwrap())[0];
    let headers = seen["headers"].to_string();
    assert!(
        !headers.contains("authorization") && !headers.contains("cookie"),
        "{headers}"
    );
    assert!(
        seen["delivery"].as_str().unwrap().starts_with("mc-"),
        "a made-up id: {seen}"
    );

    host.signal("-TERM");
    let (_, log) = host.wait();
    assert!(
        log.contains("request refused") && log.contains("webhook=\"gh\""),
        "{log}"
    );
    for secret in [GH_SECRET, SHOP_SECRET, STRIPE_SECRET, TOKEN, "guess"] {
        assert!(!log.contains(secret), "the log shows a secret");
    }
}

/// VmRSS of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn a_redelivery_runs_nothing_and_the_limits_answer_with_their_status() {
    let setup = setup(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        "[webhooks.open]\nplugin = \"hook\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\nmax_body = \"64KiB\"\nrate = 3\n",
    );
    let (mut host, address) = up(&setup);
    let first = post(address, "/hooks/open", &[("X-Delivery", "d-1")], br#"{"n":1}"#);
    let again = post(address, "/hooks/open", &[("X-Delivery", "d-1")], br#"{"n":1}"#);
    assert_eq!(
        (first.status, again.status),
        (200, 200),
        "{} / {}",
        first.body,
        again.body
    );
    assert!(again.body.contains("already stored"), "{}", again.body);
    let all = wait_done(&setup, 1);
    assert_eq!(all.iter().filter(|d| d["state"] == "duplicate").count(), 1);
    assert_eq!(
        runs_of(&setup, all[0]["id"].as_i64().unwrap()).len(),
        1,
        "one run for two copies"
    );

    // The page shows them.
    let page = send(host.status_page(), "GET", "/", &[], b"").unwrap();
    assert!(
        page.body.contains("Webhooks") && page.body.contains("d-1"),
        "{}",
        page.body
    );
    assert!(page.body.contains("duplicate: nothing ran"), "{}", page.body);

    let get = send(address, "GET", "/hooks/open", &[], b"").unwrap();
    assert_eq!(get.status, 405);
    assert!(get.head.contains("allow: post"), "{}", get.head);
    let unknown = post(address, "/hooks/nope", &[], b"{}");
    let elsewhere = post(address, "/admin", &[], b"{}");
    assert_eq!((unknown.status, elsewhere.status), (404, 404));
    assert_eq!(
        unknown.body, elsewhere.body,
        "a 404 does not say which webhooks exist"
    );

    // Over the cap, declared or not: 413, and memory stays flat.
    std::thread::sleep(Duration::from_secs(2)); // a full bucket
    let streamed = post(
        address,
        "/hooks/open",
        &[("X-Delivery", "big")],
        &vec![b'x'; 70 << 10],
    );
    assert_eq!(streamed.status, 413);
    let before = rss(host.pid());
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(350)); // under the rate
        let declared = send(
            address,
            "POST",
            "/hooks/open",
            &[("Content-Length", "536870912")],
            &vec![b'x'; 1 << 20],
        );
        if let Some(answer) = declared {
            assert_eq!(answer.status, 413);
        }
    }
    let grown = rss(host.pid()).saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "RSS grew {grown} bytes over 12 refused 512 MiB bodies"
    );

    // The rate: 3 a second in bursts of 6.
    std::thread::sleep(Duration::from_secs(2));
    let answers: Vec<Answer> = (0..10)
        .map(|i| {
            post(
                address,
                "/hooks/open",
                &[("X-Delivery", &format!("burst-{i}"))],
                b"{}",
            )
        })
        .collect();
    let limited: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(
        (3..=4).contains(&limited.len()),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(limited[0].head.contains("retry-after: 1"), "{}", limited[0].head);
    let stored: i64 = db(&setup)
        .query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE delivery_id LIKE 'burst-%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored as usize, 10 - limited.len(), "a 429 stores nothing");
    drop(host);
}

#[test]
fn a_failing_run_is_retried_with_backoff_until_it_succeeds_or_its_retries_are_spent() {
    let setup = setup(
        "",
        "[webhooks.flaky]\nplugin = \"hook\"\nverify = { none = true }\nretries = 3\nretry_backoff = \"100ms\"\n\
         [webhooks.once]\nplugin = \"hook\"\nverify = { none = true }\nretries = 1\nretry_backoff = \"100ms\"\n",
    );
    let (host, address) = up(&setup);
    assert_eq!(
        post(address, "/hooks/flaky", &[], br#"{"fail_attempts":2}"#).status,
        200
    );
    assert_eq!(
        post(address, "/hooks/once", &[], br#"{"fail_attempts":9}"#).status,
        200
    );
    let all = wait_done(&setup, 2);
    let flaky = all.iter().find(|d| d["webhook"] == "flaky").unwrap();
    let runs = runs_of(&setup, flaky["id"].as_i64().unwrap());
    let outcomes: Vec<&str> = runs.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
    assert_eq!(runs[2].1["attempt"], 3);
    assert_eq!(flaky["outcome"], "succeeded");
    let once = all.iter().find(|d| d["webhook"] == "once").unwrap();
    assert_eq!(runs_of(&setup, once["id"].as_i64().unwrap()).len(), 2);
    assert_eq!(once["outcome"], "failed");
    drop(host);
}

#[test]
fn kill_9_in_a_stream_of_deliveries_loses_no_acknowledged_one_and_runs_each_once() {
    let setup = setup(
        "",
        "[webhooks.orders]\nplugin = \"hook\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\nrate = 1000\n",
    );
    let (first, mut address) = up(&setup);
    let mut host = Some(first);
    let total = 40;
    let mut kills = 0;
    for i in 0..total {
        // Some take a while, so a kill finds runs under way.
        let body = format!(
            r#"{{"order":{i},"sleep_ms":{}}}"#,
            if i % 7 == 0 { 400 } else { 20 }
        );
        loop {
            match send(
                address,
                "POST",
                "/hooks/orders",
                &[("X-Delivery", &format!("order-{i}"))],
                body.as_bytes(),
            ) {
                Some(answer) if answer.status == 200 => break,
                Some(answer) => panic!("order {i}: {} {}", answer.status, answer.body),
                None => {
                    // The host is gone: the sender retries against the next one.
                    let (next, next_address) = up(&setup);
                    (host, address) = (Some(next), next_address);
                }
            }
        }
        if i == 10 || i == 21 || i == 29 {
            let killed = host.take().expect("a host is up");
            killed.signal("-KILL");
            killed.wait();
            kills += 1;
        }
    }
    assert_eq!(kills, 3);
    let all = wait_done(&setup, total);
    let c = db(&setup);
    for i in 0..total {
        let id = format!("order-{i}");
        let stored: Vec<(i64, String)> = c
            .prepare("SELECT id, state FROM webhook_deliveries WHERE delivery_id = ?1 AND state IN ('pending', 'done')")
            .unwrap()
            .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(stored.len(), 1, "{id} stored once: {stored:?}");
        let succeeded: i64 = c
            .query_row(
                "SELECT count(*) FROM runs WHERE delivery = ?1 AND outcome = 'succeeded'",
                [stored[0].0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(succeeded, 1, "{id} ran to its end once");
    }
    assert_eq!(all.iter().filter(|d| d["state"] == "done").count(), total);
    drop(host);
}

#[test]
fn a_changed_webhook_config_applies_to_the_next_request_without_a_restart() {
    let hooks = |a_token: &str| {
        format!("[webhooks.a]\nplugin = \"hook\"\nverify = {{ bearer_env = \"{a_token}\" }}\n")
    };
    let setup = setup("", &hooks("HOOK_TOKEN"));
    let mut command = setup.command(&["up"]);
    command.env("HOOK_TOKEN", TOKEN).env("OTHER_TOKEN", "other-token");
    let mut host = RunningHost::spawn(command);
    let address = host.webhooks();
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        post(address, "/hooks/a", &[("Authorization", &bearer(TOKEN))], b"{}").status,
        200
    );
    assert_eq!(post(address, "/hooks/b", &[], b"{}").status, 404);

    let text = std::fs::read_to_string(setup.config_path()).unwrap();
    let changed = text.replace(&hooks("HOOK_TOKEN"), &hooks("OTHER_TOKEN"))
        + "[webhooks.b]\nplugin = \"hook\"\nverify = { none = true }\n";
    std::fs::write(setup.config_path(), changed).unwrap();
    host.wait_for_log("[webhooks] changed: applied to the next request");
    assert_eq!(
        post(address, "/hooks/a", &[("Authorization", &bearer(TOKEN))], b"{}").status,
        401
    );
    assert_eq!(
        post(
            address,
            "/hooks/a",
            &[("Authorization", &bearer("other-token"))],
            b"{}"
        )
        .status,
        200
    );
    assert_eq!(post(address, "/hooks/b", &[], b"{}").status, 200);
    wait_done(&setup, 3);
    drop(host);
}

#[test]
fn a_javascript_plugin_reads_the_request_that_started_it() {
    let setup = Setup::new();
    setup.config_with(
        "[webhooks]\nlisten = \"127.0.0.1:0\"\n[webhooks.count]\nplugin = \"tally\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\n",
        vec![PluginSpec::task("tally", js_guest("tally")).with("grants = [\"state\"]")],
    );
    let (host, address) = up(&setup);
    assert_eq!(
        post(
            address,
            "/hooks/count",
            &[("X-Delivery", "js-1")],
            b"twelve bytes"
        )
        .status,
        200
    );
    let all = wait_done(&setup, 1);
    let (outcome, summary) = &runs_of(&setup, all[0]["id"].as_i64().unwrap())[0];
    assert_eq!(outcome, "succeeded", "{summary}");
    assert!(
        summary
            .as_str()
            .unwrap()
            .ends_with("; webhook count, delivery js-1, 12 bytes"),
        "{summary}"
    );
    drop(host);
    // Run by hand, it was started by no webhook.
    let (ok, record) = setup.run_json("tally");
    assert!(
        ok && !record["summary"].as_str().unwrap().contains("webhook"),
        "{record}"
    );
}

#[test]
fn a_webhook_run_is_rerun_with_the_stored_request() {
    let setup = setup(
        "",
        "[webhooks.open]\nplugin = \"hook\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\n",
    );
    let (host, address) = up(&setup);
    assert_eq!(
        post(
            address,
            "/hooks/open?x=1",
            &[("X-Delivery", "re-1")],
            br#"{"order":7}"#
        )
        .status,
        200
    );
    let all = wait_done(&setup, 1);
    drop(host);
    let run = all[0]["runs"][0].as_i64().unwrap().to_string();
    let output = setup.mission(&["rerun", &run, "--json"]);
    assert!(output.status.success(), "{:?}", text(&output));
    let again: Value = serde_json::from_slice(&output.stdout).unwrap();
    let seen: Value = serde_json::from_str(again["summary"].as_str().unwrap()).unwrap();
    assert_eq!(
        (seen["delivery"].as_str(), seen["query"].as_str()),
        (Some("re-1"), Some("x=1"))
    );
    assert_eq!(seen["body"], r#"{"order":7}"#);
    assert_eq!(again["rerun_of"].as_i64().unwrap().to_string(), run);
}

/// `X-Hub-Signature-256` for `body`, signed with the test's secret.
fn github_signature(body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac(GH_SECRET.as_bytes(), body)))
}

/// Waits (up to 30 s) until `mission webhooks` prints a line with every
/// one of `texts`; returns its whole output.
fn wait_listed(setup: &Setup, texts: &[&str]) -> String {
    let what = format!("a line of `mission webhooks` with {texts:?}");
    wait_for(&what, Duration::from_secs(30), || {
        let (stdout, _) = text(&setup.mission(&["webhooks"]));
        if stdout.lines().any(|l| texts.iter().all(|t| l.contains(t))) {
            Ok(stdout)
        } else {
            Err(stdout)
        }
    })
}

#[test]
fn unsigned_requests_are_refused_before_the_rate_and_counted_with_only_a_sample_stored() {
    let setup = setup(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        "[webhooks.gh]\nplugin = \"hook\"\nrate = 2\n\
         verify = { hmac_sha256 = \"X-Hub-Signature-256\", prefix = \"sha256=\", secret_env = \"GH_SECRET\" }\n",
    );
    let (mut host, address) = up(&setup);
    // Fifteen times its burst of four, unsigned: each a 401, none a 429.
    let statuses: Vec<u16> = (0..60)
        .map(|_| post(address, "/hooks/gh", &[], b"{}").status)
        .collect();
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    // The sender's own delivery still has its whole rate.
    let push = br#"{"ref":"main"}"#;
    let signed = post(
        address,
        "/hooks/gh",
        &[("X-Hub-Signature-256", &github_signature(push))],
        push,
    );
    assert_eq!(signed.status, 200, "{}", signed.body);

    // Counted, all sixty; stored, a sample (ten a minute; the sixty may
    // straddle a minute).
    let listed = wait_listed(&setup, &["gh", "60 × no proof (401)"]);
    assert!(listed.contains("Refused in the last 24 hours"), "{listed}");
    let stored: i64 = db(&setup)
        .query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'refused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((10..=20).contains(&stored), "{stored} refusals stored");
    let page = send(host.status_page(), "GET", "/", &[], b"").unwrap();
    assert!(
        page.body.contains("no proof (401)") && page.body.contains("<td>60</td>"),
        "{}",
        page.body
    );
    host.signal("-TERM");
    let (_, log) = host.wait();
    let warned = log.lines().filter(|l| l.contains("request refused")).count();
    assert!(warned <= 20, "{warned} refusals logged as warnings");
}

#[test]
fn one_webhook_s_backlog_refuses_neither_another_webhook_nor_turns_a_401_into_a_503() {
    let setup = setup(
        "",
        "max_backlog = 1\n\
         [webhooks.slow]\nplugin = \"hook\"\nverify = { bearer_env = \"HOOK_TOKEN\" }\ntimeout = \"2m\"\n\
         [webhooks.other]\nplugin = \"hook\"\nverify = { bearer_env = \"HOOK_TOKEN\" }\n",
    );
    let (host, address) = up(&setup);
    let bearer = format!("Bearer {TOKEN}");
    let signed = [("Authorization", bearer.as_str())];
    // The slow webhook's one delivery runs for a long while: its backlog
    // is full.
    let first = post(address, "/hooks/slow", &signed, br#"{"sleep_ms":100000}"#);
    assert_eq!(first.status, 200, "{}", first.body);
    let second = post(address, "/hooks/slow", &signed, b"{}");
    assert_eq!(second.status, 503, "{}", second.body);
    let unsigned = post(address, "/hooks/slow", &[], b"{}");
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let other = post(address, "/hooks/other", &signed, b"{}");
    assert_eq!(other.status, 200, "{}", other.body);
    let all = wait_done(&setup, 1);
    assert!(
        all.iter()
            .any(|d| d["webhook"] == "other" && d["state"] == "done"),
        "{all:#?}"
    );
    drop(host);
}

#[test]
fn delivery_ids_over_200_characters_are_refused_never_merged() {
    let setup = setup(
        "",
        "[webhooks.open]\nplugin = \"hook\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\n",
    );
    let (host, address) = up(&setup);
    let shared = "d".repeat(200);
    for tail in ["11111", "22222"] {
        let id = format!("{shared}{tail}");
        let answer = post(address, "/hooks/open", &[("X-Delivery", &id)], b"{}");
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(
            answer.body.contains("205 characters, over the 200 kept")
                && answer.body.contains("webhooks.open.delivery_id"),
            "{}",
            answer.body
        );
    }
    // At the limit, it is kept whole.
    let kept = post(address, "/hooks/open", &[("X-Delivery", &shared)], b"{}");
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert!(kept.body.contains("stored"), "{}", kept.body);
    let all = wait_done(&setup, 1);
    let ran: Vec<&Value> = all.iter().filter(|d| d["state"] == "done").collect();
    assert_eq!(ran.len(), 1, "{all:#?}");
    assert_eq!(ran[0]["delivery_id"], shared.as_str());
    drop(host);
}

/// `count` connections to `address` that send nothing.
fn idle_connections(address: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| TcpStream::connect(address).expect("the listener takes the connection"))
        .collect()
}

#[test]
fn idle_connections_are_shed_so_a_signed_delivery_never_waits_for_their_timeout() {
    let setup = setup(
        "",
        "request_timeout = \"60s\"\n\
         [webhooks.form]\nplugin = \"hook\"\nverify = { bearer_env = \"HOOK_TOKEN\" }\n",
    );
    let (host, address) = up(&setup);
    // More than the listener's 512, each holding its place until the
    // 60 s head timeout.
    let mut idle = idle_connections(address, 600);
    // Answered within `send`'s 20 s, long before any idle one times out.
    let bearer = format!("Bearer {TOKEN}");
    let answer = send(
        address,
        "POST",
        "/hooks/form",
        &[("Authorization", &bearer)],
        b"{}",
    )
    .expect("answered while 600 connections sit idle");
    assert_eq!(answer.status, 200, "{}", answer.body);
    // The oldest idle connection was the one shed.
    idle[0].set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        idle[0].read(&mut byte).expect("closed, not timed out"),
        0,
        "the oldest idle connection is closed"
    );
    drop(host);
}

#[test]
fn under_a_launch_agent_s_256_descriptors_idle_connections_leave_the_host_answering() {
    let setup = setup(
        "[web]\nlisten = \"127.0.0.1:0\"\n",
        "request_timeout = \"60s\"\n\
         [webhooks.form]\nplugin = \"hook\"\nverify = { bearer_env = \"HOOK_TOKEN\" }\n",
    );
    let mut command = setup.command(&["up"]);
    command.env("HOOK_TOKEN", TOKEN);
    crate::service::limit_open_files(&mut command, 256, 256);
    let mut host = RunningHost::spawn(command);
    let (address, page) = (host.webhooks(), host.status_page());
    let idle = idle_connections(address, 365);
    // Connections past the cap are shed as the host accepts them, which
    // under load may trail the last connect.
    let pid = host.pid();
    crate::support::wait_for("the host under 240 descriptors", Duration::from_secs(20), || {
        let held = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
        if held < 240 {
            Ok(held)
        } else {
            Err(held)
        }
    });
    assert!(crate::http_client::get(page, "/").contains("Webhooks"));
    let bearer = format!("Bearer {TOKEN}");
    let answer = post(address, "/hooks/form", &[("Authorization", &bearer)], b"{}");
    assert_eq!(answer.status, 200, "{}", answer.body);
    drop(idle);
    host.signal("-TERM");
    let (_, log) = host.wait();
    assert!(!log.contains("Too many open files"), "{log}");
}

#[test]
fn the_page_and_the_webhooks_answer_while_a_fresh_start_compiles_the_plugins() {
    let setup = Setup::new();
    // Nothing compiled yet: the JavaScript component takes seconds.
    setup.own_compile_cache();
    setup.config_with(
        "[web]\nlisten = \"127.0.0.1:0\"\n[webhooks]\nlisten = \"127.0.0.1:0\"\n\
         [webhooks.count]\nplugin = \"tally\"\nverify = { none = true }\ndelivery_id = \"X-Delivery\"\n",
        vec![PluginSpec::task("tally", js_guest("tally"))
            .with("grants = [\"state\"]\nconfig = { greeting = \"Good morning\" }")],
    );
    let mut host = RunningHost::starting(setup.command(&["up"]));
    let page = host.status_page();
    let hooks = host.webhooks();
    let status: Value = serde_json::from_str(&crate::http_client::get(page, "/api/status")).unwrap();
    let answer = post(
        hooks,
        "/hooks/count",
        &[("X-Delivery", "early")],
        b"while loading",
    );
    assert!(
        !host.seen.contains("mission control is up"),
        "the plugins loaded before the page was asked:\n{}",
        host.seen
    );
    assert_eq!(status["loading"], serde_json::json!(["tally"]), "{status}");
    assert_eq!(answer.status, 200);
    // Once loaded (a debug build on a busy machine compiles it in up to a
    // minute), the delivery taken in meanwhile runs, with the plugin's
    // config values.
    host.wait_for_log_line_within(&["mission control is up"], Duration::from_secs(180));
    let all = wait_done(&setup, 1);
    let (outcome, summary) = &runs_of(&setup, all[0]["id"].as_i64().unwrap())[0];
    assert_eq!(outcome, "succeeded", "{summary}");
    assert!(
        summary
            .as_str()
            .unwrap()
            .starts_with("Good morning from JavaScript"),
        "{summary}"
    );
    let status: Value = serde_json::from_str(&crate::http_client::get(page, "/api/status")).unwrap();
    assert_eq!(status["loading"], serde_json::json!([]), "{status}");
    drop(host);
}

#[test]
fn a_request_without_its_proof_is_refused_before_its_body_is_read() {
    let setup = setup(
        "",
        "request_timeout = \"60s\"\n[webhooks.gh]\nplugin = \"hook\"\n\
         verify = { hmac_sha256 = \"X-Hub-Signature-256\", prefix = \"sha256=\", secret_env = \"GH_SECRET\" }\n",
    );
    let (host, address) = up(&setup);
    // The head says a body of 1,000 bytes follows, and none comes: the
    // answer does not wait for it (the client gives up after 20 s).
    for headers in [
        vec![("Content-Length", "1000")],
        vec![("Content-Length", "1000"), ("X-Hub-Signature-256", "md5=abc")],
    ] {
        let answer = post(address, "/hooks/gh", &headers, b"");
        assert_eq!(answer.status, 401, "{headers:?}: {}", answer.body);
    }
    drop(host);
}
