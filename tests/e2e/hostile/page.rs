//! A web page the user visits, reaching the status page through DNS
//! rebinding: its name resolves to 127.0.0.1, so the request comes from
//! this machine, but its `Host` is the attacker's name. Refused before any
//! handler runs; every answer carries headers that keep it from being
//! framed, sniffed or cached.

use super::{hostile, on_demand, Siege};

#[test]
fn a_rebound_name_gets_nothing_from_the_page() {
    let siege = Siege::start(
        vec![hostile("timeout = \"5s\"")],
        &[("leaky", &on_demand("hostile", "attack = \"error\", mib = \"0\""))],
    );
    siege.trigger("leaky");
    let port = siege.page.port();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1.evil.example:{port}"),
    ] {
        for path in ["/", "/api/status", "/healthz"] {
            let (status, headers, body) = siege.get(path, &host);
            assert_eq!(status, 421, "{host}{path}: {body}");
            assert!(!body.contains("leaky"), "{host}{path} leaked the page: {body}");
            assert!(headers.contains("x-frame-options: deny"), "{headers}");
        }
    }
    // Its own names still answer, with the headers.
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (status, headers, body) = siege.get("/", &host);
        assert_eq!(status, 200, "{host}");
        assert!(body.contains("leaky"));
        for header in [
            "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "cache-control: no-store",
        ] {
            assert!(headers.contains(header), "{header} missing:\n{headers}");
        }
    }
    siege.assert_serving();
    let log = siege.stop();
    assert!(
        log.contains("refused a request for a name that is not the page's"),
        "{log}"
    );
}
