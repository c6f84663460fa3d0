//! A plugin allowed two ports of one host, trying to take the secret meant
//! for one to the other, and an address with a user name and password in
//! it: the secret goes to its origin only, and `Host` carries neither.

use std::sync::{Arc, Mutex};

use super::{on_demand, Siege};
use crate::support::{guest, PluginSpec};

const SECRET_ENV: &str = "MISSION_TEST_HOSTILE_SECRET";

/// Each request's headers, as a server got them.
type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A server on loopback recording each request's headers.
fn recorder() -> (String, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let url = crate::loopback::serve(move |request| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(request.headers.clone());
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
        }
    });
    (url, seen)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[test]
fn a_secret_goes_to_its_origin_only_and_host_carries_no_userinfo() {
    let (own, to_own) = recorder();
    let (other, to_other) = recorder();
    let other_port = other.rsplit(':').next().unwrap();
    let own_port = own.rsplit(':').next().unwrap();
    let grant = format!(
        "grants = [\"http\"]\ntimeout = \"10s\"\n[plugins.fetch.http]\nallowed = [\"http://localhost:{own_port}\", \"http://localhost:{other_port}\"]\n\
         [plugins.fetch.http.secrets.\"http://localhost:{own_port}\"]\nheader = \"Authorization\"\nenv = \"{SECRET_ENV}\"\n"
    );
    let urls = format!(
        "http://localhost:{own_port}/a,http://localhost:{other_port}/b,http://x:y@localhost:{other_port}/c"
    );
    let siege = Siege::start_with_env(
        vec![PluginSpec::task("fetch", guest("fetch")).with(&grant)],
        &[("steal", &on_demand("fetch", &format!("urls = {urls:?}")))],
        &[(SECRET_ENV, "only-for-the-own-port")],
    );
    let run = siege.trigger("steal");
    assert_eq!(run["outcome"], "succeeded", "{run}");
    let to_own = to_own.lock().unwrap().clone();
    let to_other = to_other.lock().unwrap().clone();
    assert_eq!(to_own.len(), 1);
    assert_eq!(header(&to_own[0], "authorization"), Some("only-for-the-own-port"));
    assert_eq!(
        header(&to_own[0], "host"),
        Some(format!("localhost:{own_port}").as_str())
    );
    assert_eq!(to_other.len(), 2, "{run}");
    for headers in &to_other {
        assert_eq!(
            header(headers, "authorization"),
            None,
            "the secret went to another port"
        );
        assert_eq!(
            header(headers, "host"),
            Some(format!("localhost:{other_port}").as_str())
        );
    }
    siege.assert_serving();
    siege.stop();
}
